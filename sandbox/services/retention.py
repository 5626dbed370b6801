"""Retention of the journal and of finished callback deliveries ([journal] in config.toml).

What goes: journal rows older than `max_age_days` (wall time) or beyond a partner's newest
`max_rows_per_partner`; delivered and dead callback deliveries (with their attempts) by the
same two limits, a delivery's age being its last scheduled attempt. Pending deliveries are
never deleted (at-least-once); orders and their timelines are kept. The server's scheduler
runs `prune` every `prune_every`; POST /sandbox/journal/prune runs it on demand.

Cheap on a large store: every statement is a range of an index (the primary key, or
partner + id, or state + next attempt), deletes go in batches of `BATCH` rows, each its own
short transaction. Journal rows are appended in time order, so the rows older than the cutoff
are the ids up to a boundary found by bisecting the primary key (no index on the time). One
pruner at a time across processes: on PostgreSQL each batch takes a transaction-scoped
advisory lock, and a process that finds it taken leaves the work to the holder.

Deleting rows can lower the highest id, which the acceptance runs' marks depend on: every
batch calls `conformance.settle_marks` in its transaction. The highest ids deleted per
partner are kept (`RetentionMark`), so a report over a run that lost records says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from ..core import clock as clockmod
from ..core.settings import JournalSettings
from ..store import Callback, CallbackAttempt, JournalEntry, Partner
from ..store.tables import RetentionMark
from . import conformance, locks
from .lender import Lender

BATCH = 500  # rows per DELETE transaction: ~10 ms on SQLite, so lender requests wait little
FINISHED = ("delivered", "dead")
# The pruner's PostgreSQL advisory lock, per schema: two sandboxes in one database (a test
# run's private schema, say) do not wait for each other.
ADVISORY_LOCK = text(
    "SELECT pg_try_advisory_xact_lock(hashtext('lender-sandbox prune ' || current_schema()))"
)


@dataclass(frozen=True)
class Policy:
    max_age_days: float  # 0: no age limit
    max_rows_per_partner: int  # 0: no row limit


@dataclass
class Tally:
    journal: int = 0
    callbacks: int = 0
    attempts: int = 0
    busy: bool = False  # another process holds the pruner's lock: this pass stopped


def policy(
    cfg: JournalSettings, max_age_days: float | None = None, max_rows: int | None = None
) -> Policy:
    return Policy(
        cfg.max_age_days if max_age_days is None else max_age_days,
        cfg.max_rows_per_partner if max_rows is None else max_rows,
    )


def prune(
    lender: Lender,
    max_age_days: float | None = None,
    max_rows_per_partner: int | None = None,
    batch: int = BATCH,
) -> dict[str, Any]:
    """Apply the retention (the settings', or the limits given): what was deleted."""
    pol = policy(lender.settings.journal, max_age_days, max_rows_per_partner)
    tally = Tally()
    cutoff = lender.wall() - pol.max_age_days * 86400 if pol.max_age_days > 0 else None
    if cutoff is not None:
        _journal_by_age(lender, cutoff, batch, tally)
        _callbacks_by_age(lender, cutoff, batch, tally)
    if pol.max_rows_per_partner > 0:
        for token in _partners(lender):
            _journal_by_rows(lender, token, pol.max_rows_per_partner, batch, tally)
            _callbacks_by_rows(lender, token, pol.max_rows_per_partner, batch, tally)
    return {
        "journal_deleted": tally.journal,
        "callbacks_deleted": tally.callbacks,
        "attempts_deleted": tally.attempts,
        "max_age_days": pol.max_age_days,
        "max_rows_per_partner": pol.max_rows_per_partner,
        "cutoff": clockmod.iso(cutoff) if cutoff is not None else None,
        "busy": tally.busy,
    }


def _partners(lender: Lender) -> list[str]:
    """Every partner, and "" (the journal of requests whose partner_token is unknown)."""
    with lender.store.transaction() as s:
        return ["", *s.scalars(select(Partner.partner_token).order_by(Partner.partner_token))]


# ---- the journal ----


def _journal_boundary(s: Session, cutoff: float) -> int:
    """The highest journal id written before `cutoff` (0: none): bisection of the primary
    key, since rows are appended in time order (~2·log2(rows) point reads)."""
    first = s.execute(select(JournalEntry.id, JournalEntry.at).order_by(JournalEntry.id).limit(1))
    row = first.first()
    if row is None or row.at >= cutoff:
        return 0
    lo, hi = int(row.id), int(s.scalar(select(func.max(JournalEntry.id))) or 0)
    while lo < hi:  # invariant: the row at (or after) lo is older than the cutoff
        mid = (lo + hi + 1) // 2
        at = s.scalar(
            select(JournalEntry.at).where(JournalEntry.id >= mid).order_by(JournalEntry.id).limit(1)
        )
        lo, hi = (mid, hi) if at is not None and at < cutoff else (lo, mid - 1)
    return lo


def _journal_by_age(lender: Lender, cutoff: float, batch: int, tally: Tally) -> None:
    with lender.store.transaction() as s:
        boundary = _journal_boundary(s, cutoff)
    if boundary:
        _journal_batches(lender, JournalEntry.id <= boundary, batch, tally)


def _journal_by_rows(lender: Lender, token: str, keep: int, batch: int, tally: Tally) -> None:
    mine = JournalEntry.partner_token == token
    with lender.store.transaction() as s:
        cut = s.scalar(
            select(JournalEntry.id)
            .where(mine)
            .order_by(JournalEntry.id.desc())
            .offset(keep)
            .limit(1)
        )
    if cut is not None:
        _journal_batches(lender, mine & (JournalEntry.id <= cut), batch, tally)


def _journal_batches(lender: Lender, where: Any, batch: int, tally: Tally) -> None:
    while not tally.busy:
        with lender.store.transaction() as s:
            if not _exclusive(lender, s, tally):
                return
            locks.marks(lender.store, s.connection())  # settle_marks below, as resets do
            rows = s.execute(
                select(JournalEntry.id, JournalEntry.partner_token)
                .where(where)
                .order_by(JournalEntry.id)
                .limit(batch)
            ).all()
            if not rows:
                return
            s.execute(delete(JournalEntry).where(JournalEntry.id.in_([r.id for r in rows])))
            _remember(lender, s, rows, "journal_id")
            conformance.settle_marks(s)
            tally.journal += len(rows)
        if len(rows) < batch:
            return


# ---- finished callback deliveries ----


def _callbacks_by_age(lender: Lender, cutoff: float, batch: int, tally: Tally) -> None:
    _callback_batches(
        lender, Callback.state.in_(FINISHED) & (Callback.next_attempt_at < cutoff), batch, tally
    )


def _callbacks_by_rows(lender: Lender, token: str, keep: int, batch: int, tally: Tally) -> None:
    mine = Callback.partner_token == token
    with lender.store.transaction() as s:
        cut = s.scalar(
            select(Callback.id).where(mine).order_by(Callback.id.desc()).offset(keep).limit(1)
        )
    if cut is not None:
        where = mine & Callback.state.in_(FINISHED) & (Callback.id <= cut)
        _callback_batches(lender, where, batch, tally)


def _callback_batches(lender: Lender, where: Any, batch: int, tally: Tally) -> None:
    while not tally.busy:
        with lender.store.transaction() as s:
            if not _exclusive(lender, s, tally):
                return
            locks.marks(lender.store, s.connection())  # settle_marks below, as resets do
            # locked: a redelivery waits rather than lose its attempt log under our feet
            rows = s.execute(
                lender.store.lock_row(
                    select(Callback.id, Callback.partner_token)
                    .where(where)
                    .order_by(Callback.id)
                    .limit(batch)
                )
            ).all()
            if not rows:
                return
            ids = [r.id for r in rows]
            gone = s.execute(delete(CallbackAttempt).where(CallbackAttempt.callback_id.in_(ids)))
            # pending rows are never deleted, even one redelivered since it was selected
            s.execute(delete(Callback).where(Callback.id.in_(ids), Callback.state.in_(FINISHED)))
            _remember(lender, s, rows, "callback_id")
            conformance.settle_marks(s)
            tally.callbacks += len(rows)
            tally.attempts += gone.rowcount  # type: ignore[attr-defined]  # a DELETE's result
        if len(rows) < batch:
            return


# ---- bookkeeping ----


def _exclusive(lender: Lender, s: Session, tally: Tally) -> bool:
    """PostgreSQL: this transaction holds the pruner's advisory lock (else another process is
    pruning: leave it the work). SQLite has one writer at a time anyway."""
    if lender.store.is_sqlite:
        return True
    got = bool(s.scalar(ADVISORY_LOCK))
    tally.busy = not got
    return got


def _remember(lender: Lender, s: Session, rows: Sequence[Any], column: str) -> None:
    """Raise each partner's retention mark to the highest id of `rows` deleted."""
    highest: dict[str, int] = {}
    for r in rows:
        highest[r.partner_token] = max(highest.get(r.partner_token, 0), r.id)
    wall = lender.wall()
    for token, high in highest.items():
        mark = s.get(RetentionMark, token)
        if mark is None:
            mark = RetentionMark(partner_token=token, journal_id=0, callback_id=0, at=wall)
            s.add(mark)
        setattr(mark, column, max(getattr(mark, column) or 0, high))
        mark.at = wall
    s.flush()
