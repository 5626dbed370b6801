"""Every HTTP request's id, metrics and access line; the log formats of `serve`.

`RequestLog` wraps the whole app (the lender endpoints, which skip Starlette's middleware,
included): it gives each request an id — the client's `X-Request-Id` when it sends a sane
one, else a new one — returns it as `X-Request-Id`, makes it the `request_id` of every log
record written while the request runs, counts the request in the app's metrics and, with
`[server] access_log`, writes one line on the "sandbox.access" logger. `configure_logging`
sets up `[server] log_format`: "text" lines or one JSON object per line.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import time
from datetime import datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..services.metrics import Metrics

ACCESS = logging.getLogger("sandbox.access")
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
HEADER = b"x-request-id"
MAX_ID = 128
ANSWER_KEY = "sandbox.answer"  # set by the lender endpoint: (answer code or None, partner)


def incoming_id(scope: Scope) -> str | None:
    """The client's X-Request-Id when it is 1-128 visible ASCII characters (a proxy's id
    follows the request into our logs; anything else is replaced, never echoed)."""
    for key, value in scope["headers"]:
        if key == HEADER:
            if 0 < len(value) <= MAX_ID and all(33 <= b <= 126 for b in value):
                return str(value.decode("ascii"))
            return None
    return None


class RequestLog:
    """The outermost layer of the app: request id, metrics and the access line."""

    def __init__(self, app: ASGIApp, metrics: Metrics, *, lender_paths: frozenset[str], log: bool):
        self.app, self.metrics = app, metrics
        self.lender_paths, self.log = lender_paths, log
        self._prefix = os.urandom(4).hex()  # a process's ids differ from another's
        self._count = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        rid = incoming_id(scope) or f"{self._prefix}{next(self._count):08x}"
        token = REQUEST_ID.set(rid)
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except BaseException:
            status = 0  # no complete answer: a dropped connection (fault rule) or a crash
            raise
        finally:
            REQUEST_ID.reset(token)
            self._done(scope, rid, status, time.perf_counter() - started)

    def _done(self, scope: Scope, rid: str, status: int, seconds: float) -> None:
        path = scope["path"]
        answer = scope.get(ANSWER_KEY)
        if answer is not None:
            self.metrics.lender_request(path, answer[0], answer[1], seconds)
        else:
            self.metrics.other_request(scope["method"], _route(scope), status)
        if self.log:
            _access_line(scope, rid, status, seconds, answer)


def _route(scope: Scope) -> str:
    """The route template that answered (bounded label values), not the URL."""
    route = scope.get("route")
    if route is None or not hasattr(route, "path"):
        return "unmatched"
    return str(scope.get("root_path", "") + route.path)


def _access_line(
    scope: Scope, rid: str, status: int, seconds: float, answer: tuple[Any, Any] | None
) -> None:
    query = scope.get("query_string", b"").decode("latin-1")
    target = scope["path"] + ("?" + query if query else "")
    client = scope.get("client")
    fields: dict[str, Any] = {
        "request_id": rid,
        "client": f"{client[0]}:{client[1]}" if client else "",
        "method": scope["method"],
        "path": target,
        "status": status,
        "ms": round(seconds * 1000, 3),
    }
    if answer is not None:
        fields["code"], fields["partner"] = answer
    tail = f" code={answer[0]} partner={answer[1] or '-'}" if answer is not None else ""
    ACCESS.info(
        '%s - "%s %s HTTP/%s" %d %.1fms id=%s%s',
        fields["client"],
        fields["method"],
        target,
        scope.get("http_version", "1.1"),
        status,
        fields["ms"],
        rid,
        tail,
        extra={"access": fields},
    )


# ---- log formats ----


class RequestIdFilter(logging.Filter):
    """Gives every record the id of the request it was written in ("" outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, the access
    line's fields, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created)
            .astimezone()
            .isoformat("T", "milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", "")
        if rid:
            doc["request_id"] = rid
        doc.update(getattr(record, "access", None) or {})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """One line per record; a record written during a request ends with its id (an access
    line already names it)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", "")
        return f"{line} [id={rid}]" if rid and record.name != ACCESS.name else line


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(log_format: str, access_log: bool, level: int = logging.INFO) -> None:
    """The root logger's one handler (stderr) in `log_format`, with request ids; the access
    log's level by `access_log` (uvicorn's own access log stays off: ours replaces it)."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    ACCESS.setLevel(logging.INFO if access_log else logging.WARNING)
