"""The lifecycle engine: apply a trigger to an order, with its effects, in the caller's transaction.

`apply` fires the state machine, then records the timeline row, sets figures, schedules or
retires due events and enqueues callbacks (transactional outbox) — all in the caller's unit
of work (`services.unit.Unit`), so a transition happens completely or not at all. Due events
fire through `services.due`, each at its own virtual time (docs/architecture.md "Time").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Connection

from ..core import banks, lifecycle, pricing
from ..core.errors import SandboxError
from ..core.lifecycle import IllegalTransition, Status
from ..core.pricing import DAY
from ..core.scenarios import Outcome, rng_for
from ..store import fast
from ..store.records import EventRec, OrderRec, PartnerRec
from . import bodies
from .unit import (
    CALLBACKS,
    CARDS,
    CODES,
    DEAD_IN,
    EVENTS,
    EXTENSIONS,
    ORDERS,
    PAYMENTS,
    TIMELINE,
    Unit,
    extension_code,
    partner_of,
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
                "retry_at": self.now,  # due at once, on the partner's clock too
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


def _retire_events(ctx: Ctx, order: OrderRec, dest: Status) -> None:
    """Void the order's pending events that cannot act in `dest`: in the database at the
    flush, and at once in the unit (events of this batch, loaded or scheduled)."""
    dead = DEAD_IN[dest]
    firing = ctx.event.id if ctx.event is not None else 0
    ctx.unit.retired[dest].append({"of_order": order.id, "firing": firing})
    for ev in ctx.unit.events_of.get(order.id, ()):
        if ev.kind in dead and ev.id != firing and ev.state == "pending":
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
    ctx.unit.cards.pop(order.id, None)
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


VOID_OPEN_CODES = (
    update(CODES)
    .where(
        CODES.c.order_id == bindparam("_order"),
        CODES.c.state == "open",
        CODES.c.code != bindparam("_keep"),
    )
    .values(state="void")
)


def _void_open_codes(ctx: Ctx, order: OrderRec, keep: str = "") -> None:
    codes = ctx.unit.extension_codes
    if keep:
        codes.pop(order.id, None)  # read again when a view needs it
    elif (latest := codes.get(order.id)) is not None and latest[0] == "open":
        codes[order.id] = ("void", latest[1])  # as the UPDATE leaves it (saves a read per 200)
    store = ctx.unit.lender.store
    fast.run(ctx.conn, store.fast(VOID_OPEN_CODES), {"_order": order.id, "_keep": keep})


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
