"""What the borrower-facing pages show: the loan contract (10) and URL repayment (14 url_info).

Links are signed with the partner's key (`Lender.sign`), so a page shows an order's personal
data only to someone holding a link the lender handed out. These functions check the link
and gather the page's data; `web.pages` renders it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import inputs, pricing
from ..core.errors import SandboxError
from ..core.lifecycle import Status
from ..store import BankCard, Order, Partner
from . import bodies, payments
from .lender import Lender


class BadLink(SandboxError):
    """The link's signature does not match, or its partner or order does not exist."""

    def __init__(self) -> None:
        super().__init__("order_not_found", "the link is not valid", http_status=404)


class NothingToPay(SandboxError):
    """The order has no bill: not disbursed yet, or already settled."""

    def __init__(self, order_no: str, status: int) -> None:
        super().__init__(
            "payment_rejected",
            f"order {order_no} is in status {status}: nothing to pay",
            http_status=409,
        )


@dataclass(frozen=True)
class Link:
    token: str
    order_no: str
    sig: str


def _signed_order(lender: Lender, s: Session, link: Link, purpose: str) -> tuple[Partner, Order]:
    if not (inputs.is_text(link.token) and inputs.is_text(link.order_no)):
        raise BadLink()  # no partner or order has such a name (and PostgreSQL cannot look)
    partner = s.get(Partner, link.token)
    if partner is None or not isinstance(link.sig, str) or not link.sig.isascii():
        raise BadLink()
    if not hmac.compare_digest(lender.sign(partner, purpose, link.order_no), link.sig):
        raise BadLink()
    order = s.scalars(
        select(Order).where(Order.partner_token == link.token, Order.order_no == link.order_no)
    ).first()
    if order is None:
        raise BadLink()
    return partner, order


def contract(lender: Lender, link: Link) -> dict[str, Any]:
    """The contract page's data: the order, its product, the quote and the bound card."""
    with lender.store.transaction() as s:
        partner, order = _signed_order(lender, s, link, "contract")
        product = lender.product(order.product_id)
        now = lender.now(partner)
        amount = order.approved_amount or order.application_amount
        term = order.approved_term or order.application_term
        card = s.scalars(
            select(BankCard).where(BankCard.order_id == order.id, BankCard.active.is_(True))
        ).first()
        due = order.due_at or pricing.due_at(product, now, term)
        return {
            "order": order,
            "product": product,
            "quote": pricing.quote(product, amount, term),
            "card": card,
            "partner": partner,
            "unit": "hari" if product.term_unit == 1 else "bulan",
            "rate": bodies.rate_text(product.interest_rate * 100),
            "today": lender.fmt(now),
            "due": lender.fmt(due),
            "approved": order.approved_amount is not None,
            "overdue_rate": bodies.rate_text(product.overdue_rate * 100),
        }


def repayment(lender: Lender, link: Link) -> dict[str, Any]:
    """The repayment page's data: the order, its plan now, whether it can be paid."""
    with lender.store.transaction() as s:
        partner, order = _signed_order(lender, s, link, "repay")
        now = lender.now(partner)
        conn = s.connection()
        plan = bodies.repay_plan(lender, conn, partner, order, now) if order.loan_time else None
        return {
            "order": order,
            "plan": plan,
            "payable": order.status in (Status.REPAYING, Status.OVERDUE),
        }


def pay_now(lender: Lender, link: Link) -> dict[str, Any]:
    """One click pays everything owed now (`payments.pay_in_full`)."""
    with lender.store.transaction() as s:
        partner, order = _signed_order(lender, s, link, "repay")
        if order.status not in (Status.REPAYING, Status.OVERDUE):
            raise NothingToPay(order.order_no, order.status)
        order_id, now = order.id, lender.now(partner)
    return payments.pay_in_full(lender, order_id, now)
