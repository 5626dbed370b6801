"""What an order looks like from outside: the `data` of 12-18 and the bodies of callbacks 19-21.

Figures are derived from the stored order and `now` (overdue days and late fees are never
stored), so a read and a callback taken at the same virtual time always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Connection

from ..core import pricing
from ..core.lifecycle import DISBURSED, Status
from ..core.pricing import Product
from ..store import ExtensionRow, RepayCode
from .lender import Keyed, Lender

APPROVED_LIKE = frozenset({Status.APPROVED, Status.PAYOUT_FAILED}) | DISBURSED
CODES: Table = RepayCode.__table__  # type: ignore[assignment]
EXTENSIONS: Table = ExtensionRow.__table__  # type: ignore[assignment]


class Order(Protocol):
    """What these views read of an order: a record (`store.records.OrderRec`) or a row."""

    id: int
    order_no: str
    partner_token: str
    product_id: str
    status: int
    updated_at: float
    approved_amount: int | None
    approved_term: int | None
    interest_amount: int | None
    admin_amount: int | None
    remark: str
    approval_time: float | None
    loan_time: float | None
    due_at: float | None
    interest_due: int
    extensions: int
    settled_at: float | None
    extension_paid: int
    term_unit: int


def rate_text(rate: object) -> str:
    return format(rate, "f").rstrip("0").rstrip(".") if "." in format(rate, "f") else str(rate)


@dataclass(frozen=True)
class Balance:
    """What the borrower owes at a moment: principal + current interest + late fee."""

    principal: int
    interest: int
    overdue_days: int
    overdue: int

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.overdue


def balance(order: Order, product: Product, now: float) -> Balance:
    at = min(now, order.settled_at) if order.settled_at is not None else now
    principal = order.approved_amount or 0
    days = pricing.overdue_days(order.due_at, at, product.grace_days) if order.due_at else 0
    charged = (order.admin_amount or 0) + order.extension_paid
    late = pricing.overdue_amount(product, principal, order.interest_due, charged, days)
    return Balance(principal, order.interest_due, days, late)


def status_body(order: Order) -> dict:
    return {
        "order_no": order.order_no,
        "order_status": order.status,
        "update_time": int(order.updated_at),
    }


def approval(lender: Lender, order: Order) -> dict:
    """13 / callback 20. Ruling: approval_time = approval moment, loan_time = payout moment
    (the spec's labels for the two are swapped; docs/protocol.md)."""
    base = {"order_no": order.order_no, "order_status": order.status}
    if order.approved_amount is None:
        remark = order.remark or (
            "Menunggu persetujuan" if order.status in (80, 90) else "Pesanan dibatalkan"
        )
        return {**base, "order_remark": remark}
    product = lender.product(order.product_id)
    interest, admin = order.interest_amount or 0, order.admin_amount or 0
    principal = order.approved_amount
    return {
        **base,
        "approval_time": lender.fmt(order.approval_time),
        "loan_time": lender.fmt(order.loan_time),
        "approval_amount": principal,
        "approval_term": order.approved_term,
        "term_unit": order.term_unit,
        "interest_amount": interest,
        "interest_rate": rate_text(product.interest_rate),
        "actual_amount": principal - admin,
        "admin_amount": admin,
        "repay_amount": principal + interest,
        "order_remark": f"Pokok {principal}, bunga {interest}, biaya admin {admin}, "
        f"total pengembalian {principal + interest}",
    }


LAST_EXTENSION_CODE = (
    select(CODES.c.state, CODES.c.expires_at)
    .where(CODES.c.order_id == bindparam("order_id"), CODES.c.repay_type == 2)
    .order_by(CODES.c.id.desc())
    .limit(1)
)


def _delay_status(code: tuple[str, float] | None, now: float) -> int | None:
    """14's delay_status: None never tried, 0 pending code, 1 last paid, 2 last expired;
    from the order's latest extension code (state, expires_at)."""
    if code is None:
        return None
    state, expires_at = code
    if state == "paid":
        return 1
    return 0 if state == "open" and expires_at > now else 2


def last_extension_code(conn: Connection, order: Order) -> tuple[str, float] | None:
    row = conn.execute(LAST_EXTENSION_CODE, {"order_id": order.id}).first()
    return (row.state, row.expires_at) if row is not None else None


def can_extend(order: Order, product: Product) -> bool:
    ext = product.extension
    return (
        ext.enabled
        and order.status in (Status.REPAYING, Status.OVERDUE)
        and order.extensions < ext.limit
    )


_READ = ("read",)  # repay_plan's default: read the extension code itself


def repay_plan(
    lender: Lender,
    conn: Connection,
    partner: Keyed,
    order: Order,
    now: float,
    extension_code: Any = _READ,
) -> dict:
    """14 / callback 21 (`partner` signs the repayment link; `extension_code`, when the caller
    has it, is the order's latest extension code as `last_extension_code` reads it)."""
    code = last_extension_code(conn, order) if extension_code is _READ else extension_code
    product = lender.product(order.product_id)
    b = balance(order, product, now)
    settled = order.status == Status.SETTLED
    return {
        "order_no": order.order_no,
        "order_status": order.status,
        "loan_time": lender.fmt(order.loan_time),
        "loan_amount": b.principal,
        "loan_term": order.approved_term,
        "term_unit": order.term_unit,
        "interest_amount": b.interest,
        "interest_rate": rate_text(product.interest_rate),
        "expiry_time": lender.fmt(order.due_at),
        "expiry_amount": b.overdue,
        "is_overdue": 1 if b.overdue_days > 0 or order.status == Status.OVERDUE else 0,
        "overdue_days": b.overdue_days,
        "admin_amount": order.admin_amount or 0,
        # principal + interest + late fee, frozen at settlement (balance() stops at settled_at),
        # so the figures add up; extension fees paid on the way are in 16, not here.
        "repay_amount": b.total,
        "url_repay": 1 if product.url_repay else 0,
        "url_info": lender.repay_url(partner, order.order_no)
        if product.url_repay and not settled
        else "",
        "delay_repay": 1 if can_extend(order, product) else 0,
        "delay_status": _delay_status(code, now),
    }


def extension_quote(lender: Lender, order: Order, delay_term: int, now: float) -> dict:
    """17: what an extension of `delay_term` (days or months) costs now and where it moves the
    due date."""
    product = lender.product(order.product_id)
    b = balance(order, product, now)
    cost = pricing.extension_cost(product, b.principal, delay_term, b.interest, b.overdue)
    new_due = pricing.extension_due(product, order.due_at or now, now, delay_term)
    return {
        "order_no": order.order_no,
        "loan_amount": b.principal,
        "interest_amount": b.interest,
        "expiry_amount": b.overdue,
        "admin_amount": cost.admin,
        # Paying delay_amount clears this period's interest and late fee plus the fee; the
        # principal and the new period's interest stay due at the new expiry date.
        "delay_amount": cost.total,
        # Not in the spec: the smallest extension payment, and how much of admin_amount
        # tops the payment up to it (docs/protocol.md §4 17).
        "min_payment": product.extension.min_payment,
        "min_payment_topup": cost.topup,
        "repay_amount": b.total,
        "expiry_time": lender.fmt(new_due),
        "start_time": lender.fmt(order.due_at),
        "end_time": lender.fmt(new_due),
        "delay_times": order.extensions,
        "limit_times": product.extension.limit,
        "delay_term": list(product.extension.terms),
        "default_value": product.extension.default_term,
        "term_unit": product.extension.term_unit,
    }


EXTENSIONS_OF = (
    select(EXTENSIONS)
    .where(EXTENSIONS.c.order_id == bindparam("order_id"))
    .order_by(EXTENSIONS.c.id)
)


def extensions(conn: Connection, order_id: int) -> list[Any]:
    return list(conn.execute(EXTENSIONS_OF, {"order_id": order_id}))


def delay_list(lender: Lender, conn: Connection, order: Order) -> dict:
    rows = extensions(conn, order.id)
    return {
        "order_no": order.order_no,
        "delay_times": len(rows),
        "delay_list": [
            {
                "loan_amount": r.loan_amount,
                "delay_amount": r.delay_amount,
                "delay_term": r.delay_term,
                "term_unit": r.term_unit,
                "delay_time": lender.fmt(r.delay_time),
                "expiry_time": lender.fmt(r.expiry_time),
            }
            for r in rows
        ],
    }


def delay_detail(lender: Lender, conn: Connection, order: Order, now: float) -> dict:
    product = lender.product(order.product_id)
    rows = extensions(conn, order.id)
    last = rows[-1] if rows else None
    return {
        "order_no": order.order_no,
        "repay_amount": balance(order, product, now).total,
        "delay_amount": last.delay_amount if last else 0,
        "delay_term": last.delay_term if last else 0,
        "term_unit": last.term_unit if last else product.extension.term_unit,
        "expiry_time": lender.fmt(order.due_at),
        "delay_times": len(rows),
        "limit_times": product.extension.limit,
    }
