"""Who may borrow what: the person's history with the partner (by NIK or mobile), the
one-open-loan and cool-down rules, NIK checks, and the amounts and terms a product offers
(docs/protocol.md §4 02-05). Also `Call`, what every handler of services.endpoints gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, select, union
from sqlalchemy.engine import Connection

from ..core import people, pricing, scenarios
from ..core.errors import SandboxError, invalid
from ..core.lifecycle import OPEN, Status
from ..core.pricing import DAY, Product
from ..store.records import PartnerRec
from .engine import Ctx
from .lender import Lender
from .unit import ORDERS, Unit


@dataclass
class Call:
    """One request to a handler: the lender, the transaction's unit of work, the partner and
    its virtual time now."""

    lender: Lender
    unit: Unit
    partner: PartnerRec
    now: float

    @property
    def conn(self) -> Connection:
        return self.unit.conn

    def ctx(self, cause: str) -> Ctx:
        return Ctx(self.unit, self.now, cause)


HISTORY_COLUMNS = (ORDERS.c.order_no, ORDERS.c.status, ORDERS.c.updated_at)
HISTORY_BY_MOBILE = select(*HISTORY_COLUMNS).where(
    ORDERS.c.partner_token == bindparam("token"), ORDERS.c.user_mobile == bindparam("mobile")
)
# By mobile OR by NIK, as a union of two index lookups: an OR inside one WHERE makes SQLite
# scan every order of the partner (a write's cost then grew with the orders).
HISTORY = union(
    HISTORY_BY_MOBILE,
    select(*HISTORY_COLUMNS).where(
        ORDERS.c.partner_token == bindparam("token"), ORDERS.c.user_idcard == bindparam("nik")
    ),
)


def person_history(call: Call, idcard: str | None, mobile: str) -> list[Any]:
    """The person's orders with this partner, by mobile or NIK."""
    params = {"token": call.partner.partner_token, "mobile": mobile, "nik": idcard}
    return list(call.conn.execute(HISTORY if idcard else HISTORY_BY_MOBILE, params))


def check_person(
    call: Call, idcard: str | None, mobile: str, history: Sequence[Any] | None = None
) -> bool:
    """docs/protocol.md §4 (02) consistency rulings. Returns is_reloan; raises 11007 / 11004.
    `history`: the person's orders when the caller read them already."""
    rules = call.lender.settings.data.rules
    if scenarios.precheck_rejects(rules, mobile):
        raise SandboxError("recently_rejected")
    if history is None:
        history = person_history(call, idcard, mobile)
    cooldown = call.lender.settings.lifecycle.reject_cooldown_days * DAY
    if any(o.status == Status.REJECTED and o.updated_at > call.now - cooldown for o in history):
        raise SandboxError("recently_rejected")
    busy = [o for o in history if o.status in OPEN]
    if busy:
        raise SandboxError(
            "unsettled_loan", f"order {busy[0].order_no} is in status {busy[0].status}"
        )
    return scenarios.is_magic_reloan(rules, mobile) or any(
        o.status == Status.SETTLED for o in history
    )


def check_nik(call: Call, nik: str | None, field: str) -> None:
    if nik and call.lender.settings.responses.strict_nik:
        today = date.fromtimestamp(call.now)
        if people.parse_nik(nik, today=today) is None:
            raise invalid(
                field,
                "is not a valid NIK (region code, birth date DDMMYY with +40 for women, serial)",
            )


def check_terms(product: Product, amount: int, term: int, unit: int, limit: int) -> None:
    if unit != product.term_unit:
        raise SandboxError(
            "amount_not_offered",
            f"term_unit {unit}: product {product.product_id} lends in unit {product.term_unit}",
        )
    if unit == 1 and term < 7:
        raise invalid("application_term", "must be >= 7 days")
    if term not in product.terms:
        raise SandboxError(
            "amount_not_offered", f"application_term {term}: offered {list(product.terms)}"
        )
    if not product.amount_min <= amount <= limit:
        raise SandboxError(
            "amount_not_offered",
            f"application_amount {amount}: allowed {product.amount_min}-{limit}",
        )
    if (amount - product.amount_min) % product.amount_step:
        raise SandboxError(
            "amount_not_offered",
            f"application_amount {amount}: must step by "
            f"{product.amount_step} from {product.amount_min}",
        )


def loan_range(product: Product, limit: int) -> list[dict]:
    return [
        {"amount": a, "term": list(product.terms)} for a in pricing.amount_levels(product, limit)
    ]
