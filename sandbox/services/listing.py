"""The control API's lists, one page at a time (core.paging): orders, journal entries,
callback deliveries, partners, fault rules.

Each takes its query model (limit, cursor, filters) and answers a `Page`: the JSON body the
route always answered and the next page's cursor. Keyset queries on the indexes of
store.tables (partner + id, partner + status + id, ...), so a page at 100 000 orders costs
what it costs at 100. The views are the ones the single-item routes show.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import load_only

from ..core import control_models as m
from ..core import paging
from ..core.paging import Page
from ..store import Callback, FaultRule, JournalEntry, Order, Partner
from . import control, deliveries, faults, journal
from .lender import Lender


def _after(kind: str, cursor: str | None) -> int | None:
    """The id a cursor of list `kind` continues from (None: the first page)."""
    return None if cursor is None else int(paging.decode(kind, cursor, (int,))[0])


# What a summary shows (control.order_summary): not the pushed payloads, whose JSON would
# cost more to read than the rest of the page.
SUMMARY = (
    Order.order_no,
    Order.partner_token,
    Order.product_id,
    Order.status,
    Order.user_name,
    Order.user_mobile,
    Order.application_amount,
    Order.application_term,
    Order.term_unit,
    Order.approved_amount,
    Order.scenario,
    Order.created_at,
    Order.updated_at,
    Order.due_at,
)


def orders(lender: Lender, q: m.OrdersQuery) -> Page:
    """GET /sandbox/orders: newest first."""
    stmt = select(Order).options(load_only(*SUMMARY)).order_by(Order.id.desc()).limit(q.limit + 1)
    if q.partner_token:
        stmt = stmt.where(Order.partner_token == q.partner_token)
    if q.status is not None:
        stmt = stmt.where(Order.status == q.status)
    if (before := _after("orders", q.cursor)) is not None:
        stmt = stmt.where(Order.id < before)
    with lender.store.transaction() as s:
        rows, more = paging.split(list(s.scalars(stmt)), q.limit)
        body = [control.order_summary(lender, o) for o in rows]
    return Page(body, paging.encode("orders", rows[-1].id) if more else None)


def journal_entries(lender: Lender, q: m.JournalQuery) -> Page:
    """GET /sandbox/journal: newest first."""
    stmt = select(JournalEntry).order_by(JournalEntry.id.desc()).limit(q.limit + 1)
    if q.partner_token:
        stmt = stmt.where(JournalEntry.partner_token == q.partner_token)
    if path := journal.normalize_path(q.path):
        stmt = stmt.where(JournalEntry.path == path)
    if (before := _after("journal", q.cursor)) is not None:
        stmt = stmt.where(JournalEntry.id < before)
    with lender.store.transaction() as s:
        if q.partner_token:
            lender.partner_or_404(s, q.partner_token)
        rows, more = paging.split(list(s.scalars(stmt)), q.limit)
        body = [journal.entry_view(e) for e in rows]
    return Page(body, paging.encode("journal", rows[-1].id) if more else None)


def callback_deliveries(lender: Lender, q: m.CallbacksQuery) -> Page:
    """GET /sandbox/callbacks: the newest `limit` deliveries, shown oldest first; the next
    page holds the ones before them."""
    stmt = select(Callback).order_by(Callback.id.desc()).limit(q.limit + 1)
    for column, value in (
        (Callback.partner_token, q.partner_token),
        (Callback.order_no, q.order_no),
        (Callback.state, q.state),
    ):
        if value:
            stmt = stmt.where(column == value)
    if (before := _after("callbacks", q.cursor)) is not None:
        stmt = stmt.where(Callback.id < before)
    with lender.store.transaction() as s:
        rows, more = paging.split(list(s.scalars(stmt)), q.limit)
        body = deliveries._views(lender, s, rows[::-1])
    return Page(body, paging.encode("callbacks", rows[-1].id) if more else None)


def partners(lender: Lender, q: m.PartnersQuery) -> Page:
    """GET /sandbox/partners: oldest first (by creation, then token)."""
    stmt = select(Partner).order_by(Partner.created_at, Partner.partner_token).limit(q.limit + 1)
    if q.cursor is not None:
        at, token = paging.decode("partners", q.cursor, (float, str))
        stmt = stmt.where(
            or_(
                Partner.created_at > at,
                and_(Partner.created_at == at, Partner.partner_token > token),
            )
        )
    with lender.store.transaction() as s:
        rows, more = paging.split(list(s.scalars(stmt)), q.limit)
        body = [control.partner_view(lender, p) for p in rows]
    last = rows[-1] if rows else None
    cursor = (
        paging.encode("partners", last.created_at, last.partner_token) if more and last else None
    )
    return Page(body, cursor)


def fault_rules(lender: Lender, q: m.FaultsQuery) -> Page:
    """GET /sandbox/faults: oldest first, as {"rules": [...]} (which PUT takes back)."""
    stmt = select(FaultRule).order_by(FaultRule.id).limit(q.limit + 1)
    if q.partner_token:
        stmt = stmt.where(FaultRule.partner_token == q.partner_token)
    if (after := _after("faults", q.cursor)) is not None:
        stmt = stmt.where(FaultRule.id > after)
    with lender.store.transaction() as s:
        if q.partner_token:
            lender.partner_or_404(s, q.partner_token)
        rows, more = paging.split(list(s.scalars(stmt)), q.limit)
        body: dict[str, Any] = {"rules": [faults.rule_view(r) for r in rows]}
    return Page(body, paging.encode("faults", rows[-1].id) if more else None)
