"""Outbox rows for the callback tests, written exactly as orders.Ctx.callback writes them."""

from __future__ import annotations

import zlib

from sandbox.services.lender import Lender
from sandbox.store import Callback

T0 = 1_800_000_000.0
KEY, IV = "K" * 16, "I" * 16
STATUS = "/callback-order-status"


def order_id(token: str, order_no: str) -> int:
    """The id the order would have: rows of one order share it (the outbox orders by it)."""
    return zlib.crc32(f"{token}/{order_no}".encode()) & 0x7FFFFFFF  # a 32-bit INTEGER


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
            order_id=order_id(token, order_no),
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
