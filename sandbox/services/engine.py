"""The lifecycle engine: apply a trigger to an order, with its effects, in the caller's transaction.

`apply` fires the state machine, then records the timeline row, sets figures, schedules or
retires due events and enqueues callbacks (transactional outbox) — all in the caller's unit
of work (`Unit`), so a transition happens completely or not at all. `process_due` fires
stored due events in due-time order, each at its own virtual time (docs/architecture.md
"Time").

Everything here is SQLAlchemy Core on records (`store.records`): rows the unit inserts are
batched and written once per transaction (`Unit.flush`), which is what makes a clock advance
cost a fraction of a millisecond per transition.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, bindparam, exists, insert, literal_column, select, update
from sqlalchemy.engine import Connection

from ..core import banks, lifecycle, pricing
from ..core.errors import SandboxError
from ..core.lifecycle import IllegalTransition, Status
from ..core.pricing import DAY
from ..core.scenarios import Outcome, rng_for
from ..store import Store
from ..store import tables as t
from ..store.records import EventRec, OrderRec, PartnerRec
from . import bodies
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


# ---- the unit of work ----


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
        self.inserts: dict[Table, list[dict[str, Any]]] = defaultdict(list)
        self.partner: PartnerRec | None = None  # the partner of this unit's orders
        # events to void in the database at the flush: dest status -> (order, firing event)
        self.retired: dict[Status, list[dict[str, Any]]] = defaultdict(list)
        # order id -> its latest extension code (state, expires_at) or None, read in one go
        self.extension_codes: dict[int, tuple[str, float] | None] = {}

    def track(self, order: OrderRec) -> OrderRec:
        self.orders[order.id] = order
        return order

    def add(self, table: Table, row: dict[str, Any]) -> None:
        self.inserts[table].append(row)

    def flush(self) -> None:
        for dest, rows in self.retired.items():  # before the inserts: those are not stale
            self.conn.execute(self.lender.store.prepared(STALE_EVENTS[dest]), rows)
        self.retired.clear()
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for order in self.orders.values():
            changed = order.changes()
            if changed:
                by_columns[tuple(changed)].append({"_id": order.id, **changed})
                order.saved()
        for rows in by_columns.values():  # the SET clause is the rows' keys
            self.conn.execute(ORDER_UPDATE, rows)
        for table, rows in self.inserts.items():
            if rows:
                self.conn.execute(_insert_into(table), rows)
        self.inserts.clear()
        done = [{"_id": e.id, "_state": e.state} for e in self.events.values() if e.changes()]
        if done:
            self.conn.execute(EVENT_STATE, done)
            for e in self.events.values():
                e.saved()


_INSERTS: dict[Table, Any] = {}


def _insert_into(table: Table) -> Any:
    """`insert(table)`, built once: a statement built per call costs its cache key each time."""
    stmt = _INSERTS.get(table)
    if stmt is None:
        stmt = _INSERTS[table] = insert(table)
    return stmt


ORDER_UPDATE = update(ORDERS).where(ORDERS.c.id == bindparam("_id"))
EVENT_STATE = (
    update(EVENTS).where(EVENTS.c.id == bindparam("_id")).values(state=bindparam("_state"))
)


class Ctx:
    """One transition's surroundings: the unit of work, virtual `now`, and the cause text."""

    def __init__(self, unit: Unit, now: float, cause: str, event: EventRec | None = None):
        self.unit, self.lender, self.now, self.cause = unit, unit.lender, now, cause
        self.event = event  # the due event being fired, if any
        self.scheduled: list[float] = []  # due times of events scheduled in this transition

    @property
    def conn(self) -> Connection:
        return self.unit.conn

    def schedule(self, order: OrderRec, kind: str, due: float, **data: object) -> None:
        self.unit.add(
            EVENTS,
            {
                "partner_token": order.partner_token,
                "order_id": order.id,
                "kind": kind,
                "due_at": due,
                "state": "pending",
                "data": data,
            },
        )
        self.scheduled.append(due)

    def callback(self, order: OrderRec, path: str, body: dict) -> None:
        self.lender.enqueued += 1
        self.unit.add(
            CALLBACKS,
            {
                "partner_token": order.partner_token,
                "order_id": order.id,
                "order_no": order.order_no,
                "path": path,
                "body": body,
                "created_at": self.now,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": self.lender.wall(),
                "lease_until": 0.0,
                "last_error": "",
                "delivered_at": None,
            },
        )

    def partner(self) -> PartnerRec:
        """The partner of the orders in this unit (read once)."""
        return partner_of(self.unit)


