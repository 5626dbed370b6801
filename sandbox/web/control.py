"""The control API (/sandbox/*) as one route table: plain JSON in and out, errors as 4xx JSON.

Every route is a row of `ROUTES`: method, path, and the function that answers it from the
request's body, query and path parameters through the services. The app mounts the table
under /sandbox behind its guard; the OpenAPI document is generated from the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core.errors import ControlError, SandboxError
from ..core.lifecycle import Status
from ..services import control, deliveries, envelope_tools, faults, journal, payments, waiting
from ..services.lender import Lender


@dataclass(frozen=True)
class Call:
    """One control request, parsed: the JSON body, the query string and the path parameters."""
    lender: Lender
    body: dict[str, Any]
    query: dict[str, str]
    path: dict[str, Any]

    def need(self, name: str) -> str:
        value = self.query.get(name) or self.body.get(name)
        if not value:
            raise ControlError("missing_field", f"{name} is required")
        return str(value)


Handler = Callable[[Call], Any]


@dataclass(frozen=True)
class ControlRoute:
    method: str
    path: str            # under /sandbox
    handler: Handler
    blocking: bool = True   # runs in the thread pool (it reads or writes the store)


def _int_param(q: dict[str, str], name: str) -> int | None:
    value = q.get(name)
    if value in (None, ""):
        return None
    if not value.lstrip("-").isdigit() or not -2**63 < int(value) < 2**63:
        raise ControlError("invalid_field", f"{name} must be an integer")
    return int(value)


def _limit(q: dict[str, str], default: int, low_is_error: bool = True) -> int:
    value = q.get("limit")
    if value in (None, ""):
        return default
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise ControlError("invalid_field", "limit must be an integer 1-1000")
    return int(value)


def _rule_id(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    if not value.isdigit() or int(value) >= 2**63:
        raise ControlError("invalid_field", "id must be a rule id (an integer)")
    return int(value)


def _wait_status(value: str | None) -> int | None:
    codes = [str(int(s)) for s in Status]
    if value in (None, ""):
        return None
    if value not in codes:
        raise ControlError("invalid_field", f"status {value!r} is not an order status "
                                            f"({', '.join(codes)})")
    return int(value)


def _acknowledged(value: str | None) -> bool:
    if value not in (None, "", "acknowledged"):
        raise ControlError("invalid_field", f"callback {value!r}: the only value is "
                                            "'acknowledged'")
    return value == "acknowledged"


def _timeout(value: str | None) -> float:
    """Seconds, default 10, capped at 60: a long poll must not hold a connection forever."""
    if value in (None, ""):
        return waiting.DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ControlError("invalid_field", f"timeout {value!r} must be seconds >= 0")
    return min(seconds, waiting.MAX_TIMEOUT)


async def _wait(c: Call) -> dict[str, Any]:
    if not c.query.get("partner_token"):
        raise ControlError("missing_field", "partner_token is required")
    status, acknowledged = _wait_status(c.query.get("status")), _acknowledged(c.query.get("callback"))
    if status is None and not acknowledged:
        raise ControlError("missing_field", "send status=<code>, callback=acknowledged or both")
    return await waiting.wait_for_order(c.lender, c.query["partner_token"], c.path["order_no"],
                                        status=status, acknowledged=acknowledged,
                                        timeout=_timeout(c.query.get("timeout")))


def _health(c: Call) -> dict[str, Any]:
    L = c.lender
    return {"status": "ok", "database": L.store.engine.dialect.name,
            "partners": len(control.list_partners(L))}


ROUTES: tuple[ControlRoute, ...] = (
    ControlRoute("GET", "/health", _health),
    ControlRoute("GET", "/partners", lambda c: control.list_partners(c.lender)),
    ControlRoute("POST", "/partners", lambda c: control.create_partner(c.lender, c.body)),
    ControlRoute("GET", "/partners/{token}", lambda c: control.get_partner(
        c.lender, c.path["token"], secrets=c.query.get("secrets") in ("1", "true"))),
    ControlRoute("PATCH", "/partners/{token}", lambda c: control.update_partner(
        c.lender, c.path["token"], c.body)),
    ControlRoute("GET", "/partners/{token}/clock", lambda c: control.get_clock(
        c.lender, c.path["token"])),
    ControlRoute("POST", "/partners/{token}/clock/advance", lambda c: control.advance_clock(
        c.lender, c.path["token"], control.clock_seconds(c.body))),
    ControlRoute("POST", "/partners/{token}/clock/set", lambda c: control.set_clock(
        c.lender, c.path["token"], control.clock_target(c.body))),
    ControlRoute("POST", "/partners/{token}/callbacks/pause", lambda c: control.update_partner(
        c.lender, c.path["token"], {"callbacks_paused": True})),
    ControlRoute("POST", "/partners/{token}/callbacks/resume", lambda c: control.update_partner(
        c.lender, c.path["token"], {"callbacks_paused": False})),
    ControlRoute("GET", "/orders", lambda c: control.list_orders(
        c.lender, c.query.get("partner_token"), _int_param(c.query, "status"),
        min(max(_int_param(c.query, "limit") or 200, 1), 1000))),
    ControlRoute("GET", "/orders/{order_no}", lambda c: control.order_detail(
        c.lender, c.need("partner_token"), c.path["order_no"])),
    ControlRoute("POST", "/orders/{order_no}/transition", lambda c: control.transition(
        c.lender, c.need("partner_token"), c.path["order_no"], c.need("trigger"), c.body)),
    ControlRoute("GET", "/orders/{order_no}/wait", _wait, blocking=False),
    ControlRoute("POST", "/payments", lambda c: payments.pay(
        c.lender, c.need("repay_code"), c.body.get("amount"))),
    ControlRoute("GET", "/callbacks", lambda c: deliveries.list_deliveries(
        c.lender, c.query.get("partner_token"), c.query.get("order_no"), c.query.get("state"),
        _limit(c.query, 200))),
    ControlRoute("GET", "/callbacks/{id:int}", lambda c: deliveries.get_delivery(
        c.lender, c.path["id"])),
    ControlRoute("POST", "/callbacks/{id:int}/redeliver", lambda c: deliveries.redeliver(
        c.lender, c.path["id"])),
    ControlRoute("GET", "/journal", lambda c: journal.list_entries(
        c.lender, c.query.get("partner_token"), c.query.get("path"),
        _limit(c.query, journal.DEFAULT_LIMIT))),
    ControlRoute("DELETE", "/journal", lambda c: journal.clear(
        c.lender, c.query.get("partner_token"))),
    ControlRoute("GET", "/faults", lambda c: faults.list_rules(
        c.lender, c.query.get("partner_token"))),
    ControlRoute("PUT", "/faults", lambda c: faults.put_rules(c.lender, c.body)),
    ControlRoute("POST", "/faults", lambda c: faults.add_rules(c.lender, c.body)),
    ControlRoute("DELETE", "/faults", lambda c: faults.clear_rules(
        c.lender, _rule_id(c.query.get("id")), c.query.get("partner_token"))),
    ControlRoute("POST", "/reset", lambda c: control.reset(c.lender, c.body.get("partner_token"))),
    ControlRoute("POST", "/tools/encrypt", lambda c: envelope_tools.encrypt(c.lender, c.body)),
    ControlRoute("POST", "/tools/decrypt", lambda c: envelope_tools.decrypt(c.lender, c.body)),
)


def json_error(e: SandboxError) -> JSONResponse:
    status = e.http_status if e.http_status >= 400 else 400
    return JSONResponse({"code": e.code, "error": e.name, "message": e.message}, status_code=status)


def _parse_json(raw: bytes) -> dict:
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise ControlError("bad_envelope", "the body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ControlError("bad_envelope", "the body must be a JSON object")
    return doc


def endpoint(lender: Lender, route: ControlRoute) -> Callable[[Request], Awaitable[Response]]:
    """The ASGI endpoint of a route: parse, run (off the loop when it blocks), answer JSON."""
    async def answer(request: Request) -> Response:
        try:
            raw = await request.body() if request.method in ("POST", "PUT", "PATCH") else b""
            call = Call(lender, _parse_json(raw), dict(request.query_params),
                        dict(request.path_params))
            if route.blocking:
                result = await run_in_threadpool(route.handler, call)
            else:
                result = await route.handler(call)
        except SandboxError as e:
            return json_error(e)
        return result if isinstance(result, Response) else JSONResponse(result)
    return answer


def routes(lender: Lender) -> list[BaseRoute]:
    return [Route(r.path, endpoint(lender, r), methods=[r.method]) for r in ROUTES]
