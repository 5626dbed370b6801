"""Callbacks delivered into the aggregator's own app, in-process: `AppRelay`.

The outbox (services/outbox.py) still does the delivering — claiming, the envelope, the
attempt log, retries on its schedule, dead letters; the relay is only where a callback lands:
the team's callback route, in its ASGI app (FastAPI, Starlette) through `httpx.ASGITransport`,
its WSGI app (Flask, Django) through `httpx.WSGITransport`, or an httpx client already pointed
at the app (Starlette's TestClient). The app's answer is the acknowledgement (docs/protocol.md
§6: HTTP 2xx and `code` 0); anything else is a failed attempt, retried by the outbox on its
schedule like a real receiver's. An app that raises answers HTTP 500,
with its traceback logged. `fail_next()` and `hang()` of the sink still work, in front of the
app: those attempts never reach it.

Which event loop runs an ASGI app: the test's, whenever it can. `deliver_to` called inside a
running loop (an async fixture or test) makes that loop the app's home. Callbacks caused on
the home loop asynchronously (the app's own httpx.AsyncClient calls, intercepted) run the app
right there; callbacks caused on another thread (`await asyncio.to_thread(sandbox.clock.advance,
days=1)`) are handed to the home loop. A synchronous sandbox call made on the home loop's own
thread (`sandbox.clock.advance(days=1)` in an async test) blocks that loop until it returns,
so the app runs on the delivery's helper loop instead — fine unless the app holds loop-bound
resources such as an async database pool, which is what `asyncio.to_thread` is for. A home
loop blocked in a way the sandbox cannot see (a sync wait on a thread that is delivering) does
not take the callback up within HANDOFF_SECONDS: the delivering thread then runs the app
itself, rather than deadlock. Without a home (sync tests) each delivery's own loop runs the
app, as Starlette's TestClient does per request. WSGI apps and sync clients run on the
delivering thread: the test's own, in a sync test, so thread-local state (Django's database
connection) is the test's.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import httpx

from ..services.outbox import deliver_now, refusal
from ..services.senders import JSON_TYPE

if TYPE_CHECKING:
    from ..services.lender import Lender

__all__ = ["AppRelay", "deliver_blocking"]

log = logging.getLogger("sandbox.delivery")

# The host Starlette's TestClient and Django's test client use (Django's test settings allow it).
DEFAULT_ORIGIN = "http://testserver"
HEADERS = {"content-type": JSON_TYPE}

# (url, body, timeout, note for the log if the app raises) -> (HTTP status, text)
Post = Callable[[str, bytes, float, str], Awaitable[tuple[int, str]]]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def is_asgi(app: Any) -> bool:
    """An ASGI 3 app: an async callable (function, or object with an async __call__)."""
    if inspect.isfunction(app) or inspect.ismethod(app):
        return inspect.iscoroutinefunction(app)
    return callable(app) and inspect.iscoroutinefunction(type(app).__call__)


def _text(response: httpx.Response, body: bytes) -> str:
    return body.decode(response.encoding or "utf-8", "replace")


def _crashed(url: str, error: Exception, note: str) -> tuple[int, str]:
    """The app raised: a real server would answer 500 and log it; so do we."""
    log.error("the app raised on the callback to %s%s", url, note, exc_info=error)
    return 500, f"{type(error).__name__}: {error}"


# ---- how a callback reaches the app ----


def _asgi(app: Any) -> Post:
    transport = httpx.ASGITransport(app)

    async def post(url: str, content: bytes, timeout: float, note: str) -> tuple[int, str]:
        request = httpx.Request("POST", url, content=content, headers=HEADERS)
        async with asyncio.timeout(timeout):  # an app that never answers is a timed-out attempt
            try:
                response = await transport.handle_async_request(request)
                body = await response.aread()
            except Exception as e:  # raise_app_exceptions: the app's own error
                return _crashed(url, e, note)
        return response.status_code, _text(response, body)

    return post


def _wsgi(app: Any) -> Post:
    transport = httpx.WSGITransport(app)

    async def post(url: str, content: bytes, timeout: float, note: str) -> tuple[int, str]:
        # Called inline, on the delivering thread (see the module docstring): WSGI is sync.
        request = httpx.Request("POST", url, content=content, headers=HEADERS)
        try:
            response = transport.handle_request(request)
            body = response.read()
        except Exception as e:
            return _crashed(url, e, note)
        return response.status_code, _text(response, body)

    return post


def _client(client: httpx.Client) -> Post:
    async def post(url: str, content: bytes, timeout: float, note: str) -> tuple[int, str]:
        try:  # the client's own timeout applies (TestClient refuses a per-request one)
            r = client.post(url, content=content, headers=HEADERS)
        except httpx.TransportError:
            raise  # the network's failure, not the app's: a failed attempt as it is
        except Exception as e:  # TestClient re-raises the app's exception
            return _crashed(url, e, note)
        return r.status_code, r.text

    return post


def _async_client(client: httpx.AsyncClient) -> Post:
    async def post(url: str, content: bytes, timeout: float, note: str) -> tuple[int, str]:
        async with asyncio.timeout(timeout):
            try:
                r = await client.post(url, content=content, headers=HEADERS)
            except httpx.TransportError:
                raise
            except Exception as e:
                return _crashed(url, e, note)
        return r.status_code, r.text

    return post


HANDOFF_SECONDS = 1.0  # a free home loop takes a callback up within microseconds


class _Handoff:
    """Who runs the app: the home loop (take) or, when it did not in time, the caller (abandon)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "offered"

    def _move(self, to: str) -> bool:
        with self._lock:
            if self._state != "offered":
                return False
            self._state = to
            return True

    def take(self) -> bool:
        return self._move("taken")

    def abandon(self) -> bool:
        return self._move("abandoned")


