"""The long poll behind GET /sandbox/orders/{order_no}/wait (wait instead of sleep).

A test or script waits for an order to reach a status — moved by a real/scaled clock, the
scheduler or another client — or for its callbacks to be acknowledged, instead of sleeping
and polling itself. The wait is a loop of short reads (one small transaction each, in the
loop's thread) with `asyncio.sleep` between them, so it holds no worker thread and leaves
the event loop free while it waits (the route bounds the timeout: control_models.WaitQuery).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import func, select

from ..core.errors import ControlError
from ..store import Callback, Order
from .control import order_summary
from .lender import Lender

POLL = 0.05  # seconds between reads


async def wait_for_order(
    lender: Lender,
    token: str,
    order_no: str,
    *,
    status: int | None,
    acknowledged: bool,
    timeout: float,
) -> dict[str, Any]:
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


def _look(
    lender: Lender, token: str, order_no: str, horizon: int | None
) -> tuple[dict[str, Any], set[str], int]:
    """One short read: the order summary and the states of its callbacks up to `horizon`
    (None: the newest now, which becomes the horizon)."""
    with lender.store.transaction() as s:
        lender.partner_or_404(s, token)
        order = s.scalars(
            select(Order).where(Order.partner_token == token, Order.order_no == order_no)
        ).first()
        if order is None:
            raise ControlError(
                "order_not_found", f"order_no {order_no!r} of partner {token!r}", http_status=404
            )
        if horizon is None:
            horizon = (
                s.scalar(select(func.max(Callback.id)).where(Callback.order_id == order.id)) or 0
            )
        states = set(
            s.scalars(
                select(Callback.state).where(Callback.order_id == order.id, Callback.id <= horizon)
            )
        )
        return order_summary(lender, order), states, horizon
