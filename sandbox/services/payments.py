"""Payment codes and payments: issuing a code (15 get-repay-detail and the repayment page) and
the borrower paying one (POST /sandbox/payments, the page's one-click payment).

A code is a closed-amount virtual account or store code with an expiry (a due event voids
it); an order keeps at most `max_repay_codes` open codes. Paying a repayment code settles the
order (200); paying an extension code extends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from ..core import banks, scenarios
from ..core.errors import ControlError, SandboxError
from ..core.lifecycle import Status
from ..core.settings import RepayMethodFixture
from ..store import tables as t
from ..store.records import OrderRec
from . import bodies, locks
from .due import process_due
from .engine import Ctx, apply
from .lender import Lender
from .unit import EVENTS, ORDER_COLUMNS, ORDERS, Unit

CODES: Table = t.RepayCode.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Code:
    """A payment code as 15 answers it."""

    code: str
    amount: int
    expires_at: float
    bank_code: str
    method_code: str
    merchant_name: str


SAME_CODE = select(CODES).where(
    CODES.c.order_id == bindparam("order_id"),
    CODES.c.state == "open",
    CODES.c.expires_at > bindparam("now"),
    CODES.c.repay_type == bindparam("repay_type"),
    CODES.c.method_code == bindparam("method_code"),
    CODES.c.amount == bindparam("amount"),
)
OPEN_CODES = (
    select(CODES.c.id)
    .where(
        CODES.c.order_id == bindparam("order_id"),
        CODES.c.state == "open",
        CODES.c.expires_at > bindparam("now"),
    )
    .order_by(CODES.c.id.desc())
)
CODE_TAKEN = select(CODES.c.id).where(CODES.c.code == bindparam("code"))


def _code(row: Any) -> Code:
    return Code(
        row.code, row.amount, row.expires_at, row.bank_code, row.method_code, row.merchant_name
    )


def issue_code(
    lender: Lender,
    conn: Connection,
    order: OrderRec,
    now: float,
    *,
    repay_type: int,
    method: RepayMethodFixture,
    amount: int,
    delay_term: int | None,
) -> Code:
    """A payment code for `amount`; asking again for the same payment returns the same code."""
    same = conn.execute(
        SAME_CODE,
        {
            "order_id": order.id,
            "now": now,
            "repay_type": repay_type,
            "method_code": method.method_code,
            "amount": amount,
        },
    ).first()
    if same is not None and same.delay_term == delay_term:
        return _code(same)  # like a real VA: the same bill keeps its number
    store = method.repay_method == 2
    limits = banks.RETAIL_LIMITS.get(method.bank_code.upper()) if store else banks.VA_LIMITS
    lo, hi = limits if limits else (10_000, 50_000_000)
    if not lo <= amount <= hi:
        raise SandboxError(
            "payment_rejected",
            f"{amount} is outside {method.bank_code}'s limits "
            f"{lo}-{hi} per payment; choose another method",
        )
    rng = scenarios.rng_for(
        lender.settings.scenarios.seed,
        order.partner_token,
        order.order_no,
        "code",
        now,
        repay_type,
        method.method_code,
    )
    value = _new_code_value(conn, rng, method, order.user_mobile)
    ttl = lender.settings.lifecycle.repay_code_ttl
    _void_beyond_limit(conn, order, now, lender.settings.lifecycle.max_repay_codes - 1)
    merchant = method.bank_code if store else ""
    row = {
        "code": value,
        "order_id": order.id,
        "partner_token": order.partner_token,
        "repay_type": repay_type,
        "delay_term": delay_term,
        "amount": amount,
        "repay_method": method.repay_method,
        "bank_code": method.bank_code,
        "method_code": method.method_code,
        "merchant_name": merchant,
        "created_at": now,
        "expires_at": now + ttl,
        "state": "open",
        "paid_at": None,
    }
    conn.execute(insert(CODES), row)
    conn.execute(
        insert(EVENTS),
        {
            "partner_token": order.partner_token,
            "order_id": order.id,
            "kind": "code_expiry",
            "due_at": now + ttl,
            "state": "pending",
            "data": {"code": value},
        },
    )
    return Code(value, amount, now + ttl, method.bank_code, method.method_code, merchant)


def _void_beyond_limit(conn: Connection, order: OrderRec, now: float, keep: int) -> None:
    """config.toml max_repay_codes: an order keeps that many open codes; older ones are voided
    (a client asking for a new code on every screen would otherwise pile them up)."""
    ids = list(conn.execute(OPEN_CODES, {"order_id": order.id, "now": now}).scalars())
    old = ids[max(keep, 0) :]
    if old:
        conn.execute(update(CODES).where(CODES.c.id.in_(old)).values(state="void"))


def _new_code_value(conn: Connection, rng: Any, method: RepayMethodFixture, mobile: str) -> str:
    """A payment code no other code has: a VA is prefix + random digits + the mobile's last 8
    digits (a customer part alone would give every code of a customer the same number)."""
    for _ in range(100):
        if method.repay_method == 2:
            value = banks.make_retail_code(rng, method.bank_code)
        else:
            value = banks.make_va_number(rng, method.bank_code, mobile[-8:])
        if conn.execute(CODE_TAKEN, {"code": value}).first() is None:
            return value
    raise SandboxError("internal", "could not draw an unused payment code")


# ---- paying ----

CODE_BY_VALUE = select(CODES).where(CODES.c.code == bindparam("code"))
ORDER_BY_ID = select(*ORDER_COLUMNS).where(ORDERS.c.id == bindparam("id"))


def _code_for_update(store: Any) -> Any:
    return store.lock_row(CODE_BY_VALUE)


def _order_for_update(store: Any) -> Any:
    return store.lock_row(ORDER_BY_ID)


def pay(lender: Lender, repay_code: str, amount: int | None = None, source: str = "api") -> dict:
    """The borrower pays a code from 15: full repayment -> 200; extension fee -> extended."""
    if not isinstance(repay_code, str):
        raise ControlError("invalid_field", "repay_code must be a string")
    if amount is not None and (
        isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount < 2**53
    ):
        raise ControlError("invalid_field", "amount must be a whole number >= 1")
    for _ in range(CLOCK_TRIES):
        result = _pay_once(lender, repay_code, amount, source)
        if result is not None:
            lender.on_outbox()
            return result
    raise ControlError(
        "conflict", "the partner's clock kept moving under this payment: try again", 409
    )


# A payment retried this often while other requests move its partner's clock answers 10015.
CLOCK_TRIES = 20


def _pay_once(lender: Lender, repay_code: str, amount: int | None, source: str) -> dict | None:
    """One try: fire what is due at the partner's now, then pay at that now — or None when
    another process moved the clock in between (the payment would land in the timeline
    before events that already fired at a later time: an overdue after the settlement)."""
    with lender.store.transaction() as s:
        code = s.connection().execute(CODE_BY_VALUE, {"code": repay_code}).first()
        if code is None:
            raise ControlError("payment_rejected", f"unknown repay_code {repay_code!r}", 404)
        token, order_id = code.partner_token, code.order_id
        partner = lender.partner_or_404(s, token)
        clock, now = lender.clock_of(partner), lender.now(partner)
    process_due(lender, token, now)
    with lender.store.begin() as conn:
        # Its partner first (services.locks): a reset of the partner waits for the payment,
        # or the payment for the reset, which leaves no order or code to pay (404).
        # The order first, then the code: every writer of an order's codes takes them in that
        # order (15 and due events lock the order), so two payments of one order (its extension
        # and its full code, through two processes at once) take turns, and the second reads
        # what the first did (a voided code, a settled order: 409). Locking only the code, each
        # payment held its own and waited for the other's, which settling or extending voids:
        # a deadlock, answered 10099 (tests/postgres/test_three_processes.py found it).
        locks.share(lender.store, conn, token)
        locked = conn.execute(lender.store.prepared(_order_for_update), {"id": order_id}).first()
        code = conn.execute(lender.store.prepared(_code_for_update), {"code": repay_code}).first()
        # Gone: the partner was reset since the code was read (on SQLite a new order may have
        # the id again, hence the order's id compared).
        if locked is None or code is None or code.order_id != locked.id:
            raise ControlError("payment_rejected", f"unknown repay_code {repay_code!r}", 404)
        if lender.stored_clock(conn, token) != clock:
            return None  # moved since: what it fired is after `now`; try again at its now
        unit = Unit(lender, conn)
        order = unit.track(OrderRec.load(locked))
        _check_payable(code, order, amount, now)
        ctx = Ctx(unit, now, f"payment of {code.amount} with code {code.code} ({source})")
        # Paid before the transition: the callback 21 it enqueues must show delay_status 1.
        conn.execute(update(CODES).where(CODES.c.id == code.id).values(state="paid", paid_at=now))
        if code.repay_type == 1:
            apply(ctx, order, "settle", paid=code.amount, code=code.code, source=source)
        else:
            apply(
                ctx,
                order,
                "extend",
                delay_term=code.delay_term,
                paid=code.amount,
                code=code.code,
                source=source,
            )
        unit.flush()
        return {
            "repay_code": code.code,
            "amount": code.amount,
            "repay_type": code.repay_type,
            "order_no": order.order_no,
            "partner_token": token,
            "order_status": order.status,
            "paid_at": lender.fmt(now),
        }


def _check_payable(code: Any, order: OrderRec, amount: int | None, now: float) -> None:
    if code.state == "paid":
        raise ControlError("payment_rejected", f"code {code.code} is already paid", 409)
    if code.expires_at <= now:  # before "void": the expiry event voids expired codes too
        raise ControlError("payment_rejected", f"code {code.code} expired", 409)
    if code.state == "void":
        raise ControlError("payment_rejected", f"code {code.code} was replaced or cancelled", 409)
    if order.status not in (Status.REPAYING, Status.OVERDUE):
        raise ControlError(
            "payment_rejected",
            f"order {order.order_no} is in status {order.status}: nothing to pay",
            409,
        )
    if amount is not None and amount != code.amount:
        raise ControlError(
            "payment_rejected",
            f"amount {amount} differs from the code's "
            f"{code.amount} (closed-amount code: pay it exactly)",
        )


def pay_in_full(lender: Lender, order_id: int, now: float) -> dict:
    """The repayment page's one click: a code for everything owed now, through the lender's
    first bank virtual-account method, issued as 15 would and paid at once."""
    method = next((m for m in lender.settings.data.repay_methods if m.repay_method == 1), None)
    if method is None:
        raise SandboxError("unknown_bank", "the lender lists no bank repayment method")
    with lender.store.begin() as conn:
        row = conn.execute(ORDER_BY_ID, {"id": order_id}).first()
        if row is not None:  # its partner locked (services.locks), then read again: a reset
            shared = locks.share(lender.store, conn, row.partner_token)  # may have come first
            row = conn.execute(ORDER_BY_ID, {"id": order_id}).first() if shared else None
        if row is None or row.status not in (Status.REPAYING, Status.OVERDUE):
            raise SandboxError("payment_rejected", "this order has nothing to pay")
        order = OrderRec.load(row)
        amount = bodies.balance(order, lender.product(order.product_id), now).total
        value = issue_code(
            lender, conn, order, now, repay_type=1, method=method, amount=amount, delay_term=None
        ).code
    return pay(lender, value, source="page")
