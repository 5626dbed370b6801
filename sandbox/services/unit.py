"""The unit of work: one transaction's reads and writes of orders and due events, in Core.

A transition (`services.engine`) changes records (`store.records`) and adds rows; the unit
batches them and `flush` writes them once per transaction — an executemany per table and per
set of changed columns, each statement compiled once and run on the DBAPI cursor on SQLite
(`store.fast`). That is what makes a clock advance cost a fraction of a millisecond per
transition. The reads a transition needs (the order, its partner, its latest extension code)
live here too, for the same reason.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, bindparam, insert, literal_column, select
from sqlalchemy import update as _update
from sqlalchemy.engine import Connection

from ..core.lifecycle import Status
from ..store import Store, fast
from ..store import tables as t
from ..store.records import EventRec, OrderRec, PartnerRec
from .lender import Lender

ORDERS: Table = t.Order.__table__  # type: ignore[assignment]
EVENTS: Table = t.DueEvent.__table__  # type: ignore[assignment]
TIMELINE: Table = t.TimelineRow.__table__  # type: ignore[assignment]
CALLBACKS: Table = t.Callback.__table__  # type: ignore[assignment]
PAYMENTS: Table = t.Payment.__table__  # type: ignore[assignment]
EXTENSIONS: Table = t.ExtensionRow.__table__  # type: ignore[assignment]
CARDS: Table = t.BankCard.__table__  # type: ignore[assignment]
CODES: Table = t.RepayCode.__table__  # type: ignore[assignment]
PARTNERS: Table = t.Partner.__table__  # type: ignore[assignment]


class Unit:
    """The writes of one transaction: records to update, rows to insert, events to retire.

    Inserts are batched per table and written by `flush` (one executemany each); an order or
    event read into the unit is written back with only the columns that changed. Reads a
    transition needs (codes, cards) are of rows it does not batch, so nothing reads a row
    still waiting here."""

    def __init__(self, lender: Lender, conn: Connection):
        self.lender, self.conn = lender, conn
        self.orders: dict[int, OrderRec] = {}
        self.events: dict[int, EventRec] = {}  # due events loaded (a process_due batch)
        self.events_of: dict[int, list[EventRec]] = {}  # the same, by order id
        self.inserts: dict[Table, list[dict[str, Any]]] = defaultdict(list)
        self.partner: PartnerRec | None = None  # the partner of this unit's orders
        # events to void in the database at the flush: dest status -> (order, firing event)
        self.retired: dict[Status, list[dict[str, Any]]] = defaultdict(list)
        # order id -> its latest extension code (state, expires_at) or None, read in one go
        self.extension_codes: dict[int, tuple[str, float] | None] = {}
        # order id -> its active bank account (bank_code, bank_card) or None, read in one go
        self.cards: dict[int, tuple[str, str] | None] = {}

    def load_events(self, events: list[EventRec]) -> None:
        """The due events this unit fires (a process_due batch)."""
        self.events = {ev.id: ev for ev in events}
        self.events_of = defaultdict(list)
        for ev in events:
            self.events_of[ev.order_id].append(ev)

    def track(self, order: OrderRec) -> OrderRec:
        self.orders[order.id] = order
        return order

    def add(self, table: Table, row: dict[str, Any]) -> None:
        self.inserts[table].append(row)

    def flush(self) -> None:
        store, conn = self.lender.store, self.conn
        for dest, rows in self.retired.items():  # before the inserts: those are not stale
            fast.many(conn, store.fast(STALE_EVENTS[dest]), rows)
        self.retired.clear()
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for order in self.orders.values():
            changed = order.changes()
            if changed:
                by_columns[tuple(changed)].append({"_id": order.id, **changed})
                order.saved()
        for keys, rows in by_columns.items():
            fast.many(conn, store.fast(statement(ORDERS, keys, update=True)), rows)
        for table, rows in self.inserts.items():
            for keys, group in _by_keys(rows).items():
                fast.many(conn, store.fast(statement(table, keys)), group)
        self.inserts.clear()
        done = [{"_id": e.id, "_state": e.state} for e in self.events.values() if e.changes()]
        if done:
            fast.many(conn, store.fast(EVENT_STATE), done)
            for e in self.events.values():
                e.saved()


def _by_keys(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Rows grouped by their columns (a table's rows nearly always share one set)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(row)].append(row)
    return groups


_STATEMENTS: dict[tuple[Table, tuple[str, ...], bool], Any] = {}


def statement(table: Table, keys: tuple[str, ...], update: bool = False) -> Any:
    """The INSERT of `keys` into `table`, or the UPDATE of `keys` of the row with id `_id`:
    built once per table and set of columns, so `Store.fast` compiles each once."""
    stmt = _STATEMENTS.get((table, keys, update))
    if stmt is None:
        values: dict[str, Any] = {k: bindparam(k) for k in keys}
        if update:
            stmt = _update(table).where(table.c.id == bindparam("_id")).values(values)
        else:
            stmt = insert(table).values(values)
        _STATEMENTS[(table, keys, update)] = stmt
    return stmt


EVENT_STATE = (
    _update(EVENTS).where(EVENTS.c.id == bindparam("_id")).values(state=bindparam("_state"))
)


# The statuses in which each kind of due event can still act. A status change retires the
# order's other pending events, so pending lists and `next_event` show only live ones and the
# clock does not wade through stale events.
LIVE_IN: dict[str, frozenset[int]] = {
    "review": frozenset({Status.REVIEWING}),
    "payout": frozenset({Status.APPROVED}),
    "approval_expiry": frozenset({Status.APPROVED}),
    "abandon": frozenset({Status.NEW}),
    "payout_failed_expiry": frozenset({Status.PAYOUT_FAILED}),
    "overdue": frozenset({Status.REPAYING}),
    "auto_repay": frozenset({Status.REPAYING, Status.OVERDUE}),
    "code_expiry": frozenset({Status.REPAYING, Status.OVERDUE}),  # settled: codes are void
}


# The kinds each status retires: every kind not live in it.
DEAD_IN: dict[Status, tuple[str, ...]] = {
    status: tuple(kind for kind, live in LIVE_IN.items() if status not in live) for status in Status
}


def _stale_events(dest: Status) -> Callable[[Store], Any]:
    """The UPDATE that voids an order's pending events that cannot act in `dest` (one
    statement per status, the kinds written into it: built once, run as an executemany)."""

    def build(store: Store) -> Any:
        # Rows another process has claimed are skipped (SKIP LOCKED on PostgreSQL): waiting
        # for them could deadlock with that process waiting for this order; it will find the
        # event stale and drop it. `firing` (the due event being fired) is left alone.
        stale = store.claim(
            select(EVENTS.c.id).where(
                EVENTS.c.order_id == bindparam("of_order"),
                EVENTS.c.state == "pending",
                EVENTS.c.kind.in_(_constants(DEAD_IN[dest])),
                EVENTS.c.id != bindparam("firing"),
            )
        )
        return _update(EVENTS).where(EVENTS.c.id.in_(stale.scalar_subquery())).values(state="void")

    build.__qualname__ = f"stale_events_{int(dest)}"
    return build


def _constants(kinds: tuple[str, ...]) -> list[Any]:
    """Event kinds written into the SQL (an IN of bound values cannot run as executemany);
    they are this module's own identifiers, never input."""
    assert all(k.isidentifier() for k in kinds)
    return [literal_column(f"'{k}'") for k in kinds]


