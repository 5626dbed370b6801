"""The lifecycle engine: apply a trigger to an order, with its effects, in the caller's transaction.

`apply` fires the state machine, then records the timeline row, sets figures, schedules or
retires due events and enqueues callbacks (transactional outbox) — all in the session the
caller commits, so a transition happens completely or not at all. `process_due` fires stored
due events in due-time order, each at its own virtual time (docs/architecture.md "Time").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..core import banks, lifecycle, pricing
from ..core.errors import SandboxError
from ..core.lifecycle import IllegalTransition, Status
from ..core.pricing import DAY
from ..core.scenarios import Outcome, rng_for
from ..store import (
    BankCard,
    Callback,
    DueEvent,
    ExtensionRow,
    Order,
    Payment,
    RepayCode,
    Store,
    TimelineRow,
)
from . import bodies
from .lender import Lender

# Bulk UPDATEs refresh only the loaded objects they matched (UPDATE ... RETURNING), not by
# evaluating their WHERE against every object in the session: with hundreds of events per
# batch, the default "evaluate" made process_due quadratic (bench/bench_clock.py).
SYNC_MATCHED = {"synchronize_session": "fetch"}


class Ctx:
    """One transition's surroundings: lender, session, virtual `now`, and the cause text."""

    def __init__(
        self, lender: Lender, s: Session, now: float, cause: str, event: DueEvent | None = None
    ):
        self.lender, self.s, self.now, self.cause = lender, s, now, cause
        self.event = event  # the due event being fired, if any
        self.scheduled: list[float] = []  # due times of events scheduled in this transaction

    def schedule(self, order: Order, kind: str, due: float, **data: object) -> None:
        self.s.add(
            DueEvent(
                partner_token=order.partner_token,
                order_id=order.id,
                kind=kind,
                due_at=due,
                state="pending",
                data=data,
            )
        )
        self.scheduled.append(due)

    def callback(self, order: Order, path: str, body: dict) -> None:
        self.lender.enqueued += 1
        self.s.add(
            Callback(
                partner_token=order.partner_token,
                order_id=order.id,
                order_no=order.order_no,
                path=path,
                body=body,
                created_at=self.now,
                state="pending",
                attempts=0,
                next_attempt_at=self.lender.wall(),
                lease_until=0.0,
                last_error="",
            )
        )


def record(ctx: Ctx, order: Order, source: int | None, dest: int, trigger: str) -> None:
    ctx.s.add(
        TimelineRow(
            order_id=order.id,
            from_status=source,
            to_status=dest,
            trigger=trigger,
            at=ctx.now,
            cause=ctx.cause,
        )
    )


