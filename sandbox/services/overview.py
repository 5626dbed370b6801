"""What the dashboard shows at a glance: orders by status, callback states, recent requests."""

from __future__ import annotations

from sqlalchemy import func, select

from ..store import Callback, JournalEntry, Order
from .lender import Lender


def order_counts(lender: Lender, token: str) -> dict[int, int]:
    with lender.store.transaction() as s:
        rows = s.execute(
            select(Order.status, func.count())
            .where(Order.partner_token == token)
            .group_by(Order.status)
        )
        return {int(status): n for status, n in rows}


def callback_states(lender: Lender, token: str) -> dict[str, int]:
    with lender.store.transaction() as s:
        rows = s.execute(
            select(Callback.state, func.count())
            .where(Callback.partner_token == token)
            .group_by(Callback.state)
        )
        return {state: n for state, n in rows}


def recent_requests(lender: Lender, token: str, limit: int = 30) -> list[JournalEntry]:
    with lender.store.transaction() as s:
        return list(
            s.scalars(
                select(JournalEntry)
                .where(JournalEntry.partner_token == token)
                .order_by(JournalEntry.id.desc())
                .limit(limit)
            )
        )
