"""One partner's acceptance run, read from the store (docs/conformance.md): its requests,
callbacks and order timelines since the run's mark, the report on them, the reset that
starts a new run, and the checklist a dashboard page shows.

The mark (store `ConformanceMark`) is the highest journal, callback and timeline ids when the
run started, with its wall and virtual time; nothing is deleted, so a reset keeps the orders,
the journal and the callbacks. Ids rather than times: the wall clock may stand still (the
harness injects one) and a partner's clock is moved by hand, while ids only grow. Only
deleting rows can undo that — SQLite gives the next row the highest remaining id + 1 — so
whatever deletes journal, callback or timeline rows calls `settle_marks` in the same
transaction. The checks themselves are pure: `sandbox.core.conformance`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from ..core import clock as clockmod
from ..core.conformance import (
    Attempt,
    Call,
    Delivery,
    Limits,
    OrderRecord,
    Run,
    Step,
    evaluate,
    sections,
)
from ..core.settings import Settings
from ..store import (
    Callback,
    CallbackAttempt,
    ConformanceMark,
    JournalEntry,
    Order,
    Partner,
    TimelineRow,
)
from ..store.tables import RetentionMark
from . import locks
from .lender import Lender

# A run is meant to be one focused acceptance pass; past this many requests (or callbacks,
# or timeline rows) only the oldest are read, and the report says so, rather than loading an
# unbounded history.
MAX_ROWS = 20_000
MAX_STEPS = 100_000

# (the mark's column, the id it marks)
MARKED = (
    (ConformanceMark.journal_id, JournalEntry.id),
    (ConformanceMark.callback_id, Callback.id),
    (ConformanceMark.timeline_id, TimelineRow.id),
)
# Lowered alike: the highest ids retention deleted (services.retention)
SETTLED = (
    *MARKED,
    (RetentionMark.journal_id, JournalEntry.id),
    (RetentionMark.callback_id, Callback.id),
)


def limits(settings: Settings) -> Limits:
    c = settings.conformance
    return Limits(
        callback_timeout=settings.callbacks.timeout,
        review_polls_per_minute=c.review_polls_per_minute,
        refusal_retry_after=c.refusal_retry_after,
        suffixes={r.name: r.mobile_suffix for r in settings.data.rules},
    )


def report(lender: Lender, token: str) -> dict[str, Any]:
    """GET /sandbox/partners/{token}/conformance: the acceptance report of the current run."""
    return evaluate(load_run(lender, token), limits(lender.settings))


def checklist(lender: Lender, token: str) -> dict[str, Any]:
    """What a dashboard page shows: the report, and its checks grouped into the sections of
    docs/conformance.md with their counts (the page only lays them out)."""
    doc = report(lender, token)
    return {"report": doc, "sections": sections(doc)}


def load_run(lender: Lender, token: str) -> Run:
    """Everything `token` did since its run's mark, as the core's plain records."""
    with lender.store.transaction() as s:
        partner = lender.partner_or_404(s, token)
        mark = s.get(ConformanceMark, token)
        journal_id, callback_id, timeline_id = (
            (mark.journal_id, mark.callback_id, mark.timeline_id) if mark else (0, 0, 0)
        )
        pruned = s.get(RetentionMark, token)
        calls, more_calls = _calls(s, token, journal_id)
        deliveries, more_callbacks = _deliveries(s, token, callback_id)
        orders, more_steps = _orders(s, token, timeline_id)
        return Run(
            token,
            calls,
            deliveries,
            orders,
            partner.aes_key,
            partner.aes_iv,
            started_at=clockmod.iso(mark.at) if mark else None,
            truncated=more_calls or more_callbacks or more_steps,
            pruned=pruned is not None
            and (pruned.journal_id > journal_id or pruned.callback_id > callback_id),
        )


def _calls(s: Session, token: str, after: int) -> tuple[tuple[Call, ...], bool]:
    q = (
        select(JournalEntry)
        .where(JournalEntry.partner_token == token, JournalEntry.id > after)
        .order_by(JournalEntry.id)
        .limit(MAX_ROWS + 1)
    )
    calls = [
        Call(
            e.id,
            e.path,
            e.at,
            e.virtual_at,
            e.request,
            e.request_raw,
            e.response,
            e.code,
            e.http_status,
            e.fault,
            e.content_type,
        )
        for e in s.scalars(q)
    ]
    return tuple(calls[:MAX_ROWS]), len(calls) > MAX_ROWS


def _deliveries(s: Session, token: str, after: int) -> tuple[tuple[Delivery, ...], bool]:
    rows = list(
        s.scalars(
            select(Callback)
            .where(Callback.partner_token == token, Callback.id > after)
            .order_by(Callback.id)
            .limit(MAX_ROWS + 1)
        )
    )
    more, rows = len(rows) > MAX_ROWS, rows[:MAX_ROWS]
    if not rows:
        return (), more
    attempts: dict[int, list[Attempt]] = {}
    q = (
        select(CallbackAttempt)
        .join(Callback, CallbackAttempt.callback_id == Callback.id)
        .where(Callback.partner_token == token, Callback.id > after, Callback.id <= rows[-1].id)
        .order_by(CallbackAttempt.id)
    )
    for a in s.scalars(q):
        attempts.setdefault(a.callback_id, []).append(
            Attempt(a.id, a.at, a.status_code, a.response_body, a.latency_ms, a.error)
        )
    return tuple(
        Delivery(c.id, c.order_no, c.path, c.state, c.body, tuple(attempts.get(c.id, ())))
        for c in rows
    ), more


def _orders(s: Session, token: str, after: int) -> tuple[tuple[OrderRecord, ...], bool]:
    """The orders that moved during the run, each with the timeline rows of the run."""
    rows = list(
        s.execute(
            select(Order, TimelineRow)
            .join(TimelineRow, TimelineRow.order_id == Order.id)
            .where(Order.partner_token == token, TimelineRow.id > after)
            .order_by(TimelineRow.id)
            .limit(MAX_STEPS + 1)
        )
    )
    orders: dict[int, Order] = {}
    steps: dict[int, list[Step]] = {}
    for order, t in rows[:MAX_STEPS]:
        orders[order.id] = order
        steps.setdefault(order.id, []).append(
            Step(t.id, t.from_status, t.to_status, t.trigger, t.at, t.cause)
        )
    records = tuple(
        OrderRecord(
            o.order_no,
            o.status,
            o.application_amount,
            o.user_mobile,
            o.user_idcard,
            tuple(steps[i]),
        )
        for i, o in orders.items()
    )
    return records, len(rows) > MAX_STEPS


def reset(lender: Lender, token: str) -> dict[str, Any]:
    """POST /sandbox/partners/{token}/conformance/reset: a new acceptance run starts now.

    Orders, journal and callbacks stay; the report looks only at what comes after."""
    with lender.store.transaction() as s:
        # The partner row FOR UPDATE (services.locks): two resets at once (several processes)
        # do not both insert the mark, a partner reset does not delete it under us, and the
        # partner's requests in flight are committed, under the mark, before it is taken.
        locked = lender.store.lock_row(select(Partner).where(Partner.partner_token == token))
        partner = locks.again_if_gone(lender.store, lambda: s.scalars(locked).first())
        partner = partner or lender.partner_or_404(s, token)  # a 404
        mark = s.get(ConformanceMark, token) or ConformanceMark(partner_token=token)
        mark.journal_id, mark.callback_id, mark.timeline_id = (
            _highest(s, column) for _, column in MARKED
        )
        mark.at, mark.virtual_at = lender.wall(), lender.now(partner)
        s.add(mark)
        kept = s.scalar(select(func.count(Order.id)).where(Order.partner_token == token)) or 0
        return {
            "partner_token": token,
            "started_at": clockmod.iso(mark.at),
            "virtual_time": clockmod.iso(mark.virtual_at),
            "orders_kept": kept,
        }


def _highest(s: Session, column: Any) -> int:
    return int(s.scalar(select(func.max(column))) or 0)


def settle_marks(s: Session) -> None:
    """After journal, callback or timeline rows were deleted (in session `s`, holding
    `locks.marks`): lower every mark above the highest id left to that id. SQLite numbers
    the next row from the highest remaining id, so a run's new rows could otherwise land under
    its mark and go unseen; rows that stay keep their side of the mark, since they are all at
    or under the new one.

    One UPDATE per table, so each mark row changes once: PostgreSQL checks the foreign key of a
    row this transaction already changed again, taking the partner's row FOR KEY SHARE, and
    that waits for a reset of the partner that waits for this transaction (a deadlock)."""
    highest = {id(column): _highest(s, column) for _, column in SETTLED}
    for table in (ConformanceMark, RetentionMark):
        marks = [(mark, highest[id(column)]) for mark, column in SETTLED if mark.class_ is table]
        s.execute(
            update(table)
            .where(or_(*(mark > high for mark, high in marks)))
            .values({mark.key: case((mark > high, high), else_=mark) for mark, high in marks}),
            execution_options={"synchronize_session": False},
        )
