"""Money: quotes, approval figures, repayment plans, overdue and extension figures (pure).

The one rounding rule (docs/protocol.md "Money"): every figure is computed exactly with
Decimal and rounded half-up to whole rupiah once; totals are sums of rounded figures, so
`actual = approved - admin` and `repay = principal + interest + overdue` always add up.
Overdue is derived from `now` at read time, never accrued by a job (docs/architecture.md "Time").
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from .clock import WIB

DAY = 86400


def rupiah(x: Decimal | int | float) -> int:
    return int(Decimal(str(x)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Extension:
    enabled: bool = True
    terms: tuple[int, ...] = (7, 14)  # in `term_unit`
    default_term: int = 7
    fee_rate: Decimal = Decimal("0.0005")  # of principal, per extension day (or month)
    limit: int = 3
    # Smallest extension payment: payment methods take nothing under 10,000 IDR, so a tiny
    # payment (interest + late fee + fee) is topped up to this, the top-up shown as such.
    min_payment: int = 0
    term_unit: int = 1  # of the extension terms: 1 days, 2 months (16-18's term_unit)


@dataclass(frozen=True)
class Product:
    product_id: str
    product_name: str
    term_unit: int  # 1 days, 2 months
    terms: tuple[int, ...]
    amount_min: int
    amount_max: int  # for a reloan customer
    amount_max_new: int  # for a first-time customer
    amount_step: int
    interest_rate: Decimal  # per unit (day or month)
    admin_rate: Decimal  # per unit, deducted from the payout
    overdue_rate: Decimal  # per overdue day, of principal + interest
    grace_days: int = 0
    default_amount: int | None = None
    default_term: int | None = None
    extension: Extension = Extension()
    url_repay: bool = True
    product_icon: str = ""
    product_desc: str = ""
    gp_link: str = ""

    def unit_days(self) -> int:
        return 1 if self.term_unit == 1 else 30

    def max_amount(self, reloan: bool) -> int:
        return self.amount_max if reloan else self.amount_max_new


# ---- dates (WIB calendar days: a due date is a day, due at its last second) ----


@lru_cache(maxsize=4096)  # a clock advance asks for the same few due days thousands of times
def wib_date(ts: float) -> date:
    return datetime.fromtimestamp(ts, WIB).date()


def end_of_day(d: date) -> float:
    return datetime.combine(d, time(23, 59, 59), WIB).timestamp()


def add_months(d: date, months: int) -> date:
    m = d.month - 1 + months
    y, m = d.year + m // 12, m % 12 + 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def due_at(product: Product, start: float, term: int) -> float:
    """Due moment of a loan disbursed at `start`: the end of the due day (WIB)."""
    d = wib_date(start)
    d = d + timedelta(days=term) if product.term_unit == 1 else add_months(d, term)
    return end_of_day(d)


def overdue_days(due: float, now: float, grace_days: int = 0) -> int:
    """Whole WIB days past the due day, once the grace days are over (0 when not overdue)."""
    if now <= due:
        return 0
    days = (wib_date(now) - wib_date(due)).days
    return days if days > grace_days else 0


# ---- figures ----


@dataclass(frozen=True)
class Quote:
    principal: int
    term: int
    term_unit: int
    interest: int
    admin: int

    @property
    def actual(self) -> int:
        return self.principal - self.admin

    @property
    def repay(self) -> int:
        return self.principal + self.interest


def quote(product: Product, amount: int, term: int) -> Quote:
    p = Decimal(amount)
    return Quote(
        amount,
        term,
        product.term_unit,
        rupiah(p * product.interest_rate * term),
        rupiah(p * product.admin_rate * term),
    )


def overdue_amount(product: Product, principal: int, interest: int, charged: int, days: int) -> int:
    """Late fee for `days`, capped so interest + fees + late fees <= 100 % of principal (OJK).

    `charged` is what the borrower already bore besides the current interest: the admin fee
    and every extension payment (their interest, fees and late fees all count to the cap).
    """
    raw = rupiah(Decimal(principal + interest) * product.overdue_rate * days)
    return max(0, min(raw, principal - interest - charged))


@dataclass(frozen=True)
class ExtensionCost:
    """What paying for an extension now costs (17): the parts add up to `total`."""

    interest: int  # the current period's interest, cleared by the extension
    overdue: int  # the late fee now, cleared too
    fee: int  # principal x fee_rate x delay_term
    topup: int  # added so the payment reaches the product's min_payment (0 when it does)

    @property
    def admin(self) -> int:
        """17's admin_amount: the fee, with the top-up (so the spec's parts add up)."""
        return self.fee + self.topup

    @property
    def total(self) -> int:
        """17's delay_amount, and 15's repay_amount for repay_type 2."""
        return self.interest + self.overdue + self.admin


def extension_cost(
    product: Product, principal: int, delay_term: int, interest: int, overdue: int
) -> ExtensionCost:
    fee = rupiah(Decimal(principal) * product.extension.fee_rate * delay_term)
    topup = max(0, product.extension.min_payment - (interest + overdue + fee))
    return ExtensionCost(interest, overdue, fee, topup)


def extension_due(product: Product, current_due: float, now: float, delay_term: int) -> float:
    """New due moment: `delay_term` days (or calendar months) after the old due day, or after
    today when overdue."""
    base = wib_date(current_due) if now <= current_due else wib_date(now)
    if product.extension.term_unit == 1:
        return end_of_day(base + timedelta(days=delay_term))
    return end_of_day(add_months(base, delay_term))


def _rate_per(rate: Decimal, unit: int, wanted: int) -> Decimal:
    """A rate per day or per month in another unit (a month counts 30 days)."""
    if unit == wanted:
        return rate
    return rate * 30 if wanted == 2 else rate / 30


def extension_interest(product: Product, principal: int, delay_term: int) -> int:
    """Interest of the extended period (in the extension's unit), owed with the principal at
    the new due date."""
    rate = _rate_per(product.interest_rate, product.term_unit, product.extension.term_unit)
    return rupiah(Decimal(principal) * rate * delay_term)


def daily_cost_rate(product: Product) -> Decimal:
    """Interest + admin fee per calendar day of principal ("manfaat ekonomi", SEOJK 19/2023)."""
    return (product.interest_rate + product.admin_rate) / product.unit_days()


def compliance_warnings(product: Product, daily_cap: Decimal = Decimal("0.001")) -> list[str]:
    """Products breaking the OJK caps are allowed (a sandbox may model a bad lender) but warned."""
    warnings = []
    rate = daily_cost_rate(product)
    if rate > daily_cap:
        warnings.append(
            f"product {product.product_id}: interest + admin fee = {rate * 100:.3f}%/day "
            f"exceeds the OJK cap of {daily_cap * 100:.3f}%/day"
        )
    ext = product.extension
    if ext.enabled:
        ext_rate = product.interest_rate / product.unit_days() + _rate_per(
            ext.fee_rate, ext.term_unit, 1
        )
        if ext_rate > daily_cap:
            warnings.append(
                f"product {product.product_id}: an extension's interest + fee = "
                f"{ext_rate * 100:.3f}%/day exceeds the OJK cap of {daily_cap * 100:.3f}%/day"
            )
    if product.overdue_rate > daily_cap:
        warnings.append(
            f"product {product.product_id}: late fee {product.overdue_rate * 100:.3f}%/day "
            f"exceeds the OJK cap of {daily_cap * 100:.3f}%/day"
        )
    return warnings


def amount_levels(product: Product, limit: int, count: int = 4) -> list[int]:
    """A few round amounts from the minimum to `limit` for 02/03's loan_range."""
    limit = max(product.amount_min, limit - (limit - product.amount_min) % product.amount_step)
    span = limit - product.amount_min
    raw = {product.amount_min + span * i // (count - 1) for i in range(count)} if span else {limit}
    step = product.amount_step
    return sorted({product.amount_min + (a - product.amount_min) // step * step for a in raw})
