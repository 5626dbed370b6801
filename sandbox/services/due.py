"""Due events: what each kind does when the clock reaches it, and firing them in order.

`process_due` fires a partner's pending events due by a virtual time in due-time order, each
at its own virtual time, in batches of one transaction each (docs/architecture.md "Time").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.engine import Connection

from ..core import banks
from ..core.errors import SandboxError
from ..core.lifecycle import Status
from ..store import Store
from ..store.records import EventRec, OrderRec
from . import locks
from .engine import Ctx, apply, outcome
from .lender import Lender
from .unit import CODES, EVENTS, ORDER_COLUMNS, ORDERS, Unit, active_card

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


def _bounce(ctx: Ctx, order: OrderRec) -> str | None:
    """The failure a payout to the order's bound account meets (`banks.payout_bounce`)."""
    card = active_card(ctx.unit, order)
    return banks.payout_bounce(*card) if card else None


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
            if not locks.share(store, conn, token):  # a reset waits for the batch (or it for it)
                return fired  # the partner is gone (a global reset)
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
    unit.load_events(events)
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
