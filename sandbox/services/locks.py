"""The order in which transactions take their locks on PostgreSQL, so that a partner's reset
and that partner's traffic, on any number of processes, neither deadlock nor leave a row
behind (a foreign-key violation, an order the reset never saw). SQLite runs one transaction at
a time in a process: every lock here is a plain read there.

1. Partner rows. A transaction that writes a partner's orders (and the rows under them),
   callbacks or delivery attempts first takes its partner's row FOR KEY SHARE (`share`; the
   request pipeline does it in its first statement). A reset, of the partner or of its
   acceptance run, takes it FOR UPDATE (`exclusive`): it waits for every such transaction in
   flight and holds back those that arrive. So a request runs wholly before a reset (its rows
   go with the partner's) or wholly after it (it finds the partner clean: an unknown order).
   Several partners are locked in token order; a global reset first locks the table against
   new partners (SHARE ROW EXCLUSIVE), so a transaction that locks a partner's row and then
   updates the table takes the table's ROW EXCLUSIVE first (`changing`): the other order
   would deadlock with a global reset.
2. MARKS, an advisory lock of the schema, for whoever deletes journal, callback or timeline
   rows (resets, the pruner, clearing the journal): `conformance.settle_marks` then updates
   other partners' marks, which two of them at once could lock in different orders. (It
   changes each mark row once: a second change re-checks the row's foreign key, i.e. waits
   for that partner's row, which a reset waiting for MARKS may hold.)
3. Rows, as each operation says (orders in id order, outbox claims SKIP LOCKED).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Table, bindparam, select, text
from sqlalchemy.engine import Connection

from ..store import Partner, Store

PARTNERS: Table = Partner.__table__  # type: ignore[assignment]
TOKEN = PARTNERS.c.partner_token
MARKS = "lender-sandbox marks"  # the advisory lock of (2), one per schema


def _shared(store: Store) -> Any:
    return store.share_row(select(TOKEN).where(TOKEN == bindparam("token")))


def share(store: Store, conn: Connection, token: str) -> bool:
    """Lock partner `token` against resets for this transaction; False: there is none."""
    stmt = store.prepared(_shared)
    return again_if_gone(store, lambda: conn.execute(stmt, {"token": token}).first()) is not None


def again_if_gone(store: Store, lock: Callable[[], Any]) -> Any:
    """`lock()`'s row, or None. PostgreSQL: a statement that waited for a global reset sees the
    partner's row deleted, not the one the reset made again from the fixtures (its snapshot
    is older): a second statement, with a new snapshot, finds that one."""
    row = lock()
    return lock() if row is None and not store.is_sqlite else row


def share_many(
    store: Store, conn: Connection, tokens: Iterable[str], *, skip_locked: bool = False
) -> set[str]:
    """`share` for several partners, in token order; those that exist (and with
    `skip_locked`, are not being reset right now: nothing waits)."""
    q = select(TOKEN).where(TOKEN.in_(sorted(set(tokens)))).order_by(TOKEN)
    return set(conn.execute(store.share_row(q, skip_locked=skip_locked)).scalars())


def changing(store: Store, conn: Connection) -> None:
    """Before locking a partner's row that this transaction then updates: the lock on the
    table that the update takes, taken now, so a global reset is waited for before the row."""
    if not store.is_sqlite:
        conn.execute(text("LOCK TABLE partners IN ROW EXCLUSIVE MODE"))


def exclusive(store: Store, conn: Connection, token: str | None) -> list[str]:
    """Lock partner `token` (None: every partner) for a reset: the tokens locked, in order."""
    if token is not None:
        # The table first (its clock's update needs it): a global reset is over before the
        # row is read, or starts after this commits.
        changing(store, conn)
        return list(conn.execute(store.lock_row(select(TOKEN).where(TOKEN == token))).scalars())
    if not store.is_sqlite:
        # SHARE ROW EXCLUSIVE: no partner is created (or changed) until the reset commits,
        # while the traffic's FOR KEY SHARE (ROW SHARE on the table) still gets in line.
        conn.execute(text("LOCK TABLE partners IN SHARE ROW EXCLUSIVE MODE"))
    return list(conn.execute(store.lock_row(select(TOKEN).order_by(TOKEN))).scalars())


def marks(store: Store, conn: Connection) -> None:
    """Take (2), after any partner lock and before deleting journal, callback or timeline rows."""
    store.hold(conn, MARKS)
