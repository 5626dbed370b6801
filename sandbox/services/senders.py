"""Senders: how one callback reaches a receiver. The network is injected, never patched.

`Sender` is what the outbox calls. `AiohttpSender` is the real one the server and
`deliver_now` use (one pooled aiohttp session for every delivery); `HttpxSender` sends through
an `httpx.AsyncClient` you pass (your own transport, respx); the test harness passes an
in-memory one (`harness.sink.MemorySink`).

Why aiohttp: with 50 deliveries in flight, httpx's connection pool spent ~4 ms of CPU per
request (about 200 callbacks/s on one core); aiohttp sends the same bodies at ~7 000/s
(bench/bench_delivery.py).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import aiohttp
import httpx

RESPONSE_LIMIT = 64 * 1024  # characters of a receiver's answer kept in the attempt log
JSON_TYPE = "application/json;charset=utf-8"


class Sender(Protocol):
    """Sends one callback: (HTTP status, response text); raises on network error or timeout."""

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]: ...


class AiohttpSender:
    """The real sender: ONE `aiohttp.ClientSession` (pooled keep-alive connections) for every
    delivery, made on first use inside the event loop that sends."""

    def __init__(self, *, connections: int = 100):
        self.connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.connections, limit_per_host=0)
            # trust_env=False: callbacks go where the partner said, not through an env proxy.
            # No automatic redirects: a receiver answering 3xx has not acknowledged anything.
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, auto_decompress=True
            )
        return self._session

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]:
        # One deadline for the whole attempt (connect, send, answer), so a receiver that
        # trickles bytes cannot outlive the lease.
        async with asyncio.timeout(timeout):
            async with self._client().post(
                url, data=content, headers={"content-type": JSON_TYPE}, allow_redirects=False
            ) as r:
                body = await _read_capped_aiohttp(r)
                return r.status, body.decode(r.charset or "utf-8", "replace")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AiohttpSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _read_capped_aiohttp(r: aiohttp.ClientResponse) -> bytes:
    chunks, size = [], 0
    while size <= RESPONSE_LIMIT:
        chunk = await r.content.read(RESPONSE_LIMIT + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:RESPONSE_LIMIT]


class HttpxSender:
    """Sends through ONE `httpx.AsyncClient` (pooled connections): pass your own client to
    route callbacks through your transport (respx, `httpx.ASGITransport`)."""

    def __init__(self, client: httpx.AsyncClient | None = None, *, connections: int = 100):
        # trust_env=False: callbacks go where the partner said, not through a proxy from the env.
        # Keep-alive for every connection the worker may use at once: with httpx's default (20)
        # a busy worker closes and reopens connections all the time.
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.client = client or httpx.AsyncClient(trust_env=False, limits=limits)

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]:
        # httpx's timeout is per phase; asyncio.timeout bounds the whole attempt, so a receiver
        # that trickles bytes cannot outlive the lease.
        async with asyncio.timeout(timeout):
            async with self.client.stream(
                "POST", url, content=content, timeout=timeout, headers={"content-type": JSON_TYPE}
            ) as r:
                body = await _read_capped(r)
        return r.status_code, body.decode(r.encoding or "utf-8", "replace")

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> HttpxSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _read_capped(r: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in r.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > RESPONSE_LIMIT:
            break
    return b"".join(chunks)[:RESPONSE_LIMIT]
