"""Payment codes and payments: issuing a code (15 get-repay-detail and the repayment page) and
the borrower paying one (POST /sandbox/payments, the page's one-click payment).

A code is a closed-amount virtual account or store code with an expiry (a due event voids
it); an order keeps at most `max_repay_codes` open codes. Paying a repayment code settles the
order (200); paying an extension code extends it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import banks, scenarios
from ..core.errors import ControlError, SandboxError
from ..core.lifecycle import Status
from ..core.settings import RepayMethodFixture
from ..store import DueEvent, Order, RepayCode
from . import bodies
from .engine import Ctx, apply, process_due
from .lender import Lender


def issue_code(
    lender: Lender,
    s: Session,
    order: Order,
    now: float,
    *,
    repay_type: int,
    method: RepayMethodFixture,
    amount: int,
    delay_term: int | None,
) -> RepayCode:
    """A payment code for `amount`; asking again for the same payment returns the same code."""
    same = s.scalars(
        select(RepayCode).where(
            RepayCode.order_id == order.id,
            RepayCode.state == "open",
            RepayCode.expires_at > now,
            RepayCode.repay_type == repay_type,
            RepayCode.method_code == method.method_code,
            RepayCode.amount == amount,
        )
    ).first()
    if same is not None and same.delay_term == delay_term:
        return same  # like a real VA: the same bill keeps its number
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
    value = _new_code_value(s, rng, method, order.user_mobile)
    ttl = lender.settings.lifecycle.repay_code_ttl
    code = RepayCode(
        code=value,
        order_id=order.id,
        partner_token=order.partner_token,
        repay_type=repay_type,
        delay_term=delay_term,
        amount=amount,
        repay_method=method.repay_method,
        bank_code=method.bank_code,
        method_code=method.method_code,
        merchant_name=method.bank_code if store else "",
        created_at=now,
        expires_at=now + ttl,
        state="open",
    )
    _void_beyond_limit(s, order, now, lender.settings.lifecycle.max_repay_codes - 1)
    s.add(code)
    s.add(
        DueEvent(
            partner_token=order.partner_token,
            order_id=order.id,
            kind="code_expiry",
            due_at=now + ttl,
            state="pending",
            data={"code": value},
        )
    )
    return code


def _void_beyond_limit(s: Session, order: Order, now: float, keep: int) -> None:
    """config.toml max_repay_codes: an order keeps that many open codes; older ones are voided
    (a client asking for a new code on every screen would otherwise pile them up)."""
    open_codes = s.scalars(
        select(RepayCode)
        .where(
            RepayCode.order_id == order.id, RepayCode.state == "open", RepayCode.expires_at > now
        )
        .order_by(RepayCode.id.desc())
    )
    for old in list(open_codes)[max(keep, 0) :]:
        old.state = "void"


def _new_code_value(s: Session, rng: Any, method: RepayMethodFixture, mobile: str) -> str:
    """A payment code no other code has: a VA is prefix + random digits + the mobile's last 8
    digits (a customer part alone would give every code of a customer the same number)."""
    for _ in range(100):
        if method.repay_method == 2:
            value = banks.make_retail_code(rng, method.bank_code)
        else:
            value = banks.make_va_number(rng, method.bank_code, mobile[-8:])
        if s.scalar(select(RepayCode.id).where(RepayCode.code == value)) is None:
            return value
    raise SandboxError("internal", "could not draw an unused payment code")


# ---- paying ----


def pay(lender: Lender, repay_code: str, amount: int | None = None, source: str = "api") -> dict:
    """The borrower pays a code from 15: full repayment -> 200; extension fee -> extended."""
    if not isinstance(repay_code, str):
        raise ControlError("invalid_field", "repay_code must be a string")
    if amount is not None and (
        isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount < 2**53
    ):
        raise ControlError("invalid_field", "amount must be a whole number >= 1")
    with lender.store.transaction() as s:
        code = s.scalars(select(RepayCode).where(RepayCode.code == repay_code)).first()
        if code is None:
            raise ControlError("payment_rejected", f"unknown repay_code {repay_code!r}", 404)
        token = code.partner_token
        now = lender.now(lender.partner_or_404(s, token))
    process_due(lender, token, now)
    with lender.store.transaction() as s:
        code = s.scalars(
            lender.store.lock_row(select(RepayCode).where(RepayCode.code == repay_code))
        ).one()
        order = s.get(Order, code.order_id)
        assert order is not None
        _check_payable(code, order, amount, now)
        ctx = Ctx(lender, s, now, f"payment of {code.amount} with code {code.code} ({source})")
        # Paid before the transition: the callback 21 it enqueues must show delay_status 1.
        code.state, code.paid_at = "paid", now
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
        result = {
            "repay_code": code.code,
            "amount": code.amount,
            "repay_type": code.repay_type,
            "order_no": order.order_no,
            "partner_token": token,
            "order_status": order.status,
            "paid_at": lender.fmt(now),
        }
    lender.on_outbox()
    return result


def _check_payable(code: RepayCode, order: Order, amount: int | None, now: float) -> None:
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
    with lender.store.transaction() as s:
        order = s.get(Order, order_id)
        if order is None or order.status not in (Status.REPAYING, Status.OVERDUE):
            raise SandboxError("payment_rejected", "this order has nothing to pay")
        amount = bodies.balance(order, lender.product(order.product_id), now).total
        value = issue_code(
            lender, s, order, now, repay_type=1, method=method, amount=amount, delay_term=None
        ).code
    return pay(lender, value, source="page")