def record(ctx: Ctx, order: OrderRec, source: int | None, dest: int, trigger: str) -> None:
    ctx.unit.add(
        TIMELINE,
        {
            "order_id": order.id,
            "from_status": source,
            "to_status": dest,
            "trigger": trigger,
            "at": ctx.now,
            "cause": ctx.cause,
        },
    )


def apply(ctx: Ctx, order: OrderRec, trigger: str, **kw: Any) -> None:
    """Fire `trigger` on `order` and carry out its effects; raise wrong_state if illegal."""
    try:
        tr = lifecycle.fire(order.status, trigger)
    except IllegalTransition as e:
        raise SandboxError("wrong_state", f"order {order.order_no}: {e}") from None
    order.status = int(tr.dest)
    if tr.dest != tr.source:
        order.updated_at = ctx.now
        _retire_events(ctx, order, tr.dest)
    record(ctx, order, int(tr.source), int(tr.dest), trigger)
    effect = EFFECTS.get(trigger)
    if effect:
        effect(ctx, order, **kw)
    if tr.dest != tr.source:
        ctx.callback(order, "/callback-order-status", bodies.status_body(order))
    if trigger in ("approve", "reject"):
        ctx.callback(order, "/callback-approval-result", bodies.approval(ctx.lender, order))
    if trigger in ("disburse", "extend", "overdue", "settle"):
        plan = bodies.repay_plan(
            ctx.lender,
            ctx.conn,
            ctx.partner(),
            order,
            ctx.now,
            extension_code=extension_code(ctx.unit, order),
        )
        ctx.callback(order, "/callback-repay-plan", plan)


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
        return update(EVENTS).where(EVENTS.c.id.in_(stale.scalar_subquery())).values(state="void")

    build.__qualname__ = f"stale_events_{int(dest)}"
    return build


def _constants(kinds: tuple[str, ...]) -> list[Any]:
    """Event kinds written into the SQL (an IN of bound values cannot run as executemany);
    they are this module's own identifiers, never input."""
    assert all(k.isidentifier() for k in kinds)
    return [literal_column(f"'{k}'") for k in kinds]


STALE_EVENTS = {status: _stale_events(status) for status in Status}


def _retire_events(ctx: Ctx, order: OrderRec, dest: Status) -> None:
    """Void the order's pending events that cannot act in `dest`: in the database at the
    flush, and at once in the unit (events of this batch, loaded or scheduled)."""
    dead = DEAD_IN[dest]
    firing = ctx.event.id if ctx.event is not None else 0
    ctx.unit.retired[dest].append({"of_order": order.id, "firing": firing})
    for ev in ctx.unit.events.values():
        if (
            ev.order_id == order.id
            and ev.kind in dead
            and ev.id != firing
            and ev.state == "pending"
        ):
            ev.state = "void"
            ev.saved()  # the flush's UPDATE writes it
    pending = ctx.unit.inserts.get(EVENTS)
    if pending:
        ctx.unit.inserts[EVENTS] = [
            e for e in pending if e["order_id"] != order.id or e["kind"] not in dead
        ]


def outcome(order: OrderRec) -> Outcome:
    return Outcome.from_dict(order.scenario)


def override_outcome(conn: Connection, order: OrderRec, **changes: object) -> None:
    """Change an order's decided fate after the fact (fault rules review_stuck, payout_retry).

    Due events read the stored outcome when they fire, so a new `payout` applies to the next
    payout. A `review` of "stuck" also voids the pending review event: the review never
    decides until a transition is forced, like the 009 scenario."""
    order.scenario = {**order.scenario, **changes}
    conn.execute(update(ORDERS).where(ORDERS.c.id == order.id).values(scenario=order.scenario))
    order.saved()
    if changes.get("review") == "stuck":
        conn.execute(
            update(EVENTS)
            .where(
                EVENTS.c.order_id == order.id,
                EVENTS.c.kind == "review",
                EVENTS.c.state == "pending",
            )
            .values(state="void")
        )


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
    stmt = unit.lender.store.prepared(_order_for_update) if lock else ORDER_BY_NO
    row = unit.conn.execute(stmt, {"token": token, "order_no": order_no}).first()
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