OFF_HOME = (
    "; it ran on a helper event loop because a synchronous call blocked the test's "
    "loop — if the app holds loop-bound resources, make sandbox calls in async tests "
    "with `await asyncio.to_thread(...)`"
)


def _poster(app: Any) -> tuple[Post, bool]:
    """(post, runs on an event loop?) for what deliver_to was given."""
    if isinstance(app, httpx.AsyncClient):
        return _async_client(app), True
    if isinstance(app, httpx.Client):
        return _client(app), False
    if is_asgi(app):
        return _asgi(app), True
    if callable(app):
        return _wsgi(app), False
    raise TypeError(
        f"deliver_to needs an ASGI app (FastAPI, Starlette), a WSGI app (Flask, "
        f"Django) or an httpx client pointed at your app, not {app!r}"
    )


def _base(app: Any, prefix: str) -> str:
    """The URL the callback path is appended to."""
    prefix = prefix.rstrip("/")
    if prefix.startswith(("http://", "https://")):
        return prefix
    if prefix and not prefix.startswith("/"):
        raise ValueError(
            f"prefix is a path such as '/lender/callbacks' or a URL such as "
            f"'http://app.test/lender/callbacks', not {prefix!r}"
        )
    if isinstance(app, (httpx.Client, httpx.AsyncClient)):
        if not str(app.base_url):
            raise ValueError(
                "this httpx client has no base_url: give deliver_to a full URL "
                "prefix such as 'http://app.test/lender/callbacks'"
            )
        return prefix  # relative: the client puts its base_url in front
    return DEFAULT_ORIGIN + prefix


# ---- the relay ----


class Sink(Protocol):
    """The receiver a relay serves (`harness.sink.MemorySink`): it records every attempt, and
    its fail_next()/hang() answer in front of the app."""

    _relay: AppRelay | None

    def _planned(self) -> tuple[Any, str] | None: ...

    def _keep(
        self,
        path: str,
        raw: bytes,
        headers: dict[str, str],
        outcome: str,
        status: int | None,
        answer: str = "",
    ) -> None: ...

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]: ...


