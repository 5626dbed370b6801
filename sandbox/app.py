"""The web layer: `create_app(settings)` builds a Starlette app with its own lender and store.

Only this module (and the route lists it gathers) touch Starlette. Lender endpoints answer
the protocol envelope (HTTP 200 with a code, 405/404/413 for transport problems);
/sandbox/* answers plain JSON. No module-level state: each app is independent.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import api, callbacks, control, dashboard, faults, journal, openapi, pages, tools, waiting
from .config import Settings, load_settings
from .errors import BY_NAME, SandboxError
from .lender import Lender
from .protocol import render
from .store import Store

log = logging.getLogger("sandbox")

def protocol_json(body: dict, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type="application/json;charset=utf-8")


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it exceeds `limit` (checked while streaming, not after)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def lender_routes(lender: Lender) -> list[BaseRoute]:
    limit = lender.settings.server.max_body_bytes

    async def endpoint(request: Request) -> Response:
        path = request.url.path
        body = await read_body(request, limit)
        if body is None:
            e = SandboxError("body_too_large", f"limit {limit} bytes", http_status=413)
            return protocol_json(render(path, e.code, e.message, {}), 413)
        return await faults.serve(lender, request, path, body, protocol_json)

    return [Route(e.path, endpoint, methods=["POST"], name=e.path.strip("/"))
            for e in api.ENDPOINTS]


def _json_error(e: SandboxError) -> JSONResponse:
    status = e.http_status if e.http_status >= 400 else 400
    return JSONResponse({"code": e.code, "error": e.name, "message": e.message}, status_code=status)


def control_endpoint(fn: Callable[[Request], Any]) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a sync control handler: JSON out, SandboxError -> 4xx JSON, run off the loop."""
    async def wrapper(request: Request) -> Response:
        try:
            raw = await request.body() if request.method in ("POST", "PUT", "PATCH") else b""
            request.state.json = _parse_json(raw)
            result = await run_in_threadpool(fn, request)
        except SandboxError as e:
            return _json_error(e)
        return result if isinstance(result, Response) else JSONResponse(result)
    return wrapper


