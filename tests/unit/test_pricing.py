"""sandbox.pricing: the rounding rule, dates on the WIB calendar, quotes, late fees, extensions,
and the OJK compliance warnings (docs/protocol.md "Times and money")."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from sandbox.core import pricing
from sandbox.core.pricing import Extension, Product
from sandbox.services.config import load_settings

JKT = timezone(timedelta(hours=7))
D = Decimal

DAYS = Product(
    product_id="p1",
    product_name="Harian",
    term_unit=1,
    terms=(7, 14),
    amount_min=500_000,
    amount_max=4_000_000,
    amount_max_new=2_000_000,
    amount_step=100_000,
    interest_rate=D("0.0006"),
    admin_rate=D("0.0003"),
    overdue_rate=D("0.001"),
    extension=Extension(True, (7, 14), 7, D("0.0003"), 3),
)
MONTHS = replace(
    DAYS,
    product_id="p2",
    term_unit=2,
    terms=(3, 6),
    amount_min=1_000_000,
    amount_step=500_000,
    interest_rate=D("0.018"),
    admin_rate=D("0.009"),
    grace_days=1,
)


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> float:
    return datetime(y, m, d, hh, mm, ss, tzinfo=JKT).timestamp()


# ---- the rounding rule ----


@pytest.mark.parametrize(
    "x,expected",
    [
        (D("0.5"), 1),
        (D("1.5"), 2),
        (D("2.5"), 3),
        (D("1.4999"), 1),
        (D("8400.0"), 8400),
        (D("1008.4"), 1008),
        (D("4033.6"), 4034),
        (D("-0.5"), -1),
        (7, 7),
        (2.675, 3),
        ("12.5", 13),
    ],
)
def test_rupiah_rounds_half_up(x: object, expected: int) -> None:
    assert pricing.rupiah(x) == expected  # type: ignore[arg-type]


def test_quote_rounds_each_figure_once() -> None:
    q = pricing.quote(DAYS, 1_000_000, 14)
    assert (q.principal, q.term, q.term_unit, q.interest, q.admin) == (1_000_000, 14, 1, 8400, 4200)
    assert (q.actual, q.repay) == (995_800, 1_008_400)
    # 1,234,500 x 0.0006 x 7 = 5,184.9 -> 5,185 ; x 0.0003 x 7 = 2,592.45 -> 2,592
    q = pricing.quote(DAYS, 1_234_500, 7)
    assert (q.interest, q.admin, q.actual, q.repay) == (5185, 2592, 1_231_908, 1_239_685)
    # 0.0005 x 3 x 1,000,001 = 1,500.0015 ; amounts always add up
    odd = replace(DAYS, interest_rate=D("0.0005"), admin_rate=D("0.00025"))
    q = pricing.quote(odd, 1_000_001, 3)
    assert (q.interest, q.admin) == (1500, 750)
    assert q.actual + q.admin == q.principal and q.repay - q.interest == q.principal


def test_monthly_quote() -> None:
    q = pricing.quote(MONTHS, 3_000_000, 3)
    assert (q.interest, q.admin, q.actual, q.repay) == (162_000, 81_000, 2_919_000, 3_162_000)


# ---- dates ----


@pytest.mark.parametrize(
    "start,months,expected",
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # leap year
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 1, 30), 1, date(2026, 2, 28)),
        (date(2026, 1, 31), 2, date(2026, 3, 31)),
        (date(2026, 11, 15), 2, date(2027, 1, 15)),  # over the new year
        (date(2026, 12, 31), 1, date(2027, 1, 31)),
        (date(2026, 5, 31), 12, date(2027, 5, 31)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2026, 3, 15), 0, date(2026, 3, 15)),
    ],
)
def test_add_months(start: date, months: int, expected: date) -> None:
    assert pricing.add_months(start, months) == expected


def test_due_at_is_the_end_of_the_wib_due_day() -> None:
    assert pricing.due_at(DAYS, at(2026, 3, 2, 10, 3), 14) == at(2026, 3, 16, 23, 59, 59)
    # 01:00 WIB on 3 March is still 2 March in UTC: the WIB calendar day counts
    start = datetime(2026, 3, 2, 18, 0, tzinfo=UTC).timestamp()
    assert pricing.due_at(DAYS, start, 7) == at(2026, 3, 10, 23, 59, 59)
    assert pricing.due_at(DAYS, at(2026, 3, 2, 23, 59, 59), 7) == at(2026, 3, 9, 23, 59, 59)
    assert pricing.due_at(MONTHS, at(2026, 1, 31, 9), 1) == at(2026, 2, 28, 23, 59, 59)
    assert pricing.due_at(MONTHS, at(2026, 3, 2, 9), 3) == at(2026, 6, 2, 23, 59, 59)


def test_wib_date_and_end_of_day() -> None:
    assert pricing.wib_date(at(2026, 3, 2, 0, 0, 0)) == date(2026, 3, 2)
    assert pricing.wib_date(at(2026, 3, 1, 23, 59, 59)) == date(2026, 3, 1)
    assert pricing.end_of_day(date(2026, 3, 2)) == at(2026, 3, 2, 23, 59, 59)


def test_overdue_days() -> None:
    due = at(2026, 3, 16, 23, 59, 59)
    assert pricing.overdue_days(due, due) == 0
    assert pricing.overdue_days(due, at(2026, 3, 10)) == 0
    assert pricing.overdue_days(due, due + 1) == 1  # 17 March 00:00:00
    assert pricing.overdue_days(due, at(2026, 3, 17, 23, 59, 59)) == 1
    assert pricing.overdue_days(due, at(2026, 3, 18)) == 2
    assert pricing.overdue_days(due, at(2026, 4, 16, 12)) == 31


def test_overdue_days_with_grace() -> None:
    due = at(2026, 3, 16, 23, 59, 59)
    # grace 1: the first day after the due day is free; from the second, every day counts
    assert pricing.overdue_days(due, at(2026, 3, 17, 12), grace_days=1) == 0
    assert pricing.overdue_days(due, at(2026, 3, 18, 0, 0, 1), grace_days=1) == 2
    assert pricing.overdue_days(due, at(2026, 3, 18, 12), grace_days=2) == 0
    assert pricing.overdue_days(due, at(2026, 3, 19, 12), grace_days=2) == 3
    assert pricing.overdue_days(due, at(2026, 3, 20), grace_days=2) == 4


# ---- late fees ----


def test_overdue_amount() -> None:
    # (1,000,000 + 8,400) x 0.1 % x 1 = 1,008.4 -> 1,008 ; x 4 = 4,033.6 -> 4,034
    assert pricing.overdue_amount(DAYS, 1_000_000, 8400, 4200, 1) == 1008
    assert pricing.overdue_amount(DAYS, 1_000_000, 8400, 4200, 4) == 4034
    assert pricing.overdue_amount(DAYS, 1_000_000, 8400, 4200, 0) == 0


def test_overdue_amount_is_capped_at_the_principal() -> None:
    # interest + admin + late fee <= 100 % of the principal
    cap = 1_000_000 - 8400 - 4200
    assert pricing.overdue_amount(DAYS, 1_000_000, 8400, 4200, 980) == cap
    assert pricing.overdue_amount(DAYS, 1_000_000, 8400, 4200, 5000) == cap
    assert pricing.overdue_amount(DAYS, 1_000_000, 8400, 4200, 978) < cap
    # never negative, even when interest and fees already exceed the principal
    assert pricing.overdue_amount(DAYS, 100_000, 90_000, 20_000, 10) == 0


def test_extension_payments_count_towards_the_cap() -> None:
    # admin 4,200 + two extensions paid (10,500 + 10,000) + current interest 4,200
    charged = 4200 + 10_500 + 10_000
    cap = 1_000_000 - 4200 - charged
    assert pricing.overdue_amount(DAYS, 1_000_000, 4200, charged, 5000) == cap


# ---- extensions ----


def test_a_payment_under_the_minimum_is_topped_up_and_the_parts_add_up() -> None:
    product = replace(DAYS, extension=replace(DAYS.extension, min_payment=10_000))
    # A 7-day loan of 1,000,000 (4,200 interest owed): 7 and 14 days both cost the minimum,
    # the fee stays the fee (2,100 / 4,200) and the top-up shows as such (issue: 17's figures).
    seven = pricing.extension_cost(product, 1_000_000, 7, interest=4200, overdue=0)
    fourteen = pricing.extension_cost(product, 1_000_000, 14, interest=4200, overdue=0)
    assert (seven.fee, seven.topup, seven.admin, seven.total) == (2100, 3700, 5800, 10_000)
    assert (fourteen.fee, fourteen.topup, fourteen.admin, fourteen.total) == (
        4200,
        1600,
        5800,
        10_000,
    )
    for c in (seven, fourteen):
        assert c.interest + c.overdue + c.admin == c.total  # 17's spec fields add up
    # a large enough payment is not topped up; a late fee counts towards the minimum
    big = pricing.extension_cost(product, 2_000_000, 14, interest=8400, overdue=0)
    assert (big.fee, big.topup, big.total) == (8400, 0, 16_800)
    late = pricing.extension_cost(product, 1_000_000, 7, interest=4200, overdue=3000)
    assert (late.topup, late.total) == (700, 10_000)
    none = pricing.extension_cost(DAYS, 1_000_000, 7, interest=4200, overdue=0)
    assert (none.topup, none.total) == (0, 6300)  # no minimum


def test_extension_fee_and_interest() -> None:
    assert pricing.extension_cost(DAYS, 1_000_000, 7, 0, 0).fee == 2100
    assert pricing.extension_cost(DAYS, 2_000_000, 14, 0, 0).fee == 8400
    assert pricing.extension_interest(DAYS, 1_000_000, 7) == 4200
    # a monthly product's interest per day is the monthly rate / 30
    assert pricing.extension_interest(MONTHS, 3_000_000, 14) == 25_200


MONTHLY_EXT = replace(
    MONTHS, extension=Extension(True, (1, 2), 1, D("0.009"), 2, 10_000, term_unit=2)
)


def test_month_extensions_charge_and_move_by_months() -> None:
    assert pricing.extension_cost(MONTHLY_EXT, 3_000_000, 2, 0, 0).fee == 54_000
    assert pricing.extension_interest(MONTHLY_EXT, 3_000_000, 1) == 54_000  # 1.8 %/month
    # a day product extended by months: its daily rate x 30
    day_by_month = replace(DAYS, extension=replace(DAYS.extension, term_unit=2))
    assert pricing.extension_interest(day_by_month, 1_000_000, 1) == 18_000
    due = at(2026, 1, 31, 23, 59, 59)
    # calendar months from the due day; the month's last day when it is shorter
    assert pricing.extension_due(MONTHLY_EXT, due, at(2026, 1, 20), 1) == at(
        2026, 2, 28, 23, 59, 59
    )
    assert pricing.extension_due(MONTHLY_EXT, due, due, 2) == at(2026, 3, 31, 23, 59, 59)
    # overdue: from today
    assert pricing.extension_due(MONTHLY_EXT, due, at(2026, 2, 10, 9), 1) == at(
        2026, 3, 10, 23, 59, 59
    )


def test_extension_due() -> None:
    due = at(2026, 3, 16, 23, 59, 59)
    # before (or on) the due day: from the old due day
    assert pricing.extension_due(DAYS, due, at(2026, 3, 5), 7) == at(2026, 3, 23, 23, 59, 59)
    assert pricing.extension_due(DAYS, due, due, 14) == at(2026, 3, 30, 23, 59, 59)
    # overdue: from today
    assert pricing.extension_due(DAYS, due, at(2026, 3, 25, 9), 14) == at(2026, 4, 8, 23, 59, 59)
    assert pricing.extension_due(DAYS, due, due + 1, 7) == at(2026, 3, 24, 23, 59, 59)


# ---- compliance ----


def test_daily_cost_rate() -> None:
    assert pricing.daily_cost_rate(DAYS) == D("0.0009")
    assert pricing.daily_cost_rate(MONTHS) == D("0.0009")


def test_default_products_are_compliant() -> None:
    products = load_settings(env={}).products()
    assert set(products) == {"1001", "1002", "1003"}
    for p in products.values():
        assert pricing.compliance_warnings(p) == [], p.product_id


def test_non_compliant_product_is_warned() -> None:
    greedy = replace(
        DAYS,
        product_id="greedy",
        interest_rate=D("0.008"),
        admin_rate=D("0.002"),
        overdue_rate=D("0.005"),
    )
    warnings = pricing.compliance_warnings(greedy)
    assert len(warnings) == 3
    assert (
        "product greedy: interest + admin fee = 1.000%/day exceeds the OJK cap of 0.100%/day"
        in warnings[0]
    )
    # 0.8 %/day interest + 0.03 %/day extension fee
    assert "an extension's interest + fee = 0.830%/day" in warnings[1]
    assert "late fee 0.500%/day" in warnings[2]
    # a month extension's fee counts per day: 0.06 %/day interest + 3 %/month / 30 = 0.16 %/day
    pricey = replace(MONTHLY_EXT, extension=replace(MONTHLY_EXT.extension, fee_rate=D("0.03")))
    assert pricing.compliance_warnings(pricey) == [
        "product p2: an extension's interest + fee = 0.160%/day exceeds the OJK cap of 0.100%/day"
    ]
    # the 2024 cap (0.3 %/day) allows what 2026's does not
    middling = replace(DAYS, interest_rate=D("0.002"), admin_rate=D("0.0005"))
    assert pricing.compliance_warnings(middling, daily_cap=D("0.003")) == []
    assert [w.split(" = ")[0] for w in pricing.compliance_warnings(middling)] == [
        "product p1: interest + admin fee",
        "product p1: an extension's interest + fee",  # its periods cost the interest too
    ]


def test_amount_levels() -> None:
    assert pricing.amount_levels(DAYS, 2_000_000) == [500_000, 1_000_000, 1_500_000, 2_000_000]
    assert pricing.amount_levels(DAYS, 500_000) == [500_000]
    levels = pricing.amount_levels(DAYS, 1_050_000)  # the limit is cut to the step
    assert levels[0] == 500_000 and levels[-1] == 1_000_000
    assert all((a - 500_000) % 100_000 == 0 for a in levels)
    assert levels == sorted(set(levels))