class AppRelay:
    """Where a MemorySink sends callbacks once `deliver_to(app, prefix)` was called.

    A context manager: on exit the sink goes back to what it did before."""

    def __init__(self, sink: Sink, app: Any, prefix: str = "", *, previous: AppRelay | None = None):
        self.sink, self.app = sink, app
        self.base = _base(app, prefix)
        self._post, self._on_loop = _poster(app)
        self.home = _running_loop() if self._on_loop else None
        self._previous = previous
        self._blocked: list[asyncio.AbstractEventLoop] = []
        self._lock = threading.Lock()

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]:
        """services.senders.Sender: the app's (HTTP status, text); the sink records the exchange."""
        target = self.base + urlsplit(url).path
        path = urlsplit(target).path
        planned = self.sink._planned()
        if planned is not None:
            return self._refused(path, content, *planned, timeout)
        try:
            status, text = await self._run(target, content, timeout)
        except TimeoutError:
            self.sink._keep(path, content, HEADERS, "hung", None)
            raise
        except Exception:
            self.sink._keep(path, content, HEADERS, "failed", None)
            raise
        outcome = "failed" if refusal(status, text) else "ok"
        self.sink._keep(path, content, HEADERS, outcome, status, text)
        return status, text

    def _refused(
        self, path: str, content: bytes, answer: Any, outcome: str, timeout: float
    ) -> tuple[int, str]:
        """fail_next()/hang() of the sink: answered in front of the app, which never sees it."""
        status, text = (None, "") if outcome == "hung" else answer
        self.sink._keep(path, content, HEADERS, outcome, status, text)
        if outcome == "hung":
            raise TimeoutError(f"no answer within {timeout}s (the sink is hanging)")
        return answer

    async def _run(self, url: str, content: bytes, timeout: float) -> tuple[int, str]:
        """Post on the app's home loop when it has one that can run it now, else here."""
        home, here = self.home, asyncio.get_running_loop()
        if home is None or home is here:
            return await self._post(url, content, timeout, "")
        with self._lock:
            blocked = home in self._blocked
        if not blocked and home.is_running() and not home.is_closed():
            answer = await self._handed_home(home, url, content, timeout)
            if answer is not None:
                return answer
            blocked = True
        return await self._post(url, content, timeout, OFF_HOME if blocked else "")

    async def _handed_home(
        self, home: asyncio.AbstractEventLoop, url: str, content: bytes, timeout: float
    ) -> tuple[int, str] | None:
        """The app's answer, posted on `home`; None if home did not take it up in time.

        A free loop takes it up at once. One blocked in a way we were not told of (a sync
        call waiting on this very delivery) never does: rather than a deadlock, the caller
        then posts it itself. The handoff makes sure exactly one of the two runs the app."""
        handoff = _Handoff()

        async def on_home() -> tuple[int, str] | None:
            return await self._post(url, content, timeout, "") if handoff.take() else None

        future = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(on_home(), home))
        done, _ = await asyncio.wait({future}, timeout=HANDOFF_SECONDS)
        if not done and handoff.abandon():
            future.cancel()
            return None
        return await future

    @contextlib.contextmanager
    def blocked(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        """`loop` cannot run anything meanwhile (its thread is in a synchronous call)."""
        with self._lock:
            self._blocked.append(loop)
        try:
            yield
        finally:
            with self._lock:
                self._blocked.remove(loop)

    def close(self) -> None:
        """Stop delivering into the app (the sink records, as before deliver_to)."""
        if self.sink._relay is self:
            self.sink._relay = self._previous

    def __enter__(self) -> AppRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AppRelay({self.app!r}, base={self.base!r})"


def deliver_blocking(lender: Lender, sink: Sink) -> int:
    """`services.outbox.deliver_now` for synchronous callers: an event loop running on this thread
    is marked blocked meanwhile, so an app whose home it is runs elsewhere, not never."""
    relay, loop = sink._relay, _running_loop()
    if relay is None or loop is None:
        return deliver_now(lender, sink)
    with relay.blocked(loop):
        return deliver_now(lender, sink)