PARTNER_COLUMNS = PartnerRec.select_columns()
PARTNER_BY_TOKEN = select(*PARTNER_COLUMNS).where(PARTNERS.c.partner_token == bindparam("token"))


def partner_of(unit: Unit) -> PartnerRec:
    if unit.partner is None:
        token = next(iter(unit.orders.values())).partner_token
        row = unit.conn.execute(PARTNER_BY_TOKEN, {"token": token}).one()
        unit.partner = PartnerRec.load(row)
    return unit.partner


# ---- effects, one per trigger ----


def _on_submit(ctx: Ctx, order: OrderRec, **_: object) -> None:
    if outcome(order).review != "stuck":
        ctx.schedule(order, "review", ctx.now + ctx.lender.settings.lifecycle.review_delay)


def _on_approve(ctx: Ctx, order: OrderRec, amount: int | None = None, **_: object) -> None:
    product = ctx.lender.product(order.product_id)
    if amount is None:
        ratio = outcome(order).approve_ratio
        amount = order.application_amount
        if ratio < 1:
            raw = int(order.application_amount * ratio)
            amount = raw - (raw - product.amount_min) % product.amount_step
            amount = max(product.amount_min, min(amount, order.application_amount))
    _set_figures(order, product, int(amount), order.application_term)
    order.approval_time = ctx.now
    order.remark = ""
    ctx.schedule(order, "approval_expiry", ctx.now + ctx.lender.settings.lifecycle.approval_expiry)


def _set_figures(order: OrderRec, product: pricing.Product, amount: int, term: int) -> None:
    q = pricing.quote(product, amount, term)
    order.approved_amount, order.approved_term = amount, term
    order.interest_amount, order.admin_amount = q.interest, q.admin


def _on_reject(ctx: Ctx, order: OrderRec, reason: str | None = None, **_: object) -> None:
    rng = rng_for(ctx.lender.settings.scenarios.seed, order.partner_token, order.order_no, "reject")
    order.remark = reason or outcome(order).reject_reason or banks.make_reject_reason(rng)


def _on_confirm(
    ctx: Ctx, order: OrderRec, amount: int | None = None, term: int | None = None, **_: object
) -> None:
    if amount is not None and term is not None:
        _set_figures(order, ctx.lender.product(order.product_id), amount, term)
    order.confirmed = True
    order.payout_error = ""
    ctx.schedule(order, "payout", ctx.now + ctx.lender.settings.lifecycle.payout_delay)


def _on_disburse(ctx: Ctx, order: OrderRec, **_: object) -> None:
    product = ctx.lender.product(order.product_id)
    order.payout_attempts += 1
    order.loan_time = ctx.now
    order.due_at = pricing.due_at(product, ctx.now, order.approved_term or 0)
    order.interest_due = order.interest_amount or 0
    _schedule_due_events(ctx, order, product)


def _schedule_due_events(ctx: Ctx, order: OrderRec, product: pricing.Product) -> None:
    due = order.due_at or ctx.now
    ctx.schedule(order, "overdue", due + product.grace_days * DAY + 1, due_at=due)
    if outcome(order).repay == "on_time":
        # the borrower pays on the morning of the due day (WIB)
        ctx.schedule(order, "auto_repay", max(ctx.now, due - 15 * 3600), due_at=due)


def _on_fail_payout(ctx: Ctx, order: OrderRec, reason: str | None = None, **_: object) -> None:
    order.payout_attempts += 1
    order.confirmed = False
    rng = rng_for(
        ctx.lender.settings.scenarios.seed, order.order_no, "payout", order.payout_attempts
    )
    code, message = banks.make_payout_failure(rng)
    order.payout_error = reason or code
    order.remark = message
    # A failed payout needs a new account: 08 re-binds, then 11 confirms again.
    ctx.conn.execute(update(CARDS).where(CARDS.c.order_id == order.id).values(active=False))
    ctx.schedule(
        order,
        "payout_failed_expiry",
        ctx.now + ctx.lender.settings.lifecycle.payout_failed_expiry,
        attempt=order.payout_attempts,
    )


def _payment(
    ctx: Ctx, order: OrderRec, code: str, repay_type: int, amount: int, source: str
) -> None:
    ctx.unit.add(
        PAYMENTS,
        {
            "order_id": order.id,
            "repay_code": code,
            "repay_type": repay_type,
            "amount": amount,
            "at": ctx.now,
            "source": source,
        },
    )