STALE_EVENTS = {status: _stale_events(status) for status in Status}


# ---- reading orders ----

ORDER_COLUMNS = OrderRec.select_columns()
ORDER_BY_NO = select(*ORDER_COLUMNS).where(
    ORDERS.c.partner_token == bindparam("token"), ORDERS.c.order_no == bindparam("order_no")
)


def _order_for_update(store: Store) -> Any:
    return store.lock_row(ORDER_BY_NO)


def load_order(unit: Unit, token: str, order_no: str, *, lock: bool = False) -> OrderRec | None:
    """The partner's order `order_no` (locked for update on PostgreSQL with `lock`), tracked
    by the unit so its changes are written at the flush."""
    stmt = unit.lender.store.fast(_order_for_update if lock else ORDER_BY_NO)
    row = fast.first(unit.conn, stmt, {"token": token, "order_no": order_no})
    return unit.track(OrderRec.load(row)) if row is not None else None


LAST_EXTENSION_CODES = (
    select(CODES.c.order_id, CODES.c.state, CODES.c.expires_at)
    .where(CODES.c.order_id.in_(bindparam("ids", expanding=True)), CODES.c.repay_type == 2)
    .order_by(CODES.c.id)
)


def extension_code(unit: Unit, order: OrderRec) -> tuple[str, float] | None:
    """The order's latest extension code (state, expires_at), read for every order of the unit
    at once the first time one is needed (a batch of due events needs it for each 21)."""
    if order.id not in unit.extension_codes:
        ids = [i for i in unit.orders if i not in unit.extension_codes] or [order.id]
        found: dict[int, tuple[str, float] | None] = dict.fromkeys(ids)
        for order_id, state, expires_at in unit.conn.execute(LAST_EXTENSION_CODES, {"ids": ids}):
            found[order_id] = (state, expires_at)  # in id order: the latest one stays
        unit.extension_codes.update(found)
    return unit.extension_codes[order.id]


ACTIVE_CARDS_OF = (
    select(CARDS.c.order_id, CARDS.c.bank_code, CARDS.c.bank_card)
    .where(CARDS.c.order_id.in_(bindparam("ids", expanding=True)), CARDS.c.active.is_(True))
    .order_by(CARDS.c.id)
)


def active_card(unit: Unit, order: OrderRec) -> tuple[str, str] | None:
    """The order's active bank account (bank_code, bank_card), read for every order of the
    unit at once the first time one is needed (a batch of payouts needs it for each)."""
    if order.id not in unit.cards:
        ids = [i for i in unit.orders if i not in unit.cards] or [order.id]
        found: dict[int, tuple[str, str] | None] = dict.fromkeys(ids)
        for order_id, bank_code, bank_card in unit.conn.execute(ACTIVE_CARDS_OF, {"ids": ids}):
            found.setdefault(order_id, None)
            if found[order_id] is None:  # the first active one, as LIMIT 1 in id order
                found[order_id] = (bank_code, bank_card)
        unit.cards.update(found)
    return unit.cards[order.id]


PARTNER_COLUMNS = PartnerRec.select_columns()
PARTNER_BY_TOKEN = select(*PARTNER_COLUMNS).where(PARTNERS.c.partner_token == bindparam("token"))


def partner_of(unit: Unit) -> PartnerRec:
    if unit.partner is None:
        token = next(iter(unit.orders.values())).partner_token
        row = fast.first(unit.conn, unit.lender.store.fast(PARTNER_BY_TOKEN), {"token": token})
        unit.partner = PartnerRec.load(row)
    return unit.partner
