"""The aggregator's own HTTP client, served in-process: `Interception` and `SandboxTransport`.

Code under test calls the lender through its own client — httpx (sync or async) or requests —
at its own configured base URL. `Interception` routes every request to those base URLs into a
`Sandbox` and leaves every other request alone: httpx through respx, requests through
`responses` (the `intercept` extra), the libraries teams already mock with, so they compose
with the team's own mocks. `SandboxTransport` does the same for code that takes an injected
httpx transport. A request takes the path a real one takes (`Sandbox.serve`): the HTTP edge's
own answers (404 unknown path, 405 not POST, 413 too large: core/edge.py, as the server gives
them), then `services.pipeline.handle` — envelope, decryption, validation, lifecycle, journal,
with the client's Content-Type. The callbacks it caused are delivered before its answer returns,
as with every in-process call; an async client's request delivers them on its own event loop
(harness/delivery.py says why that matters).

HTTP-level faults (latency, dropped connections, proxy error pages) are the real server's:
use `lender_sandbox_server` for those.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable
from typing import Any, Protocol, cast

import httpx

from ..core import edge

__all__ = ["Interception", "SandboxTransport", "Target"]

JSON_HEADERS = {"content-type": "application/json;charset=utf-8"}  # as the server answers
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
EXTRA_HINT = "pip install 'lender-sandbox[intercept]'"


class Server(Protocol):
    """What answers the requests: `harness.sandbox.Sandbox` (its `serve` and `serve_async`)."""

    def serve(
        self, method: str, path: str, body: bytes, *, content_type: str | None = None
    ) -> tuple[int, bytes]: ...

    async def serve_async(
        self, method: str, path: str, body: bytes, *, content_type: str | None = None
    ) -> tuple[int, bytes]: ...


# ---------------------------------------------------------------------------- targets


class Target:
    """A base URL the sandbox serves: scheme, host, port and a path prefix."""

    def __init__(self, base_url: str):
        try:
            url = httpx.URL(base_url)
        except httpx.InvalidURL:
            url = httpx.URL()
        if url.scheme not in ("http", "https") or not url.host or url.query or url.fragment:
            raise ValueError(
                f"a base URL such as 'https://lender.example.id/api' is needed, not {base_url!r}"
            )
        self.base_url = base_url
        self._origin = _origin(url)
        self._path = url.path.rstrip("/")

    def path_of(self, url: httpx.URL | str) -> str | None:
        """The endpoint path of a request URL under this base ('/get-loan-precheck'), or None."""
        url = httpx.URL(url)
        if _origin(url) != self._origin:
            return None
        path = url.path
        if path != self._path and not path.startswith(self._path + "/"):
            return None
        return path[len(self._path) :] or "/"

    def __repr__(self) -> str:
        return f"Target({self.base_url!r})"


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.scheme, url.host.lower(), port


def _targets(base_urls: Iterable[str]) -> list[Target]:
    targets = [Target(u) for u in base_urls]
    if not targets:
        raise ValueError("intercept() needs the base URL your code calls the lender at")
    return targets


def _response(status: int, body: bytes, request: httpx.Request) -> httpx.Response:
    return httpx.Response(status, headers=JSON_HEADERS, content=body, request=request)


# ---------------------------------------------------------------------------- transport


class SandboxTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport (sync and async) answered by the sandbox: `httpx.Client(transport=...)`.

    Every request is the sandbox's, whatever its host; `base_url`'s path, if given, is the
    prefix taken off before the endpoint path (requests outside it answer 404)."""

    def __init__(self, sandbox: Server, base_url: str = ""):
        self.sandbox = sandbox
        self._prefix = httpx.URL(base_url).path.rstrip("/") if base_url else ""

    def _outside(self, url: httpx.URL) -> tuple[int, bytes] | None:
        """404 for a path outside the base path (a client pointed at the wrong place)."""
        path = url.path
        if not self._prefix or path == self._prefix or path.startswith(self._prefix + "/"):
            return None
        status, doc = edge.unknown_path(path, f"outside the base path {self._prefix}")
        return status, edge.dump(doc)

    def _path(self, url: httpx.URL) -> str:
        return url.path[len(self._prefix) :] or "/"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        result = self._outside(request.url) or self.sandbox.serve(
            request.method,
            self._path(request.url),
            body,
            content_type=request.headers.get("content-type", ""),
        )
        return _response(*result, request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        result = self._outside(request.url) or await self.sandbox.serve_async(
            request.method,
            self._path(request.url),
            body,
            content_type=request.headers.get("content-type", ""),
        )
        return _response(*result, request)


# ---------------------------------------------------------------------------- interception


def _need(module: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise RuntimeError(f"{why} needs the {module!r} package: {EXTRA_HINT}")


class Interception:
    """Requests to `base_urls` from httpx (respx) and requests (`responses`) go to `sandbox`.

    A context manager (`with sandbox.intercept(url):`), or start()/stop(). `requests=None`
    intercepts requests when it is installed (then `responses` must be too); False leaves it
    alone. Other hosts pass through — to your own respx/responses mocks if you started them
    first, else to the network."""

    def __init__(self, sandbox: Server, base_urls: Iterable[str], *, requests: bool | None = None):
        self.sandbox = sandbox
        self.targets = _targets(base_urls)
        _need("respx", "intercepting httpx")
        if requests is None:
            requests = importlib.util.find_spec("requests") is not None
        if requests:
            _need("responses", "intercepting requests")
        self._requests = requests
        self._mocks: list[Any] = []

    def path_of(self, url: httpx.URL | str) -> str | None:
        """The endpoint path of `url` under one of the base URLs, or None (not ours)."""
        return next((p for t in self.targets if (p := t.path_of(url)) is not None), None)

    def start(self) -> Interception:
        if not self._mocks:
            self._mocks = [_httpx_mock(self)] + ([_requests_mock(self)] if self._requests else [])
            for mock in self._mocks:
                mock.start()
        return self

    def stop(self) -> None:
        mocks, self._mocks = self._mocks, []
        for mock in reversed(mocks):
            mock.stop()

    def __enter__(self) -> Interception:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Interception({', '.join(t.base_url for t in self.targets)})"


def _httpx_mock(interception: Interception) -> Any:
    """A respx router that answers our base URLs and hands every other request on."""
    import respx
    from respx.models import AllMockedAssertionError, PassThrough

    sandbox = interception.sandbox

    class Router(respx.MockRouter):
        # respx calls handler (sync clients) or async_handler (async clients) on every
        # registered router until one answers; overriding both keeps each client's callbacks
        # on its own side of the sync/async line.
        def handler(self, request: httpx.Request) -> httpx.Response:
            path = self._ours(request)
            ctype = request.headers.get("content-type", "")
            answer = sandbox.serve(request.method, path, request.read(), content_type=ctype)
            return _response(*answer, request)

        async def async_handler(self, request: httpx.Request) -> httpx.Response:
            path = self._ours(request)
            ctype = request.headers.get("content-type", "")
            body = await request.aread()
            answer = await sandbox.serve_async(request.method, path, body, content_type=ctype)
            return _response(*answer, request)

        def _ours(self, request: httpx.Request) -> str:
            path = interception.path_of(request.url)
            if path is not None:
                return path
            others = [r for r in (self.Mocker.routers if self.Mocker else []) if r is not self]
            if others:
                # another respx router (the team's own mocks) decides about this request
                raise AllMockedAssertionError(f"not the lender sandbox's: {request!r}")
            raise PassThrough(
                f"not the lender sandbox's: {request!r}",
                request=request,
                origin=None,  # type: ignore[arg-type]
            )

    return Router(assert_all_called=False)


def _requests_mock(interception: Interception) -> Any:
    """A `responses` mock answering our base URLs; other requests go to whatever sent before
    it (a mock the team started first, or the network)."""
    import responses
    from requests.adapters import HTTPAdapter

    sandbox = interception.sandbox

    def matcher(request: Any) -> tuple[bool, str]:
        ours = interception.path_of(request.url) is not None
        return ours, "" if ours else "not the lender sandbox's base URL"

    def callback(request: Any) -> tuple[int, dict[str, str], bytes]:
        body = request.body or b""
        body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        path = interception.path_of(request.url) or "/"
        ctype = request.headers.get("content-type", "")
        status, content = sandbox.serve(request.method, path, body, content_type=ctype)
        return status, {}, content

    # real_adapter_send: the send that is current now, so a mock the team started first
    # still answers what is not ours (responses chains to it)
    mock = responses.RequestsMock(
        assert_all_requests_are_fired=False,
        real_adapter_send=cast(Any, HTTPAdapter.send),  # the two packages' stubs disagree
    )
    everything = re.compile(".*")
    for method in METHODS:
        mock.add_callback(
            method,
            everything,
            callback=callback,
            match=[matcher],
            content_type=JSON_HEADERS["content-type"],
        )
    mock.add_passthru(everything)
    return mock