def _parse_json(raw: bytes) -> dict:
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise control.ControlError("bad_envelope", "the body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise control.ControlError("bad_envelope", "the body must be a JSON object")
    return doc


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if not value.lstrip("-").isdigit() or not -2**63 < int(value) < 2**63:
        raise control.ControlError("invalid_field", f"{name} must be an integer")
    return int(value)


def control_routes(lender: Lender) -> list[BaseRoute]:
    L = lender

    def body(r: Request) -> dict:
        return r.state.json

    def need(r: Request, name: str) -> str:
        value = r.query_params.get(name) or body(r).get(name)
        if not value:
            raise control.ControlError("missing_field", f"{name} is required")
        return str(value)

    handlers: list[tuple[str, str, Callable[[Request], Any]]] = [
        ("GET", "/sandbox/health", lambda r: {"status": "ok", "database": L.store.engine.dialect.name,
                                              "partners": len(control.list_partners(L))}),
        ("GET", "/sandbox/partners", lambda r: control.list_partners(L)),
        ("POST", "/sandbox/partners", lambda r: control.create_partner(L, body(r))),
        ("GET", "/sandbox/partners/{token}", lambda r: control.get_partner(
            L, r.path_params["token"], secrets=r.query_params.get("secrets") in ("1", "true"))),
        ("PATCH", "/sandbox/partners/{token}", lambda r: control.update_partner(
            L, r.path_params["token"], body(r))),
        ("GET", "/sandbox/partners/{token}/clock", lambda r: control.get_clock(L, r.path_params["token"])),
        ("POST", "/sandbox/partners/{token}/clock/advance", lambda r: control.advance_clock(
            L, r.path_params["token"], control.clock_seconds(body(r)))),
        ("POST", "/sandbox/partners/{token}/clock/set", lambda r: control.set_clock(
            L, r.path_params["token"], control.clock_target(body(r)))),
        ("GET", "/sandbox/orders", lambda r: control.list_orders(
            L, r.query_params.get("partner_token"), _int_param(r, "status"),
            min(max(_int_param(r, "limit") or 200, 1), 1000))),
        ("GET", "/sandbox/orders/{order_no}", lambda r: control.order_detail(
            L, need(r, "partner_token"), r.path_params["order_no"])),
        ("POST", "/sandbox/orders/{order_no}/transition", lambda r: control.transition(
            L, need(r, "partner_token"), r.path_params["order_no"], need(r, "trigger"), body(r))),
        ("POST", "/sandbox/payments", lambda r: control.pay(
            L, need(r, "repay_code"), body(r).get("amount"))),
        ("POST", "/sandbox/reset", lambda r: control.reset(L, body(r).get("partner_token"))),
    ]
    return [Route(path, control_endpoint(fn), methods=[method]) for method, path, fn in handlers]


def get_routes(lender: Lender) -> list[BaseRoute]:
    # One line per module that owns routes.
    return (lender_routes(lender) + control_routes(lender) + pages.routes(lender)
            + dashboard.routes(lender)
            + waiting.routes(lender)
            + callbacks.routes(lender)
            + journal.routes(lender)
            + faults.routes(lender)
            + tools.routes(lender)
            + openapi.routes(lender))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if path.startswith("/sandbox"):
        return JSONResponse({"code": exc.status_code, "error": "http", "message": exc.detail},
                            status_code=exc.status_code)
    # protocol.md §1 ruling: transport problems use HTTP status codes, still in the envelope
    text = {404: f"unknown path {path}", 405: "every lender endpoint is POST"}.get(
        exc.status_code, str(exc.detail))
    body = render(path, BY_NAME["bad_envelope"].code, text, {})
    return protocol_json(body, exc.status_code)


async def _internal_error(request: Request, exc: Exception) -> Response:
    """A sandbox bug: logged with its traceback, answered without one (never a bare 500 page)."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    internal = BY_NAME["internal"]
    if request.url.path.startswith(("/sandbox", "/dashboard")):
        return JSONResponse({"code": internal.code, "error": internal.name,
                             "message": internal.meaning}, status_code=500)
    return protocol_json(render(request.url.path, internal.code, internal.message, {}))


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def admin_guard(settings: Settings) -> Callable[..., Any]:
    """On a non-loopback bind, /sandbox/* and the dashboard need the admin token."""
    token = settings.server.admin_token
    protect = bool(token) or not _is_loopback(settings.server.host)

    async def middleware(request: Request, call_next: Callable[..., Awaitable[Response]]) -> Response:
        path = request.url.path
        if protect and (path.startswith("/sandbox") or path.startswith("/dashboard")) \
                and path != "/sandbox/health":
            if request.headers.get("authorization", "") != f"Bearer {token}" or not token:
                return JSONResponse({"code": 401, "error": "unauthorized",
                                     "message": "send Authorization: Bearer <admin token>"},
                                    status_code=401)
        return await call_next(request)
    return middleware


def create_lender(settings: Settings, *, store: Store | None = None,
                  wall: Callable[[], float] | None = None) -> Lender:
    kwargs: dict[str, Any] = {} if wall is None else {"wall": wall}
    lender = Lender(settings, store or Store(settings.database.url), **kwargs)
    lender.seed()
    return lender


def create_app(settings: Settings | None = None, *, lender: Lender | None = None,
               background: bool = True, on_ready: Callable[[], None] | None = None) -> Starlette:
    """The whole sandbox as an ASGI app. `background` runs the scheduler (due events, outbox);
    `on_ready` is called once start-up is done (serve prints its banner then)."""
    settings = settings or (lender.settings if lender else load_settings())
    lender = lender or create_lender(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        from . import scheduler
        runner = scheduler.start(lender) if background else None
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            if runner is not None:
                await runner.stop()

    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    app = Starlette(routes=get_routes(lender), lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error, Exception: _internal_error},
                    middleware=[Middleware(BaseHTTPMiddleware, dispatch=admin_guard(settings))])
    app.state.lender = lender
    return app


def banner(lender: Lender) -> str:
    s = lender.settings
    url = s.public_url()
    lines = [f"Lender Sandbox ready on {url}  (database: {s.database.url})", ""]
    for p in s.partners:
        lines.append(f"  partner_token={p.partner_token}  aes_key={p.aes_key}  aes_iv={p.aes_iv}")
    lines.append("")
    for p in lender.products.values():
        unit = "days" if p.term_unit == 1 else "months"
        lines.append(f"  product {p.product_id} {p.product_name}: {p.amount_min}-{p.amount_max} IDR, "
                     f"terms {list(p.terms)} {unit}, interest {p.interest_rate}/{unit[:-1]}")
    lines += ["", f"  try:  curl -s {url}/sandbox/health", f"  docs: {url}/docs",
              "  magic mobile suffixes choose outcomes: see fixtures/scenarios.toml", ""]
    for w in lender.warnings():
        lines.append(f"  WARNING: {w}")
    return "\n".join(lines)


def run_server(config_path: str | Path | None = None, *, host: str | None = None,
               port: int | None = None) -> None:
    import uvicorn
    overrides: dict[str, Any] = {"server": {}}
    if host:
        overrides["server"]["host"] = host
    if port:
        overrides["server"]["port"] = port
    settings = load_settings(config_path, overrides)
    if not _is_loopback(settings.server.host) and not settings.server.admin_token:
        raise SystemExit("refusing to bind a non-loopback address without [server] admin_token "
                         "(or LENDER_SANDBOX_ADMIN_TOKEN): the control API would be open to all")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("apscheduler", "httpx"):  # a line per tick / per callback attempt is noise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").addFilter(faults.quiet_drops)  # injected drops are not errors
    lender = create_lender(settings)
    app = create_app(settings, lender=lender, on_ready=lambda: print(banner(lender), flush=True))
    uvicorn.run(app, host=settings.server.host, port=settings.server.port, log_level="warning")
