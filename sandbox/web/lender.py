"""The lender endpoints over HTTP: body limits, then the request pipeline with its HTTP faults.

HTTP faults (latency, http_error, drop, timeout, malformed) exist only here: a rule chosen by
`services.faults.plan_http` delays the answer, replaces it with a proxy's error page, cuts
the connection, or garbles it. Everything else (and every journal entry) is the pipeline's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from functools import partial
from typing import Any

import anyio
import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from ..core import edge
from ..core.faultrules import PHP_NOTICE, Fired, answer_status, gateway_page
from ..core.protocol import SPECS
from ..services import faults, pipeline
from ..services.lender import Lender
from .access import ANSWER_KEY


class ConnectionDropped(BaseException):
    """Raised on purpose by a `drop` fault so that the server closes the connection.

    A BaseException: Starlette's middleware and error handlers catch Exception and would
    complete the answer or turn it into a 500; this one reaches the server (uvicorn), which
    closes the connection and logs it (`quiet_drops` filters that log line)."""


def quiet_drops(record: logging.LogRecord) -> bool:
    """A logging filter for the server's error log: drops on purpose are not errors."""
    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, ConnectionDropped)


def _in_test_client(scope: Scope) -> bool:
    # Starlette's TestClient (the only ASGI client offering this extension) runs the app in
    # a portal that a BaseException would kill: there the client's own error is raised.
    return "http.response.debug" in scope.get("extensions", {})


class DroppedResponse(Response):
    """Starts an answer, then fails: the server closes the connection mid-answer.

    uvicorn answers 500 when an app fails before starting its response, so the status line
    and headers go out (chunked, no body) and the client sees a broken answer — httpx
    RemoteProtocolError, curl error 18 — like a PHP worker that crashed."""

    def __init__(self, rule_id: int):
        super().__init__(status_code=200)
        self.rule_id = rule_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        why = (
            f"fault rule {self.rule_id} (kind drop): the sandbox closed the connection "
            f"on purpose (PUT /sandbox/faults)"
        )
        if _in_test_client(scope):
            raise httpx.RemoteProtocolError(why)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json;charset=utf-8")],
            }
        )
        raise ConnectionDropped(why)


async def _hold(request: Request, seconds: float) -> None:
    """Wait `seconds`, or less when the client hangs up first (its http.disconnect)."""
    with anyio.move_on_after(seconds):
        while (await request.receive())["type"] != "http.disconnect":
            await asyncio.sleep(0.05)  # the body was read: nothing else should come


async def _fault_answer(request: Request, f: Fired) -> Response:
    if f.kind == "drop":
        return DroppedResponse(f.rule_id)
    if f.kind == "timeout":
        await _hold(request, (f.ms or 0) / 1000)
    status = answer_status(f)
    return HTMLResponse(gateway_page(status), status_code=status)


def _malformed(reply: Any, f: Fired) -> Response:
    text = json.dumps(reply.body, ensure_ascii=False, separators=(",", ":"))
    text = PHP_NOTICE + text if f.spec.get("style") == "php_notice" else text[: len(text) // 2]
    return Response(text, status_code=200, media_type="application/json;charset=utf-8")


async def _handle(lender: Lender, path: str, body: bytes, content_type: str) -> pipeline.Reply:
    """The pipeline, with the HTTP faults for this layer. On SQLite it runs on the event loop:
    its statements take microseconds and SQLite has one writer anyway, while a hop to a worker
    thread and back costs more than the request's SQL. PostgreSQL waits on the network: a
    worker thread."""
    if lender.store.is_sqlite:
        return pipeline.handle(lender, path, body, http=True, content_type=content_type)
    return await run_in_threadpool(
        partial(pipeline.handle, lender, path, body, http=True, content_type=content_type)
    )


async def serve(lender: Lender, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
    """A lender endpoint with its HTTP faults: the answer (or a fault's in its place), after
    any injected latency."""
    reply = await _handle(lender, scope["path"], body, _header(scope, b"content-type")[:200])
    partner = reply.partner.partner_token if reply.partner is not None else None
    scope[ANSWER_KEY] = (reply.code if reply.answered else None, partner)  # for RequestLog
    plan = reply.http
    if plan is not None and plan.delay is not None:
        await asyncio.sleep((plan.delay.ms or 0) / 1000)
    if reply.extra.get("callback_first"):
        await faults.deliver_first(lender, reply.partner_token)
    answer = plan.answer if plan is not None else None
    if answer is None:
        if reply.extra.get("gateway"):
            page = HTMLResponse(gateway_page(reply.extra["gateway"]), status_code=reply.http_status)
            await page(scope, receive, send)
        else:
            await send_json(send, reply.body, reply.http_status)
    elif answer.kind == "malformed":
        await _malformed(reply, answer)(scope, receive, send)
    else:
        response = await _fault_answer(Request(scope, receive), answer)
        await response(scope, receive, send)


# ---- the endpoint: plain ASGI ----

JSON_TYPE = b"application/json;charset=utf-8"


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def send_json(send: Send, doc: dict, status: int = 200) -> None:
    """A protocol envelope as the answer (what JSONResponse sends, without its machinery)."""
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", JSON_TYPE), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The body, or None when it exceeds `limit` (checked while streaming, not after)."""
    declared = _header(scope, b"content-length")
    if declared.isdecimal() and int(declared) > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class LenderEndpoint:
    """The lender endpoints 02-18 as one plain ASGI app: read the body (bounded), run the
    pipeline, answer. `SandboxApp` calls it first, before Starlette's middleware and router:
    a lender request pays for its own work only."""

    def __init__(self, lender: Lender):
        self.lender = lender
        self.limit = lender.settings.server.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(scope, receive, self.limit)
        if body is None:
            status, answer = edge.too_large(scope["path"], self.limit)
            scope[ANSWER_KEY] = (answer.get("code"), None)
            await send_json(send, answer, status)
            return
        await serve(self.lender, scope, receive, send, body)


PATHS = frozenset(spec.path for spec in SPECS)


def lender_routes(endpoint: LenderEndpoint) -> list[BaseRoute]:
    """The lender endpoints as routes (what the router answers 405 for, and lists)."""
    return [Route(e.path, endpoint, methods=["POST"], name=e.path.strip("/")) for e in SPECS]
