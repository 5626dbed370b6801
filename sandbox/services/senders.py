"""Senders: how one callback reaches a receiver. The network is injected, never patched.

`Sender` is what the outbox calls; `HttpxSender` is the real one (one pooled client for every
delivery); the test harness passes an in-memory one (`harness.sink.MemorySink`).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import httpx

RESPONSE_LIMIT = 64 * 1024  # characters of a receiver's answer kept in the attempt log
JSON_TYPE = "application/json;charset=utf-8"


class Sender(Protocol):
    """Sends one callback: (HTTP status, response text); raises on network error or timeout."""

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]: ...


class HttpxSender:
    """The real sender: ONE `httpx.AsyncClient` (pooled connections) for every delivery."""

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