def _on_settle(
    ctx: Ctx,
    order: OrderRec,
    paid: int | None = None,
    code: str = "",
    source: str = "forced",
    **_: object,
) -> None:
    product = ctx.lender.product(order.product_id)
    amount = bodies.balance(order, product, ctx.now).total if paid is None else paid
    order.paid_amount += amount
    order.settled_at = ctx.now
    _payment(ctx, order, code, 1, amount, source)
    _void_open_codes(ctx, order)


def _on_extend(
    ctx: Ctx,
    order: OrderRec,
    delay_term: int | None = None,
    paid: int | None = None,
    code: str = "",
    source: str = "forced",
    **_: object,
) -> None:
    product = ctx.lender.product(order.product_id)
    term = delay_term or product.extension.default_term
    q = bodies.extension_quote(ctx.lender, order, term, ctx.now)
    amount = q["delay_amount"] if paid is None else paid
    old_due = order.due_at or ctx.now
    new_due = pricing.extension_due(product, old_due, ctx.now, term)
    ctx.unit.add(
        EXTENSIONS,
        {
            "order_id": order.id,
            "loan_amount": order.approved_amount or 0,
            "delay_amount": amount,
            "delay_term": term,
            "term_unit": product.extension.term_unit,
            "delay_time": ctx.now,
            "start_time": old_due,
            "expiry_time": new_due,
            "repay_code": code,
        },
    )
    _payment(ctx, order, code, 2, amount, source)
    order.paid_amount += amount
    order.extension_paid += amount
    order.extensions += 1
    order.due_at = new_due
    order.interest_due = pricing.extension_interest(product, order.approved_amount or 0, term)
    order.updated_at = ctx.now
    _void_open_codes(ctx, order, keep=code)
    _schedule_due_events(ctx, order, product)


def _void_open_codes(ctx: Ctx, order: OrderRec, keep: str = "") -> None:
    ctx.unit.extension_codes.pop(order.id, None)  # read again when a view needs it
    ctx.conn.execute(
        update(CODES)
        .where(
            CODES.c.order_id == order.id,
            CODES.c.state == "open",
            CODES.c.code != keep,
        )
        .values(state="void")
    )


EFFECTS: dict[str, Callable[..., None]] = {
    "submit": _on_submit,
    "approve": _on_approve,
    "reject": _on_reject,
    "confirm": _on_confirm,
    "disburse": _on_disburse,
    "fail_payout": _on_fail_payout,
    "settle": _on_settle,
    "extend": _on_extend,
}


# ---- due events ----

Handler = Callable[[Ctx, OrderRec, EventRec], None]


def _review(ctx: Ctx, order: OrderRec, ev: EventRec) -> None:
    if order.status == Status.REVIEWING:
        apply(ctx, order, "approve" if outcome(order).review == "approve" else "reject")


def _payout(ctx: Ctx, order: OrderRec, ev: EventRec) -> None:
    if order.status != Status.APPROVED or not order.confirmed:
        return
    mode = outcome(order).payout
    fails = mode == "fail" or (mode == "fail_once" and order.payout_attempts == 0)
    bounce = _bounce(ctx, order)  # an account its bank does not issue fails whatever the fate
    apply(ctx, order, "fail_payout" if fails or bounce else "disburse", reason=bounce)


ACTIVE_CARD = (
    select(CARDS.c.bank_code, CARDS.c.bank_card)
    .where(CARDS.c.order_id == bindparam("order_id"), CARDS.c.active.is_(True))
    .limit(1)
)


def _bounce(ctx: Ctx, order: OrderRec) -> str | None:
    """The failure a payout to the order's bound account meets (`banks.payout_bounce`)."""
    card = ctx.conn.execute(ACTIVE_CARD, {"order_id": order.id}).first()
    return banks.payout_bounce(card.bank_code, card.bank_card) if card else None


def _cancel_if(status: Status, unconfirmed: bool = False) -> Handler:
    def handler(ctx: Ctx, order: OrderRec, ev: EventRec) -> None:
        if order.status == status and not (unconfirmed and order.confirmed):
            apply(ctx, order, "cancel")

    return handler


def _payout_failed_expiry(ctx: Ctx, order: OrderRec, ev: EventRec) -> None:
    # Counted from the latest failure: a re-bind + confirm that failed again restarts it.
    if (
        order.status == Status.PAYOUT_FAILED
        and ev.data.get("attempt", order.payout_attempts) == order.payout_attempts
    ):
        apply(ctx, order, "cancel")