def apply(ctx: Ctx, order: Order, trigger: str, **kw: object) -> None:
    """Fire `trigger` on `order` and carry out its effects; raise wrong_state if illegal."""
    try:
        t = lifecycle.fire(order.status, trigger)
    except IllegalTransition as e:
        raise SandboxError("wrong_state", f"order {order.order_no}: {e}") from None
    order.status = int(t.dest)
    if t.dest != t.source:
        order.updated_at = ctx.now
        _retire_events(ctx, order, t.dest)
    record(ctx, order, int(t.source), int(t.dest), trigger)
    effect = EFFECTS.get(trigger)
    if effect:
        effect(ctx, order, **kw)
    if t.dest != t.source:
        ctx.callback(order, "/callback-order-status", bodies.status_body(order))
    if trigger in ("approve", "reject"):
        ctx.callback(order, "/callback-approval-result", bodies.approval(ctx.lender, order))
    if trigger in ("disburse", "extend", "overdue", "settle"):
        ctx.callback(
            order, "/callback-repay-plan", bodies.repay_plan(ctx.lender, ctx.s, order, ctx.now)
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


def _stale_events(store: Store) -> Any:
    # Rows another process has claimed are skipped (SKIP LOCKED on PostgreSQL): waiting for
    # them could deadlock with that process waiting for this order; it will find the event
    # stale and drop it. `firing` (the due event being fired, done but perhaps not flushed
    # yet) is left alone.
    events = DueEvent.__table__
    stale = store.claim(
        select(events.c.id).where(
            events.c.order_id == bindparam("of_order"),
            events.c.state == "pending",
            events.c.kind.in_(bindparam("dead", expanding=True)),
            events.c.id != bindparam("firing"),
        )
    )
    return (
        update(events)  # type: ignore[arg-type]  # DueEvent.__table__ is a Table
        .where(events.c.id.in_(stale.scalar_subquery()))
        .values(state="void")
        .returning(events.c.id)
    )


def _retire_events(ctx: Ctx, order: Order, dest: Status) -> None:
    if ctx.s.autoflush:  # what the ORM does before its own statements (a table UPDATE is not)
        ctx.s.flush()
    voided = ctx.s.execute(
        ctx.lender.store.prepared(_stale_events),
        {
            "of_order": order.id,
            "dead": DEAD_IN[dest],
            "firing": ctx.event.id if ctx.event is not None else 0,
        },
    ).scalars()
    # A table UPDATE skips the ORM's bulk-update bookkeeping (most of its cost): the events
    # loaded in the session (a batch of process_due) learn their new state here.
    for event_id in voided:
        loaded = ctx.s.identity_map.get(Session.identity_key(DueEvent, event_id))
        if loaded is not None:
            set_committed_value(loaded, "state", "void")


def outcome(order: Order) -> Outcome:
    return Outcome.from_dict(order.scenario)


def override_outcome(s: Session, order: Order, **changes: object) -> None:
    """Change an order's decided fate after the fact (fault rules review_stuck, payout_retry).

    Due events read the stored outcome when they fire, so a new `payout` applies to the next
    payout. A `review` of "stuck" also voids the pending review event: the review never
    decides until a transition is forced, like the 009 scenario."""
    order.scenario = {**order.scenario, **changes}  # a new dict: SQLAlchemy sees the change
    if changes.get("review") == "stuck":
        s.execute(
            update(DueEvent)
            .where(
                DueEvent.order_id == order.id,
                DueEvent.kind == "review",
                DueEvent.state == "pending",
            )
            .values(state="void")
        )


# ---- effects, one per trigger ----


def _on_submit(ctx: Ctx, order: Order, **_: object) -> None:
    if outcome(order).review != "stuck":
        ctx.schedule(order, "review", ctx.now + ctx.lender.settings.lifecycle.review_delay)


def _on_approve(ctx: Ctx, order: Order, amount: int | None = None, **_: object) -> None:
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


def _set_figures(order: Order, product: pricing.Product, amount: int, term: int) -> None:
    q = pricing.quote(product, amount, term)
    order.approved_amount, order.approved_term = amount, term
    order.interest_amount, order.admin_amount = q.interest, q.admin


def _on_reject(ctx: Ctx, order: Order, reason: str | None = None, **_: object) -> None:
    rng = rng_for(ctx.lender.settings.scenarios.seed, order.partner_token, order.order_no, "reject")
    order.remark = reason or outcome(order).reject_reason or banks.make_reject_reason(rng)


def _on_confirm(
    ctx: Ctx, order: Order, amount: int | None = None, term: int | None = None, **_: object
) -> None:
    if amount is not None and term is not None:
        _set_figures(order, ctx.lender.product(order.product_id), amount, term)
    order.confirmed = True
    order.payout_error = ""
    ctx.schedule(order, "payout", ctx.now + ctx.lender.settings.lifecycle.payout_delay)


def _on_disburse(ctx: Ctx, order: Order, **_: object) -> None:
    product = ctx.lender.product(order.product_id)
    order.payout_attempts += 1
    order.loan_time = ctx.now
    order.due_at = pricing.due_at(product, ctx.now, order.approved_term or 0)
    order.interest_due = order.interest_amount or 0
    _schedule_due_events(ctx, order, product)


def _schedule_due_events(ctx: Ctx, order: Order, product: pricing.Product) -> None:
    due = order.due_at or ctx.now
    ctx.schedule(order, "overdue", due + product.grace_days * DAY + 1, due_at=due)
    if outcome(order).repay == "on_time":
        # the borrower pays on the morning of the due day (WIB)
        ctx.schedule(order, "auto_repay", max(ctx.now, due - 15 * 3600), due_at=due)


def _on_fail_payout(ctx: Ctx, order: Order, reason: str | None = None, **_: object) -> None:
    order.payout_attempts += 1
    order.confirmed = False
    rng = rng_for(
        ctx.lender.settings.scenarios.seed, order.order_no, "payout", order.payout_attempts
    )
    code, message = banks.make_payout_failure(rng)
    order.payout_error = reason or code
    order.remark = message
    # A failed payout needs a new account: 08 re-binds, then 11 confirms again.
    ctx.s.execute(
        update(BankCard).where(BankCard.order_id == order.id).values(active=False),
        execution_options=SYNC_MATCHED,
    )
    ctx.schedule(
        order,
        "payout_failed_expiry",
        ctx.now + ctx.lender.settings.lifecycle.payout_failed_expiry,
        attempt=order.payout_attempts,
    )


def _on_settle(
    ctx: Ctx,
    order: Order,
    paid: int | None = None,
    code: str = "",
    source: str = "forced",
    **_: object,
) -> None:
    product = ctx.lender.product(order.product_id)
    amount = bodies.balance(order, product, ctx.now).total if paid is None else paid
    order.paid_amount += amount
    order.settled_at = ctx.now
    ctx.s.add(
        Payment(
            order_id=order.id,
            repay_code=code,
            repay_type=1,
            amount=amount,
            at=ctx.now,
            source=source,
        )
    )
    _void_open_codes(ctx, order)


def _on_extend(
    ctx: Ctx,
    order: Order,
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
    ctx.s.add(
        ExtensionRow(
            order_id=order.id,
            loan_amount=order.approved_amount or 0,
            delay_amount=amount,
            delay_term=term,
            term_unit=product.extension.term_unit,
            delay_time=ctx.now,
            start_time=old_due,
            expiry_time=new_due,
            repay_code=code,
        )
    )
    ctx.s.add(
        Payment(
            order_id=order.id,
            repay_code=code,
            repay_type=2,
            amount=amount,
            at=ctx.now,
            source=source,
        )
    )
    order.paid_amount += amount
    order.extension_paid += amount
    order.extensions += 1
    order.due_at = new_due
    order.interest_due = pricing.extension_interest(product, order.approved_amount or 0, term)
    order.updated_at = ctx.now
    _void_open_codes(ctx, order, keep=code)
    _schedule_due_events(ctx, order, product)


def _void_open_codes(ctx: Ctx, order: Order, keep: str = "") -> None:
    ctx.s.execute(
        update(RepayCode)
        .where(RepayCode.order_id == order.id, RepayCode.state == "open", RepayCode.code != keep)
        .values(state="void"),
        execution_options=SYNC_MATCHED,
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


def _review(ctx: Ctx, order: Order, ev: DueEvent) -> None:
    if order.status == Status.REVIEWING:
        apply(ctx, order, "approve" if outcome(order).review == "approve" else "reject")


def _payout(ctx: Ctx, order: Order, ev: DueEvent) -> None:
    if order.status != Status.APPROVED or not order.confirmed:
        return
    mode = outcome(order).payout
    fails = mode == "fail" or (mode == "fail_once" and order.payout_attempts == 0)
    bounce = _bounce(ctx.s, order)  # an account its bank does not issue fails whatever the fate
    apply(ctx, order, "fail_payout" if fails or bounce else "disburse", reason=bounce)


def _bounce(s: Session, order: Order) -> str | None:
    card = s.scalars(
        select(BankCard).where(BankCard.order_id == order.id, BankCard.active.is_(True))
    ).first()
    return banks.payout_bounce(card.bank_code, card.bank_card) if card else None


def _cancel_if(status: Status, unconfirmed: bool = False) -> Callable[[Ctx, Order, DueEvent], None]:
    def handler(ctx: Ctx, order: Order, ev: DueEvent) -> None:
        if order.status == status and not (unconfirmed and order.confirmed):
            apply(ctx, order, "cancel")

    return handler


def _payout_failed_expiry(ctx: Ctx, order: Order, ev: DueEvent) -> None:
    # Counted from the latest failure: a re-bind + confirm that failed again restarts it.
    if (
        order.status == Status.PAYOUT_FAILED
        and ev.data.get("attempt", order.payout_attempts) == order.payout_attempts
    ):
        apply(ctx, order, "cancel")


def _overdue(ctx: Ctx, order: Order, ev: DueEvent) -> None:
    if order.status == Status.REPAYING and order.due_at == ev.data.get("due_at"):
        apply(ctx, order, "overdue")


def _auto_repay(ctx: Ctx, order: Order, ev: DueEvent) -> None:
    if order.status in (Status.REPAYING, Status.OVERDUE) and order.due_at == ev.data.get("due_at"):
        apply(ctx, order, "settle", source="scenario")


def _code_expiry(ctx: Ctx, order: Order, ev: DueEvent) -> None:
    ctx.s.execute(
        update(RepayCode)
        .where(RepayCode.code == ev.data.get("code"), RepayCode.state == "open")
        .values(state="void"),
        execution_options=SYNC_MATCHED,
    )


HANDLERS: dict[str, Callable[[Ctx, Order, DueEvent], None]] = {
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
    DueEvent.partner_token == bindparam("token"),
    DueEvent.state == "pending",
    DueEvent.due_at <= bindparam("until"),
)
ANY_DUE = exists().where(*DUE_BY)  # a catch-up has work to do


def _due_events(store: Store) -> Any:
    return store.claim(
        select(DueEvent).where(*DUE_BY).order_by(DueEvent.due_at, DueEvent.id).limit(BATCH)
    )


def _locked_orders(store: Store) -> Any:
    # In id order: two processes locking orders of overlapping batches never wait on each other.
    return store.lock_row(
        select(Order).where(Order.id.in_(bindparam("ids", expanding=True))).order_by(Order.id)
    )


def process_due(lender: Lender, token: str, until: float) -> int:
    """Fire every pending event of partner `token` due at or before `until`; return the count.

    Events run in due-time order, each at its own virtual time. A batch stops early when an
    event it scheduled falls before the batch's next event, so order holds across batches.
    """
    fired = 0
    while True:
        with lender.store.transaction() as s:
            events = list(
                s.scalars(lender.store.prepared(_due_events), {"token": token, "until": until})
            )
            if not events:
                return fired
            fired += _fire_batch(lender, s, events)
        lender.on_outbox()


def _fire_batch(lender: Lender, s: Session, events: list[DueEvent]) -> int:
    """Fire `events` in order until one falls after an event scheduled on the way.

    Autoflush is off: flushing before every query of every event was most of the cost
    (bench/bench_clock.py). An event's queries read only its own order's rows, so pending
    changes are flushed when an event's order already has some (an earlier event of the
    batch touched it), and at commit."""
    # Lock the orders: another process may be firing a different event of the same order.
    # The dict's strong references keep them in the session's (weak) identity map.
    orders = {
        o.id: o
        for o in s.scalars(
            lender.store.prepared(_locked_orders), {"ids": sorted({ev.order_id for ev in events})}
        )
    }
    # Likewise the partner, so the views (callback 21's url_info) find it without a query.
    partner = lender.partner(s, events[0].partner_token)  # noqa: F841
    horizon, fired = float("inf"), 0
    touched: set[int] = set()  # orders with changes not flushed yet
    with s.no_autoflush:
        for ev in events:
            if ev.due_at > horizon:
                break
            if ev.order_id in touched:
                s.flush()
                touched.clear()
            ctx = Ctx(lender, s, ev.due_at, f"due event: {ev.kind}", event=ev)
            _fire_event(ctx, ev, orders.get(ev.order_id))
            touched.add(ev.order_id)
            fired += 1
            horizon = min([horizon, *ctx.scheduled])
    return fired


def _fire_event(ctx: Ctx, ev: DueEvent, order: Order | None) -> None:
    if ev.state != "pending":
        return  # retired by an earlier event of the same batch
    ev.state = "done"
    if order is None:
        return
    try:
        HANDLERS[ev.kind](ctx, order, ev)
    except SandboxError:
        ev.state = "void"  # the order moved on (e.g. forced) and the event no longer applies


def next_due(s: Session, token: str) -> float | None:
    return s.scalar(
        select(DueEvent.due_at)
        .where(DueEvent.partner_token == token, DueEvent.state == "pending")
        .order_by(DueEvent.due_at)
        .limit(1)
    )
