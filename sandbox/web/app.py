"""The app factory: `create_app(settings)` builds a Starlette app with its own lender and store.

Lender endpoints answer the protocol envelope (HTTP 200 with a code, 405/404/413 for
transport problems); every other request passes `web.guard.Guard` first (Host, origin, JSON
bodies, body size); /sandbox/* (the table in `web.control`) answers plain JSON, each route
to the tokens its scope takes. No module-level state: each app is independent.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from ..core import edge
from ..core.addresses import is_loopback
from ..core.envelope import render
from ..core.errors import BY_NAME, ControlError
from ..core.settings import Settings
from ..services import scheduler
from ..services.config import load_settings
from ..services.lender import Lender, create_lender
from ..services.metrics import Metrics
from . import control, dashboard, openapi, pages
from .access import RequestLog
from .guard import BodyTooLarge, Guard, caller, error_body, too_large
from .lender import PATHS, LenderEndpoint, lender_routes

log = logging.getLogger("sandbox")
STATIC = Path(__file__).parent / "static"


def protocol_json(body: dict, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type="application/json;charset=utf-8")


async def _metrics(request: Request) -> Response:
    """GET /metrics: this process's metrics in the Prometheus text format, for the admin (the
    partners' tokens are its labels). The database reads behind it run in the thread pool."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    try:
        who = await caller(request)
        if not who.admin:
            raise ControlError("forbidden", "/metrics is the admin's", http_status=403)
    except ControlError as e:
        return JSONResponse(error_body(e), status_code=e.http_status)
    registry = request.app.state.metrics.registry
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def get_routes(lender: Lender, endpoint: LenderEndpoint) -> list[BaseRoute]:
    return [
        *lender_routes(endpoint),
        Route("/metrics", _metrics, methods=["GET"]),
        Mount("/sandbox", routes=control.routes()),
        *pages.routes(lender),
        *dashboard.routes(lender),
        *openapi.routes(lender),
        # the pages' scripts (vendored htmx, ui.js): no CDN, works offline
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if path.startswith("/sandbox"):
        return JSONResponse(
            {"code": exc.status_code, "error": "http", "message": exc.detail},
            status_code=exc.status_code,
        )
    # docs/protocol.md §1 ruling: transport problems use HTTP status codes, still in the envelope
    status, body = edge.http_error(path, exc.status_code, str(exc.detail))
    return protocol_json(body, status)


async def _too_large(request: Request, exc: Exception) -> Response:
    """A body that went over [server] max_body_bytes while it streamed (web.guard)."""
    limit = request.app.state.lender.settings.server.max_body_bytes
    e = too_large(limit)
    return JSONResponse(error_body(e), status_code=e.http_status)


async def _internal_error(request: Request, exc: Exception) -> Response:
    """A sandbox bug: logged with its traceback, answered without one (never a bare 500 page)."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    internal = BY_NAME["internal"]
    if request.url.path.startswith(("/sandbox", "/dashboard")):
        return JSONResponse(
            {"code": internal.code, "error": internal.name, "message": internal.meaning},
            status_code=500,
        )
    return protocol_json(render(request.url.path, internal.code, internal.message, {}))


class SandboxApp(Starlette):
    """Starlette, with a front door for the lender endpoints: a POST to one of them goes
    straight to `LenderEndpoint`, past the middleware and the router (which answer every other
    request, the lender paths' 404s and 405s included). Every HTTP request passes
    `RequestLog` first (its id, metrics, the access line)."""

    def __init__(
        self, *args: Any, lender_endpoint: LenderEndpoint, metrics: Metrics, log: bool, **kw: Any
    ):
        super().__init__(*args, **kw)
        self.lender_endpoint = lender_endpoint
        self.requests = RequestLog(self._dispatch, metrics, lender_paths=PATHS, log=log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.requests(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST" and scope["path"] in PATHS:
            scope["app"] = self
            await self.lender_endpoint(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    lender: Lender | None = None,
    background: bool = True,
    on_ready: Callable[[], None] | None = None,
) -> Starlette:
    """The whole sandbox as an ASGI app. `background` runs the scheduler (due events, outbox);
    `on_ready` is called once start-up is done (serve prints its banner then)."""
    settings = settings or (lender.settings if lender else load_settings())
    the_lender = lender or create_lender(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runner = scheduler.start(the_lender) if background else None
        app.state.heartbeat = runner.heartbeat if runner is not None else None
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            if runner is not None:
                await runner.stop()

    from starlette.middleware import Middleware

    endpoint = LenderEndpoint(the_lender)
    metrics = Metrics(the_lender)
    app = SandboxApp(
        lender_endpoint=endpoint,
        metrics=metrics,
        log=settings.server.access_log,
        routes=get_routes(the_lender, endpoint),
        lifespan=lifespan,
        exception_handlers={
            BodyTooLarge: _too_large,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
        middleware=[Middleware(Guard, settings=settings)],
    )
    app.state.lender = the_lender
    app.state.metrics = metrics
    app.state.heartbeat = None  # the scheduler's, once it runs (/sandbox/health)
    return app


__all__ = ["Route", "create_app", "create_lender", "get_routes", "is_loopback"]
