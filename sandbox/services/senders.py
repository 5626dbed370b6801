"""Senders: how one callback reaches a receiver. The network is injected, never patched.

`Sender` is what the outbox calls. `AiohttpSender` is the real one the server and
`deliver_now` use (one pooled aiohttp session for every delivery); `HttpxSender` sends through
an `httpx.AsyncClient` you pass (your own transport, respx); the test harness passes an
in-memory one (`harness.sink.MemorySink`).

Where callbacks may go (`callback_policy`, core.addresses `CallbackPolicy`: `[callbacks]
allow`): `AiohttpSender`'s connector checks the address each connection is about to open —
the address the name resolved to at delivery time — and `HttpxSender` resolves the name and
checks its addresses before sending. A refused address fails the attempt (`CallbackRefused`),
whose reason the attempt log keeps.

Why aiohttp: with 50 deliveries in flight, httpx's connection pool spent ~4 ms of CPU per
request (about 200 callbacks/s on one core); aiohttp sends the same bodies at ~7 000/s
(bench/bench_delivery.py).
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import socket
from typing import Any, Protocol

import aiohttp
import httpx
from yarl import URL

from ..core.addresses import CallbackPolicy, address, is_loopback, url_host
from ..core.errors import ControlError
from ..core.settings import Settings

RESPONSE_LIMIT = 64 * 1024  # characters of a receiver's answer kept in the attempt log
JSON_TYPE = "application/json;charset=utf-8"
# The host of the callback being sent: the connector's socket factory sees only the address
# it is about to connect to, and `[callbacks] allow` may name the host.
_HOST: contextvars.ContextVar[str] = contextvars.ContextVar("callback_host", default="")


class CallbackRefused(OSError):
    """A callback address the policy refuses (`[callbacks] allow`): a failed attempt."""

    def __init__(self, reason: str):
        super().__init__(errno.EACCES, reason)


def own_addresses(settings: Settings) -> frozenset[Any]:
    """The sandbox's own addresses: the bind address, the addresses of this host's name when it
    binds every interface, and those of [server] public_url's host."""
    names = {settings.server.host, url_host(settings.server.public_url)}
    if address(settings.server.host) in (None, address("0.0.0.0"), address("::")):
        names.add(socket.gethostname())
    found = set()
    for name in names - {""}:
        try:
            infos = socket.getaddrinfo(name, None)
        except OSError:  # a name that does not resolve here: nothing of ours
            continue
        found |= {address(str(info[4][0])) for info in infos}
    return frozenset(ip for ip in found if ip is not None and not ip.is_unspecified)


def callback_policy(settings: Settings) -> CallbackPolicy:
    """Where this sandbox's callbacks may go (core.addresses): anywhere on a loopback bind;
    on any other, public addresses and what `[callbacks] allow` lists."""
    bind = settings.server.host
    own = frozenset() if is_loopback(bind) else own_addresses(settings)
    return CallbackPolicy.of(bind, settings.callbacks.allow, own)


def check_callback_url(policy: CallbackPolicy, url: str | None) -> None:
    """A callback URL that can never be sent to (an address the policy refuses, or a loopback
    name, on a shared sandbox): ControlError 400 when it is set, not an attempt log later."""
    if url and (why := policy.url_refusal(url)):
        raise ControlError("callback_refused", why)


def _guarded_socket(policy: CallbackPolicy) -> Any:
    """The connector's socket factory: refuses an address the policy refuses — the address
    the host resolved to, at the moment of connecting (no DNS rebinding after a check)."""

    def make(addr_info: Any) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        if why := policy.refusal(_HOST.get() or str(sockaddr[0]), str(sockaddr[0])):
            raise CallbackRefused(why)
        return socket.socket(family=family, type=type_, proto=proto)

    return make


class Sender(Protocol):
    """Sends one callback: (HTTP status, response text); raises on network error or timeout."""

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]: ...


class AiohttpSender:
    """The real sender: ONE `aiohttp.ClientSession` (pooled keep-alive connections) for every
    delivery, made on first use inside the event loop that sends. With a `policy` (the
    server's: `callback_policy`) its connector refuses the addresses the policy refuses."""

    def __init__(self, *, connections: int = 100, policy: CallbackPolicy | None = None):
        self.connections = connections
        self.policy = policy
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            shared = self.policy is not None and self.policy.shared
            connector = aiohttp.TCPConnector(
                limit=self.connections,
                limit_per_host=0,
                socket_factory=_guarded_socket(self.policy) if shared else None,  # type: ignore[arg-type]
            )
            # trust_env=False: callbacks go where the partner said, not through an env proxy.
            # No automatic redirects: a receiver answering 3xx has not acknowledged anything.
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, auto_decompress=True
            )
        return self._session

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]:
        # The host as aiohttp parses it (yarl), for the socket factory: what `allow` names is
        # then the host connected to.
        try:
            host = URL(url).host or ""
        except ValueError:  # aiohttp refuses the URL itself
            host = ""
        token = _HOST.set(host)
        try:
            # One deadline for the whole attempt (connect, send, answer), so a receiver that
            # trickles bytes cannot outlive the lease.
            async with asyncio.timeout(timeout):
                async with self._client().post(
                    url, data=content, headers={"content-type": JSON_TYPE}, allow_redirects=False
                ) as r:
                    body = await _read_capped_aiohttp(r)
                    return r.status, body.decode(r.charset or "utf-8", "replace")
        finally:
            _HOST.reset(token)

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

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        connections: int = 100,
        policy: CallbackPolicy | None = None,
    ):
        self.policy = policy  # checked before sending: the name is resolved, then sent to
        # trust_env=False: callbacks go where the partner said, not through a proxy from the env.
        # Keep-alive for every connection the worker may use at once: with httpx's default (20)
        # a busy worker closes and reopens connections all the time.
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.client = client or httpx.AsyncClient(trust_env=False, limits=limits)

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]:
        # httpx's timeout is per phase; asyncio.timeout bounds the whole attempt, so a receiver
        # that trickles bytes cannot outlive the lease.
        async with asyncio.timeout(timeout):
            if self.policy is not None and self.policy.shared:
                await _check_resolved(self.policy, url)
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


async def _check_resolved(policy: CallbackPolicy, url: str) -> None:
    """Every address the URL's host resolves to now must be allowed (HttpxSender: httpx
    resolves again when it connects, so this holds unless the name changes in between)."""
    parsed = httpx.URL(url)
    host, port = parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for *_, sockaddr in infos:
        if why := policy.refusal(host, str(sockaddr[0])):
            raise CallbackRefused(why)
