"""Outbox rows for the callback tests, written exactly as orders.Ctx.callback writes them."""

from __future__ import annotations

from sandbox.services.lender import Lender
from sandbox.store import Callback

T0 = 1_800_000_000.0
KEY, IV = "K" * 16, "I" * 16
STATUS = "/callback-order-status"


def enqueue(
    lender: Lender,
    order_no: str = "ORD0000001",
    status: int = 90,
    token: str = "p1",
    path: str = STATUS,
) -> int:
    """One outbox row, as orders.Ctx.callback writes it."""
    with lender.store.transaction() as s:
        row = Callback(
            partner_token=token,
            order_id=None,
            order_no=order_no,
            path=path,
            body={"order_no": order_no, "order_status": status, "update_time": 1},
            created_at=T0,
            state="pending",
            attempts=0,
            next_attempt_at=lender.wall(),
            retry_at=T0,
            lease_until=0.0,
            last_error="",
        )
        s.add(row)
        s.flush()
        return row.id
