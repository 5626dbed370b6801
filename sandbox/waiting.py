"""The long-poll route: GET /sandbox/orders/{order_no}/wait (wait instead of sleep).

A test or script waits for an order to reach a status — moved by a real/scaled clock, the
scheduler or another client — or for its callbacks to be acknowledged, instead of sleeping
and polling itself. The wait is a loop of short reads (one small transaction each, in the
loop's thread) with `asyncio.sleep` between them, so it holds no worker thread and leaves
the event loop free while it waits. The timeout is bounded: default 10 s, at most 60 s.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from .control import ControlError, order_summary
from .lender import Lender
from .lifecycle import Status
from .store import Callback, Order, Partner

POLL = 0.05           # seconds between reads
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 60.0


async def wait_for_order(lender: Lender, token: str, order_no: str, *, status: int | None,
                         acknowledged: bool, timeout: float) -> dict[str, Any]:
    """Poll until the order is in `status` and/or every callback it had when the wait began
    is delivered; the order summary with `reached`. A dead callback ends the wait unreached."""
    deadline = time.monotonic() + timeout
    horizon: int | None = None
    while True:
        summary, states, horizon = _look(lender, token, order_no, horizon)
        if not acknowledged:
            states = set()
        reached = (status is None or summary["status"] == status) and states <= {"delivered"}
        if reached or "dead" in states or time.monotonic() >= deadline:
            return {**summary, "reached": reached}
        await asyncio.sleep(POLL)


def _look(lender: Lender, token: str, order_no: str, horizon: int | None
          ) -> tuple[dict[str, Any], set[str], int]:
    """One short read: the order summary and the states of its callbacks up to `horizon`
    (None: the newest now, which becomes the horizon)."""
    with lender.store.transaction() as s:
        if s.get(Partner, token) is None:
            raise ControlError("unknown_partner", f"partner_token {token!r}", http_status=404)
        order = s.scalars(select(Order).where(Order.partner_token == token,
                                              Order.order_no == order_no)).first()
        if order is None:
            raise ControlError("order_not_found", f"order_no {order_no!r} of partner {token!r}",
                               http_status=404)
        if horizon is None:
            horizon = s.scalar(select(func.max(Callback.id)).where(
                Callback.order_id == order.id)) or 0
        states = set(s.scalars(select(Callback.state).where(Callback.order_id == order.id,
                                                            Callback.id <= horizon)))
        return order_summary(lender, order), states, horizon


def routes(lender: Lender) -> list[BaseRoute]:
    async def wait(request: Request) -> JSONResponse:
        q = request.query_params
        try:
            if not q.get("partner_token"):
                raise ControlError("missing_field", "partner_token is required")
            status, acknowledged = _status(q.get("status")), _acknowledged(q.get("callback"))
            if status is None and not acknowledged:
                raise ControlError("missing_field", "send status=<code>, callback=acknowledged "
                                                    "or both")
            result = await wait_for_order(lender, q["partner_token"],
                                          request.path_params["order_no"], status=status,
                                          acknowledged=acknowledged,
                                          timeout=_timeout(q.get("timeout")))
        except ControlError as e:
            return JSONResponse({"code": e.code, "error": e.name, "message": e.message},
                                status_code=e.http_status)
        return JSONResponse(result)

    return [Route("/sandbox/orders/{order_no}/wait", wait, methods=["GET"])]


def _status(value: str | None) -> int | None:
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
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ControlError("invalid_field", f"timeout {value!r} must be seconds >= 0")
    return min(seconds, MAX_TIMEOUT)
