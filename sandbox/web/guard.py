"""The door of every request but the lender endpoints' (`SandboxApp` sends those straight to
`LenderEndpoint`, which bounds its own bodies), and who a request is.

`Guard`, plain ASGI, refuses before anything reads a request:
- on a loopback bind, a Host that is not a loopback name or address (nor `[server]
  public_url`'s host): 421 — a web page whose name was rebound to 127.0.0.1 (DNS rebinding)
  must not drive the developer's sandbox;
- on a loopback bind, a write to /sandbox or /dashboard from a page of another origin (its
  `Origin` header): 403 — a browser sends it with every cross-site POST, with or without a body;
- a write to /sandbox whose body is not JSON (a form, text/plain: what a cross-site form can
  send without asking): 415;
- a body over `[server] max_body_bytes`: 413, by its Content-Length or while it streams.
`caller` says who sends a control request: the admin token, a partner's control token, or —
on a loopback sandbox without an admin token — nobody, who then acts as the admin.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.addresses import host_name, is_loopback, origin_netloc, url_host
from ..core.errors import ControlError, SandboxError
from ..core.settings import Settings
from ..core.tenancy import ADMIN_CALLER, Caller, bearer
from ..services import credentials
from ..services.lender import Lender

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
GUARDED = ("/sandbox", "/dashboard")


def open_access(settings: Settings) -> bool:
    """No token needed: a loopback bind without an admin token (one developer's machine)."""
    return not settings.server.admin_token and is_loopback(settings.server.host)


def error_body(e: SandboxError) -> dict:
    return {"code": e.code, "error": e.name, "message": e.message}


class BodyTooLarge(HTTPException):
    """A body that went over the limit while it streamed (no Content-Length to tell before)."""

    def __init__(self, limit: int):
        super().__init__(413, f"the body is over [server] max_body_bytes ({limit} bytes)")


def too_large(limit: int) -> ControlError:
    return ControlError(
        "body_too_large",
        f"the body is over [server] max_body_bytes ({limit} bytes)",
        http_status=413,
    )


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class Guard:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.loopback = is_loopback(settings.server.host)
        public = url_host(settings.server.public_url)
        self.hosts = frozenset({public.lower()} - {""})
        self.limit = settings.server.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k: v.decode("latin-1") for k, v in reversed(scope["headers"])}  # first wins
        refused = self.refusal(scope["method"], scope["path"], headers)
        if refused is not None:
            await self._answer(refused, send)
            return
        await self.app(scope, self._bounded(receive), send)

    def refusal(self, method: str, path: str, headers: dict[bytes, str]) -> ControlError | None:
        """What this request is refused with before it is read (None: it goes on)."""
        host = headers.get(b"host")
        if self.loopback and host is not None and not self._local(host_name(host)):
            return ControlError(
                "wrong_host",
                f"this sandbox listens on a loopback address and answers only requests "
                f"addressed to localhost, 127.0.0.1 or [::1], not {host!r} (a web page whose "
                f"name points at this machine must not drive it); behind a proxy or tunnel, "
                f"set [server] public_url to its URL",
                http_status=421,
            )
        write = method in WRITES and path.startswith(GUARDED)
        origin = headers.get(b"origin")
        if self.loopback and write and origin is not None and not self._same_origin(origin, host):
            return ControlError(
                "forbidden",
                f"a page of another origin ({origin}) may not change this sandbox",
                http_status=403,
            )
        if write and path.startswith("/sandbox"):
            if refused := self._not_json(headers):
                return refused
        declared = headers.get(b"content-length", "")
        if declared.isdecimal() and int(declared) > self.limit:
            return too_large(self.limit)
        return None

    def _local(self, name: str) -> bool:
        return is_loopback(name) or name in self.hosts

    def _same_origin(self, origin: str, host: str | None) -> bool:
        netloc = origin_netloc(origin)
        return bool(netloc) and (netloc == (host or "").lower() or host_name(netloc) in self.hosts)

    @staticmethod
    def _not_json(headers: dict[bytes, str]) -> ControlError | None:
        ctype = headers.get(b"content-type")
        has_body = headers.get(b"content-length", "0") not in ("", "0") or (
            b"transfer-encoding" in headers
        )
        if (ctype is None and not has_body) or (ctype is not None and _is_json(ctype)):
            return None
        return ControlError(
            "unsupported_media_type",
            f"the control API takes JSON bodies: send Content-Type: application/json, not "
            f"{ctype or 'a body without one'} (curl: -H 'Content-Type: application/json' "
            f"-d '{{...}}', or --json '{{...}}'); a form or text/plain body is refused so that "
            f"no web page can post to it",
            http_status=415,
        )

    def _bounded(self, receive: Receive) -> Receive:
        """`receive`, failing with 413 once the body streamed in goes over the limit."""
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        return bounded

    @staticmethod
    async def _answer(e: ControlError, send: Send) -> None:
        body = json.dumps(error_body(e)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": e.http_status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# ---- who a request is ----


def _unauthorized(message: str) -> ControlError:
    return ControlError("unauthorized", message, http_status=401)


async def caller(request: Request) -> Caller:
    """Who sends `request`: the admin token or nobody on an open sandbox -> the admin; a
    partner's control token -> that partner. ControlError 401 otherwise."""
    lender: Lender = request.app.state.lender
    token = bearer(request.headers.get("authorization", ""))
    if not token:
        if open_access(lender.settings):
            return ADMIN_CALLER
        raise _unauthorized(
            "send Authorization: Bearer <token>: the admin token, or your partner's control "
            "token (answered when the partner was created)"
        )
    found = await run_in_threadpool(credentials.caller_of, lender, token)
    if found is None:
        raise _unauthorized("this token is not the admin token nor a partner's control token")
    return found