def _overdue(ctx: Ctx, order: OrderRec, ev: EventRec) -> None:
    if order.status == Status.REPAYING and order.due_at == ev.data.get("due_at"):
        apply(ctx, order, "overdue")


def _auto_repay(ctx: Ctx, order: OrderRec, ev: EventRec) -> None:
    if order.status in (Status.REPAYING, Status.OVERDUE) and order.due_at == ev.data.get("due_at"):
        apply(ctx, order, "settle", source="scenario")


def _code_expiry(ctx: Ctx, order: OrderRec, ev: EventRec) -> None:
    ctx.unit.extension_codes.pop(order.id, None)
    ctx.conn.execute(
        update(CODES)
        .where(CODES.c.code == ev.data.get("code"), CODES.c.state == "open")
        .values(state="void")
    )


HANDLERS: dict[str, Handler] = {
    "review": _review,
    "payout": _payout,
    "approval_expiry": _cancel_if(Status.APPROVED, unconfirmed=True),
    "abandon": _cancel_if(Status.NEW),
    "payout_failed_expiry": _payout_failed_expiry,
    "overdue": _overdue,
    "auto_repay": _auto_repay,
    "code_expiry": _code_expiry,
}

BATCH = 500


# Partner `token`'s pending events due at or before `until`.
DUE_BY = (
    EVENTS.c.partner_token == bindparam("token"),
    EVENTS.c.state == "pending",
    EVENTS.c.due_at <= bindparam("until"),
)
ANY_DUE = exists().where(*DUE_BY)  # a catch-up has work to do


def _due_events(store: Store) -> Any:
    return store.claim(
        select(*EventRec.select_columns())
        .where(*DUE_BY)
        .order_by(EVENTS.c.due_at, EVENTS.c.id)
        .limit(BATCH)
    )


def _locked_orders(store: Store) -> Any:
    # In id order: two processes locking orders of overlapping batches never wait on each other.
    return store.lock_row(
        select(*ORDER_COLUMNS)
        .where(ORDERS.c.id.in_(bindparam("ids", expanding=True)))
        .order_by(ORDERS.c.id)
    )


def process_due(lender: Lender, token: str, until: float) -> int:
    """Fire every pending event of partner `token` due at or before `until`; return the count.

    Events run in due-time order, each at its own virtual time. A batch stops early when an
    event it scheduled falls before the batch's next event, so order holds across batches.
    """
    store, fired = lender.store, 0
    while True:
        with store.begin() as conn:
            rows = conn.execute(store.prepared(_due_events), {"token": token, "until": until})
            events = [EventRec.load(r) for r in rows]
            if not events:
                return fired
            fired += _fire_batch(Unit(lender, conn), events)
        lender.on_outbox()


def _fire_batch(unit: Unit, events: list[EventRec]) -> int:
    """Fire `events` in order until one falls after an event scheduled on the way."""
    store = unit.lender.store
    # Lock the orders: another process may be firing a different event of the same order.
    ids = sorted({ev.order_id for ev in events})
    for row in unit.conn.execute(store.prepared(_locked_orders), {"ids": ids}):
        unit.track(OrderRec.load(row))
    unit.events = {ev.id: ev for ev in events}
    horizon, fired = float("inf"), 0
    for ev in events:
        if ev.due_at > horizon:
            break
        ctx = Ctx(unit, ev.due_at, f"due event: {ev.kind}", event=ev)
        _fire_event(ctx, ev, unit.orders.get(ev.order_id))
        fired += 1
        horizon = min([horizon, *ctx.scheduled])
    unit.flush()
    return fired


def _fire_event(ctx: Ctx, ev: EventRec, order: OrderRec | None) -> None:
    if ev.state != "pending":
        return  # retired by an earlier event of the same batch
    ev.state = "done"
    if order is None:
        return
    try:
        HANDLERS[ev.kind](ctx, order, ev)
    except SandboxError:
        ev.state = "void"  # the order moved on (e.g. forced) and the event no longer applies


NEXT_DUE = (
    select(EVENTS.c.due_at)
    .where(EVENTS.c.partner_token == bindparam("token"), EVENTS.c.state == "pending")
    .order_by(EVENTS.c.due_at)
    .limit(1)
)


def next_due(conn: Connection, token: str) -> float | None:
    return conn.execute(NEXT_DUE, {"token": token}).scalar()
