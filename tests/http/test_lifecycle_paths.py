"""Orders walked through their lives ONLY through the API, the clock and /sandbox/payments.

At each step every figure of 13, 14, 16, 17 and 18 is compared with an expectation computed
here, independently of sandbox.pricing: from the product's rates in fixtures/products.toml,
with Decimal and ROUND_HALF_UP, and dates on the WIB calendar (docs/protocol.md "Money").
"""

from __future__ import annotations

import calendar
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from conftest import (
    ROOT,
    SUFFIX,
    T0,
    Loan,
    Sandbox,
    basic_payload,
    bind_payload,
    confirm_payload,
    make_sandbox,
    person,
    repay_payload,
    settings_for,
    supplement_payload,
)

JKT = timezone(timedelta(hours=7))  # WIB, written out again: the test must not borrow it
PRODUCTS = {
    str(p["product_id"]): p
    for p in tomllib.loads((ROOT / "fixtures" / "products.toml").read_text("utf-8"))["products"]
}
DAY = 86400


def rp(x: Decimal) -> int:
    """The one rounding rule: half up to whole rupiah."""
    return int(x.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fmt(ts: float) -> str:
    return datetime.fromtimestamp(ts, JKT).strftime("%Y-%m-%d %H:%M:%S")


def day_of(ts: float) -> date:
    return datetime.fromtimestamp(ts, JKT).date()


def end_of(d: date) -> float:
    return datetime.combine(d, time(23, 59, 59), JKT).timestamp()


def wib(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> float:
    return datetime(y, m, d, hh, mm, ss, tzinfo=JKT).timestamp()


def months_later(d: date, n: int) -> date:
    """The same day `n` calendar months later, or that month's last day."""
    y, m = divmod(d.month - 1 + n, 12)
    y, m = d.year + y, m + 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


@dataclass
class Model:
    """What the lender should say about one order, maintained by the test as it walks."""

    product_id: str
    amount: int  # approved principal
    term: int
    status: int = 100
    approval_time: float = 0.0
    loan_time: float | None = None
    due: date | None = None  # the WIB due day
    interest_due: int = 0  # interest owed at the current due date
    extensions: list[dict] = field(default_factory=list)
    delay_status: int | None = None
    settled_at: float | None = None

    @property
    def p(self) -> dict:
        return PRODUCTS[self.product_id]

    def rate(self, key: str) -> Decimal:
        return Decimal(str(self.p[key]))

    @property
    def interest(self) -> int:
        return rp(self.amount * self.rate("interest_rate") * self.term)

    @property
    def admin(self) -> int:
        return rp(self.amount * self.rate("admin_rate") * self.term)

    def disburse(self, at: float) -> None:
        self.status, self.loan_time, self.interest_due = 170, at, self.interest
        start = day_of(at)
        if self.p["term_unit"] == 1:
            self.due = start + timedelta(days=self.term)
        else:
            m = start.month - 1 + self.term
            self.due = date(start.year + m // 12, m % 12 + 1, start.day)  # no month-end here

    def overdue_days(self, now: float) -> int:
        at = min(now, self.settled_at) if self.settled_at else now
        assert self.due is not None
        if at <= end_of(self.due):
            return 0
        days = (day_of(at) - self.due).days
        return days if days > self.p.get("grace_days", 0) else 0

    def late_fee(self, now: float) -> int:
        raw = rp(
            (self.amount + self.interest_due) * self.rate("overdue_rate") * self.overdue_days(now)
        )
        charged = self.admin + sum(e["delay_amount"] for e in self.extensions)
        return min(raw, self.amount - self.interest_due - charged)  # <= 100 % of principal

    def owed(self, now: float) -> int:
        return self.amount + self.interest_due + self.late_fee(now)

    @property
    def ext_unit(self) -> int:
        """The unit of the extension terms (1 days, 2 months)."""
        return self.p["extension"].get("term_unit", 1)

    def ext_fee(self, term: int) -> int:
        """principal x fee_rate x term, in the extension's unit."""
        return rp(self.amount * Decimal(self.p["extension"]["fee_rate"]) * term)

    def ext_topup(self, term: int, now: float) -> int:
        """What raises the whole extension payment to the product's min_payment."""
        parts = self.interest_due + self.late_fee(now) + self.ext_fee(term)
        return max(0, self.p["extension"].get("min_payment", 0) - parts)

    def ext_cost(self, term: int, now: float) -> int:
        return (
            self.interest_due + self.late_fee(now) + self.ext_fee(term) + self.ext_topup(term, now)
        )

    def new_due(self, now: float, term: int) -> date:
        assert self.due is not None
        base = self.due if now <= end_of(self.due) else day_of(now)
        return base + timedelta(days=term) if self.ext_unit == 1 else months_later(base, term)

    def extend(self, now: float, term: int) -> int:
        """The borrower paid an extension at `now`; returns what it cost."""
        cost = self.ext_cost(term, now)
        new_due = self.new_due(now, term)
        self.extensions.append(
            {
                "loan_amount": self.amount,
                "delay_amount": cost,
                "delay_term": term,
                "term_unit": self.ext_unit,
                "delay_time": fmt(now),
                "expiry_time": fmt(end_of(new_due)),
            }
        )
        rate = self.rate("interest_rate")  # per the product's unit; a month is 30 days
        if self.p["term_unit"] != self.ext_unit:
            rate = rate * 30 if self.ext_unit == 2 else rate / 30
        self.due, self.interest_due = new_due, rp(self.amount * rate * term)
        self.status, self.delay_status = 170, 1
        return cost

    # ---- the expected `data` of each endpoint ----

    def approval(self, order_no: str) -> dict:
        return {
            "order_no": order_no,
            "order_status": self.status,
            "approval_time": fmt(self.approval_time),
            "loan_time": fmt(self.loan_time) if self.loan_time else "",
            "approval_amount": self.amount,
            "approval_term": self.term,
            "term_unit": self.p["term_unit"],
            "interest_amount": self.interest,
            "interest_rate": self.p["interest_rate"],
            "actual_amount": self.amount - self.admin,
            "admin_amount": self.admin,
            "repay_amount": self.amount + self.interest,
            "order_remark": f"Pokok {self.amount}, bunga {self.interest}, biaya admin "
            f"{self.admin}, total pengembalian {self.amount + self.interest}",
        }

    def plan(self, order_no: str, now: float) -> dict:
        assert self.loan_time and self.due
        days = self.overdue_days(now)
        ext = self.p["extension"]
        return {
            "order_no": order_no,
            "order_status": self.status,
            "loan_time": fmt(self.loan_time),
            "loan_amount": self.amount,
            "loan_term": self.term,
            "term_unit": self.p["term_unit"],
            "interest_amount": self.interest_due,
            "interest_rate": self.p["interest_rate"],
            "expiry_time": fmt(end_of(self.due)),
            "expiry_amount": self.late_fee(now),
            "is_overdue": int(days > 0 or self.status == 180),
            "overdue_days": days,
            "admin_amount": self.admin,
            "repay_amount": self.owed(now),
            "url_repay": int(self.p["url_repay"]),
            "delay_repay": int(
                ext["enabled"]
                and self.status in (170, 180)
                and len(self.extensions) < ext.get("limit", 0)
            ),
            "delay_status": self.delay_status,
        }

    def delay_quote(self, order_no: str, now: float, days: int) -> dict:
        ext = self.p["extension"]
        assert self.due
        new_due = fmt(end_of(self.new_due(now, days)))
        return {
            "order_no": order_no,
            "loan_amount": self.amount,
            "interest_amount": self.interest_due,
            "expiry_amount": self.late_fee(now),
            "admin_amount": self.ext_fee(days) + self.ext_topup(days, now),
            "delay_amount": self.ext_cost(days, now),
            "min_payment": ext.get("min_payment", 0),
            "min_payment_topup": self.ext_topup(days, now),
            "repay_amount": self.owed(now),
            "expiry_time": new_due,
            "start_time": fmt(end_of(self.due)),
            "end_time": new_due,
            "delay_times": len(self.extensions),
            "limit_times": ext["limit"],
            "delay_term": ext["terms"],
            "default_value": ext["default_term"],
            "term_unit": self.ext_unit,
        }

    def delay_detail(self, order_no: str, now: float) -> dict:
        last = self.extensions[-1] if self.extensions else None
        assert self.due
        return {
            "order_no": order_no,
            "repay_amount": self.owed(now),
            "delay_amount": last["delay_amount"] if last else 0,
            "delay_term": last["delay_term"] if last else 0,
            "term_unit": last["term_unit"] if last else self.ext_unit,
            "expiry_time": fmt(end_of(self.due)),
            "delay_times": len(self.extensions),
            "limit_times": self.p["extension"].get("limit", 0),
        }

    def delay_list(self, order_no: str) -> dict:
        return {
            "order_no": order_no,
            "delay_times": len(self.extensions),
            "delay_list": self.extensions,
        }


def check_figures(o: Loan, m: Model) -> None:
    """13, 14, 16, 17 (each offered term) and 18 against the model, at the sandbox's now."""
    now = o.sb.now()
    assert o.get("/get-order-status")["order_status"] == m.status
    assert o.get("/get-approval-result") == m.approval(o.order_no)
    if m.loan_time is None:
        return
    plan = o.get("/get-repay-plan")
    url = plan.pop("url_info")
    assert plan == m.plan(o.order_no, now)
    if m.p["url_repay"] and m.status != 200:
        assert url.startswith("http://127.0.0.1:8000/repay/demo/")
    else:
        assert url == ""
    assert o.get("/get-delay-list") == m.delay_list(o.order_no)
    assert o.get("/get-delay-detail") == m.delay_detail(o.order_no, now)
    ext = m.p["extension"]
    if m.status in (170, 180) and ext["enabled"] and len(m.extensions) < ext.get("limit", 0):
        for days in ext["terms"]:
            assert o.get("/get-delay-interest", delay_term=days) == m.delay_quote(
                o.order_no, now, days
            )


def timeline(sb: Sandbox, order_no: str) -> list[tuple]:
    return [(t["from"], t["to"], t["trigger"]) for t in sb.detail(order_no)["timeline"]]


def approve_and_disburse(o: Loan, m: Model | None = None) -> Model:
    """80 -> 90 -> (review) 100 -> confirm -> (payout) 170, checking figures on the way."""
    o.create().submit().bind()
    assert o.status == 90
    o.review()
    approved = o.get("/get-approval-result")["approval_amount"]
    m = m or Model(o.product_id, approved, o.term)
    m.approval_time = o.sb.now()
    check_figures(o, m)
    o.confirm(approved)
    assert o.status == 100
    o.payout()
    m.disburse(o.sb.now())
    check_figures(o, m)
    return m


# ---- 80 -> 90 -> 100 -> 170 -> 200 ----


def test_happy_path_to_settlement(sandbox: Sandbox, loan) -> None:
    o = loan("happy", SUFFIX["approve"])
    o.create()
    assert o.get("/get-order-status") == {
        "order_no": o.order_no,
        "order_status": 80,
        "update_time": int(T0),
    }
    m = approve_and_disburse(o)
    # product 1001: 1,000,000 x 0.0006 x 14 = 8,400 interest; 0.0003 x 14 = 4,200 admin
    assert (m.interest, m.admin, m.amount - m.admin) == (8400, 4200, 995_800)
    assert m.approval_time == T0 + 120 and m.loan_time == T0 + 180
    assert fmt(end_of(m.due)) == "2026-03-16 23:59:59"
    sandbox.advance("5d")
    check_figures(o, m)
    code = o.code()
    assert code["repay_amount"] == 1_008_400
    paid = sandbox.pay(code["repay_code"], amount=1_008_400)
    assert paid["order_status"] == 200
    m.status, m.settled_at = 200, sandbox.now()
    check_figures(o, m)
    sandbox.advance("30d")  # a settled loan's figures never change
    check_figures(o, m)
    assert timeline(sandbox, o.order_no) == [
        (None, 80, "create"),
        (80, 90, "submit"),
        (90, 90, "bind_card"),
        (90, 100, "approve"),
        (100, 100, "confirm"),
        (100, 170, "disburse"),
        (170, 200, "settle"),
    ]
    paths = [c["path"] for c in sandbox.detail(o.order_no)["callbacks"]]
    assert paths == [
        "/callback-order-status",
        "/callback-order-status",
        "/callback-approval-result",
        "/callback-order-status",
        "/callback-repay-plan",
        "/callback-order-status",
        "/callback-repay-plan",
    ]


def test_monthly_product(sandbox: Sandbox, loan) -> None:
    o = loan("monthly", SUFFIX["approve"], product_id="1002", amount=3_000_000, term=3, unit=2)
    m = approve_and_disburse(o)
    # 3,000,000 x 0.018 x 3 = 162,000; admin 0.009 x 3 = 81,000; due 3 calendar months later
    assert (m.interest, m.admin) == (162_000, 81_000)
    assert o.get("/get-repay-plan")["expiry_time"] == "2026-06-02 23:59:59"
    # grace_days = 1: the first day after the due day is not overdue yet
    sandbox.advance_to(wib(2026, 6, 3, 12))
    assert o.status == 170
    check_figures(o, m)
    sandbox.advance_to(wib(2026, 6, 4, 0, 0, 1))
    m.status = 180
    check_figures(o, m)
    plan = o.get("/get-repay-plan")
    # 2 days past the due day: (3,000,000 + 162,000) x 0.001 x 2 = 6,324
    assert (plan["overdue_days"], plan["expiry_amount"]) == (2, 6324)


def test_reduced_approval_and_lower_confirm(sandbox: Sandbox, loan) -> None:
    o = (
        loan("reduced", SUFFIX["approve_reduced"], amount=1_600_000)
        .create()
        .submit()
        .bind()
        .review()
    )
    m = Model("1001", 800_000, 14, approval_time=sandbox.now())  # 50 %, on the step
    check_figures(o, m)
    # Ruling: the borrower may confirm a lower amount (and another offered term)
    o.confirm(500_000, 7)
    m = Model("1001", 500_000, 7, approval_time=m.approval_time)
    check_figures(o, m)
    o.payout()
    m.disburse(sandbox.now())
    check_figures(o, m)
    assert (m.interest, m.admin) == (2100, 1050)


# ---- 110 ----


def test_rejected_with_reason(sandbox: Sandbox, loan) -> None:
    o = loan("reject", SUFFIX["reject_review"]).create().submit().bind()
    o.review()
    assert o.get("/get-approval-result") == {
        "order_no": o.order_no,
        "order_status": 110,
        "order_remark": RULES_REASON,
    }
    assert timeline(sandbox, o.order_no)[-1] == (90, 110, "reject")
    d = sandbox.detail(o.order_no)
    assert d["pending_events"] == []  # final: nothing pending (the abandon timer retired)
    sandbox.advance("8d")
    assert o.status == 110
    cb = [
        c
        for c in sandbox.detail(o.order_no)["callbacks"]
        if c["path"] == "/callback-approval-result"
    ]
    assert cb[0]["body"]["order_remark"] == RULES_REASON


RULES_REASON = "Skor kredit tidak memenuhi syarat"


def test_failed_face_check_rejects_a_default_order(sandbox: Sandbox) -> None:
    # Default-rule orders that fail liveness/face match are rejected at review.
    for i in range(6):
        o = Loan(sandbox, person(f"face{i}"), f"ORD-FACE-{i:06d}").create()
        body = supplement_payload(o.p, o.order_no)
        body["supplement_info"]["same_person"] = 0
        sandbox.ok("/push-supplement-info", body)
        o.review()
        assert o.get("/get-approval-result") == {
            "order_no": o.order_no,
            "order_status": 110,
            "order_remark": "Verifikasi wajah gagal",
        }


# ---- 169 -> re-bind -> 100 -> 170 ----


def test_payout_fails_once_then_rebind(sandbox: Sandbox, loan) -> None:
    o = loan("payout", SUFFIX["payout_fail_once"]).create().submit().bind().review()
    m = Model("1001", 1_000_000, 14, approval_time=sandbox.now())
    o.confirm().payout()
    m.status = 169
    check_figures(o, m)
    assert o.get("/get-bind-bank")["card_list"] == []  # the failed account is dropped
    sandbox.err(
        "/push-order-confirm",
        confirm_payload(o.order_no, 1_000_000, 14),
        11006,
        "the payout failed: bind another account with 08 first",
    )
    sandbox.ok(
        "/push-bind-bank",
        {**bind_payload(o.p, o.order_no), "bank_code": "BRI", "bank_card": "123456789012345"},
    )
    sandbox.advance("1h")
    o.confirm()
    m.status = 100
    check_figures(o, m)
    o.payout()
    m.disburse(sandbox.now())
    check_figures(o, m)
    assert [t[1] for t in timeline(sandbox, o.order_no)] == [
        80,
        90,
        90,
        100,
        100,
        169,
        169,
        100,
        170,
    ]
    failure = next(t for t in sandbox.detail(o.order_no)["timeline"] if t["to"] == 169)
    assert failure["trigger"] == "fail_payout" and failure["cause"] == "due event: payout"


def test_a_spec_valid_account_its_bank_does_not_issue_binds_and_its_payout_fails(
    sandbox: Sandbox, loan
) -> None:
    """The spec allows 9-16 digits for every bank: 08 takes a 14-digit BCA account (BCA issues
    10) and 09 lists it; the payout then fails the way a disbursement provider reports it, and
    a re-bind with a real BCA number and a confirm pay out."""
    o = loan("bca14", SUFFIX["approve"]).create().submit()
    card = {"bank_code": "BCA", "bank_card": "12345678901234"}
    sandbox.ok("/push-bind-bank", {**bind_payload(o.p, o.order_no), **card})
    assert o.get("/get-bind-bank")["card_list"] == [{**card, "extra_info": ""}]
    o.review().confirm().payout()
    assert o.status == 169
    assert sandbox.detail(o.order_no)["payout_error"] == "RECIPIENT_ACCOUNT_NUMBER_ERROR"
    assert o.get("/get-bind-bank")["card_list"] == []  # the bounced account is dropped
    sandbox.ok(
        "/push-bind-bank",
        {**bind_payload(o.p, o.order_no), "bank_code": "BCA", "bank_card": "1234567890"},
    )
    o.confirm().payout()
    assert o.status == 170


def test_payout_always_fails_then_cancelled(sandbox: Sandbox, loan) -> None:
    o = loan("payfail", SUFFIX["payout_fail"]).create().submit().bind().review().confirm().payout()
    assert o.status == 169
    o.bind().confirm().payout()
    assert o.status == 169
    sandbox.advance(7 * DAY - 1)
    assert o.status == 169
    sandbox.advance(1)
    assert o.status == 161
    assert timeline(sandbox, o.order_no)[-1] == (169, 161, "cancel")


# ---- 170 -> 180 -> 200 ----


def test_overdue_then_paid(sandbox: Sandbox, loan) -> None:
    o = loan("late", SUFFIX["overdue"])
    m = approve_and_disburse(o)
    sandbox.advance_to(wib(2026, 3, 16, 23, 59, 59))  # the last second of the due day
    assert o.status == 170
    check_figures(o, m)
    sandbox.advance(1)
    m.status = 180
    check_figures(o, m)
    plan = o.get("/get-repay-plan")
    # 1 day late: (1,000,000 + 8,400) x 0.1 % = 1,008.4 -> 1,008
    assert (plan["is_overdue"], plan["overdue_days"], plan["expiry_amount"]) == (1, 1, 1008)
    sandbox.advance_to(wib(2026, 3, 20, 12))
    check_figures(o, m)
    assert o.get("/get-repay-plan")["expiry_amount"] == 4034  # 4 days: 4,033.6 -> 4,034
    code = o.code(repay_method=2, method_code="2002")
    assert code["repay_amount"] == 1_008_400 + 4034 and code["repay_code"].startswith("IDM")
    sandbox.pay(code["repay_code"])
    m.status, m.settled_at = 200, sandbox.now()
    check_figures(o, m)
    sandbox.advance("10d")
    check_figures(o, m)  # the late fee stopped at the payment
    assert [t[2] for t in timeline(sandbox, o.order_no)][-2:] == ["overdue", "settle"]
    overdue_at = [t for t in sandbox.detail(o.order_no)["timeline"] if t["trigger"] == "overdue"]
    assert overdue_at[0]["at"] == "2026-03-17 00:00:00"


def test_late_fee_capped_at_the_principal(sandbox: Sandbox, loan) -> None:
    o = loan("cap", SUFFIX["overdue"])
    m = approve_and_disburse(o)
    sandbox.advance("2000d")
    m.status = 180
    check_figures(o, m)
    # interest + admin + late fee <= 100 % of the principal (OJK)
    assert o.get("/get-repay-plan")["expiry_amount"] == 1_000_000 - 8400 - 4200


def test_code_expires_and_late_code_refused(sandbox: Sandbox, loan) -> None:
    o = loan("expire", SUFFIX["approve"])
    approve_and_disburse(o)
    code = o.code()["repay_code"]
    sandbox.advance("24h")
    r = sandbox.pay(code, status=409)
    assert "expired" in r["message"]
    assert o.status == 170
    assert {c["repay_code"]: c["state"] for c in sandbox.detail(o.order_no)["repay_codes"]}[
        code
    ] in ("expired", "void")


# ---- extensions ----


def test_extensions_from_170_and_from_180(sandbox: Sandbox, loan) -> None:
    o = loan("ext", SUFFIX["overdue"], amount=2_000_000)
    m = approve_and_disburse(o)
    assert (m.interest, m.admin) == (16_800, 8400)
    # 1) from 170, 7 days, before the due day: due moves 7 days from the old due day
    sandbox.advance("3d")
    code = o.code(repay_type=2, delay_term=7)
    m.delay_status = 0  # a pending extension code
    check_figures(o, m)
    cost = m.extend(sandbox.now(), 7)
    assert code["repay_amount"] == cost == 16_800 + 4200  # interest + 2,000,000 x 0.0003 x 7
    sandbox.pay(code["repay_code"])
    check_figures(o, m)
    assert m.due == date(2026, 3, 23) and m.interest_due == 8400
    # the old due date's overdue event no longer applies
    sandbox.advance_to(wib(2026, 3, 17, 12))
    assert o.status == 170
    check_figures(o, m)
    # 2) overdue from the new due date, then extend from 180 by 14 days: from today
    sandbox.advance_to(wib(2026, 3, 25, 9))
    m.status = 180
    check_figures(o, m)
    code = o.code(repay_type=2, delay_term=14)
    # 8,400 interest + 2 days late (2,008,400 x 0.002 = 4,016.8 -> 4,017) + 8,400 fee
    assert code["repay_amount"] == 8400 + 4017 + 8400
    m.delay_status = 0
    check_figures(o, m)
    sandbox.pay(code["repay_code"])
    assert m.extend(sandbox.now(), 14) == code["repay_amount"]
    assert m.due == date(2026, 4, 8) and m.status == 170
    check_figures(o, m)
    # 3) the third and last extension; then 11008 and delay_repay 0
    code = o.code(repay_type=2)  # default term: 7
    cost = m.extend(sandbox.now(), 7)
    sandbox.pay(code["repay_code"], amount=cost)
    check_figures(o, m)
    assert o.get("/get-repay-plan")["delay_repay"] == 0
    sandbox.err(
        "/get-repay-detail", repay_payload(o.order_no, repay_type=2), 11008, "limit reached (3/3)"
    )
    assert [t[2] for t in timeline(sandbox, o.order_no)].count("extend") == 3
    # and it can still be settled
    sandbox.pay(o.code()["repay_code"])
    m.status, m.settled_at = 200, sandbox.now()
    check_figures(o, m)


def test_a_month_product_extends_by_calendar_months(sandbox: Sandbox, loan) -> None:
    """1002 lends and extends in months: 16-18 say term_unit 2, the due date moves by calendar
    months, and the extended month's interest is the monthly rate."""
    o = loan("monthext", SUFFIX["overdue"], product_id="1002", amount=3_000_000, term=3, unit=2)
    m = approve_and_disburse(o)  # due 2 June 2026, 162,000 interest
    quote = o.get("/get-delay-interest", delay_term=1)
    # 162,000 interest + 3,000,000 x 0.9 % x 1 month fee; due 2 June -> 2 July
    assert (quote["delay_term"], quote["default_value"], quote["term_unit"]) == ([1, 2], 1, 2)
    assert (quote["admin_amount"], quote["delay_amount"]) == (27_000, 189_000)
    assert quote["expiry_time"] == "2026-07-02 23:59:59"
    code = o.code(repay_type=2, delay_term=1)
    assert code["repay_amount"] == quote["delay_amount"]
    m.delay_status = 0
    check_figures(o, m)
    sandbox.pay(code["repay_code"])
    assert m.extend(sandbox.now(), 1) == 189_000
    check_figures(o, m)
    assert o.get("/get-repay-plan")["interest_amount"] == 54_000  # one month at 1.8 %
    assert o.get("/get-delay-list")["delay_list"][0]["term_unit"] == 2
    assert o.get("/get-delay-detail")["term_unit"] == 2
    # overdue past the grace day (3 July free, 4 July late), then 2 months from today
    sandbox.advance_to(wib(2026, 7, 5, 10))
    m.status = 180
    check_figures(o, m)
    code = o.code(repay_type=2, delay_term=2)
    m.delay_status = 0
    check_figures(o, m)
    sandbox.pay(code["repay_code"])
    assert m.extend(sandbox.now(), 2) == code["repay_amount"]
    assert m.due == date(2026, 9, 5) and m.interest_due == 108_000
    check_figures(o, m)
    assert o.get("/get-repay-plan")["delay_repay"] == 0  # the limit: 2


def test_an_extension_under_the_minimum_payment_shows_its_top_up(sandbox: Sandbox, loan) -> None:
    """A 7-day loan of 1,000,000 owes 4,200 interest: a 7-day extension would cost 6,300 and a
    14-day one 8,400, both under the 10,000 minimum. 17 keeps the fee as the fee, shows the
    top-up, and its parts add up to what 15 then charges."""
    o = loan("minpay", SUFFIX["approve"], term=7)
    m = approve_and_disburse(o)
    assert m.interest_due == 4200
    for term, fee in ((7, 2100), (14, 4200)):
        q = o.get("/get-delay-interest", delay_term=term)
        assert (q["interest_amount"], q["expiry_amount"]) == (4200, 0)
        assert (q["min_payment"], q["min_payment_topup"]) == (10_000, 10_000 - 4200 - fee)
        assert q["admin_amount"] == fee + q["min_payment_topup"] == 5800
        assert q["delay_amount"] == q["interest_amount"] + q["expiry_amount"] + q["admin_amount"]
        assert q["delay_amount"] == 10_000
        assert o.code(repay_type=2, delay_term=term)["repay_amount"] == q["delay_amount"]
    # a 14-day extension of a 14-day loan is above the minimum: no top-up
    o2 = loan("nominpay", SUFFIX["approve"])
    approve_and_disburse(o2)
    q = o2.get("/get-delay-interest", delay_term=14)
    assert (q["admin_amount"], q["min_payment_topup"], q["delay_amount"]) == (4200, 0, 12_600)


def test_extension_code_voids_older_codes(sandbox: Sandbox, loan) -> None:
    o = loan("void", SUFFIX["approve"], amount=2_000_000)
    approve_and_disburse(o)
    repay = o.code()["repay_code"]
    ext = o.code(repay_type=2, delay_term=7)["repay_code"]
    sandbox.pay(ext)
    r = sandbox.pay(repay, status=409)  # its amount is stale now
    assert "replaced or cancelled" in r["message"]


# ---- 161 by timeout ----


def test_abandoned_new_order_is_cancelled_after_7_days(sandbox: Sandbox, loan) -> None:
    o = loan("abandon").create()
    sandbox.advance(7 * DAY - 1)
    assert o.status == 80
    sandbox.advance(1)
    assert o.status == 161
    assert timeline(sandbox, o.order_no)[-1] == (80, 161, "cancel")
    assert o.get("/get-approval-result") == {
        "order_no": o.order_no,
        "order_status": 161,
        "order_remark": "Pesanan dibatalkan",
    }
    sandbox.err("/push-supplement-info", supplement_payload(o.p, o.order_no), 11002, "status 161")


def test_unconfirmed_approval_expires_after_3_days(sandbox: Sandbox, loan) -> None:
    o = loan("expiry", SUFFIX["approve"]).create().submit().bind().review()
    assert o.status == 100
    sandbox.advance(3 * DAY - 1)
    assert o.status == 100
    sandbox.advance(1)
    assert o.status == 161
    sandbox.err("/push-order-confirm", confirm_payload(o.order_no, 1_000_000, 14), 11002)
    # a confirmed order is not cancelled by the approval expiry
    o2 = loan("expiry2", SUFFIX["approve"]).create().submit().bind().review().confirm()
    sandbox.force(o2.order_no, "cancel")  # the control API may still cancel it
    assert o2.status == 161


def test_confirmed_order_survives_the_approval_expiry(sandbox_with) -> None:
    sb = sandbox_with(lifecycle={"payout_delay": "5d"})
    o = (
        Loan(sb, person("slowpay", SUFFIX["approve"]), "ORD-SLOW-PAYOUT1")
        .create()
        .submit()
        .bind()
        .review()
    )
    o.confirm()
    sb.advance("4d")
    assert o.status == 100
    sb.advance("1d")
    assert o.status == 170


def test_payout_failed_expiry(sandbox: Sandbox, loan) -> None:
    o = (
        loan("169x", SUFFIX["payout_fail_once"])
        .create()
        .submit()
        .bind()
        .review()
        .confirm()
        .payout()
    )
    assert o.status == 169
    sandbox.advance("7d")
    assert o.status == 161


# ---- scenarios that act by themselves ----


def test_settles_on_time_by_itself(sandbox: Sandbox, loan) -> None:
    o = loan("ontime", SUFFIX["settle_on_time"])
    m = approve_and_disburse(o)
    sandbox.advance_to(wib(2026, 3, 16, 8, 59, 58))
    assert o.status == 170
    sandbox.advance_to(wib(2026, 3, 16, 9))
    m.status, m.settled_at = 200, wib(2026, 3, 16, 8, 59, 59)
    check_figures(o, m)
    d = sandbox.detail(o.order_no)
    assert d["payments"] == [
        {
            "repay_code": "",
            "repay_type": 1,
            "amount": 1_008_400,
            "at": "2026-03-16 08:59:59",
            "source": "scenario",
        }
    ]


def test_magic_reloan_customer(sandbox: Sandbox, loan) -> None:
    p = person("reloan", SUFFIX["reloan"])
    pre = sandbox.ok(
        "/get-loan-precheck", {"product_id": "1001", "user_mobile": p.mobile, "user_idcard": p.nik}
    )
    assert pre["is_reloan"] == 1 and pre["loan_range"][-1]["amount"] == 4_000_000
    assert (
        sandbox.ok("/get-loan-amount", {"product_id": "1001", "user_mobile": p.mobile})[
            "loan_range"
        ][-1]["amount"]
        == 4_000_000
    )
    o = Loan(sandbox, p, "ORD-RELOAN-00001", amount=3_500_000, term=7)
    m = approve_and_disburse(o)
    assert sandbox.detail(o.order_no)["application_amount"] == 3_500_000
    assert (m.interest, m.admin) == (14_700, 7350)


def test_settled_customer_becomes_reloan(sandbox: Sandbox, loan) -> None:
    o = loan("returning", SUFFIX["approve"])
    approve_and_disburse(o)
    pre = {"product_id": "1001", "user_mobile": o.p.mobile, "user_idcard": o.p.nik}
    sandbox.err("/get-loan-precheck", pre, 11004)
    sandbox.pay(o.code()["repay_code"])
    data = sandbox.ok("/get-loan-precheck", pre)
    assert data["is_reloan"] == 1 and data["loan_range"][-1]["amount"] == 4_000_000
    # the second loan may use the reloan limit
    sandbox.ok(
        "/push-basic-info", basic_payload(o.p, "ORD-RETURNING-02", amount=3_000_000, is_reloan=1)
    )
    assert sandbox.detail("ORD-RETURNING-02")["application_amount"] == 3_000_000


def test_review_stuck_then_forced(sandbox: Sandbox, loan) -> None:
    o = loan("stuck", SUFFIX["review_stuck"]).create().submit().bind()
    sandbox.advance("10d")
    assert o.status == 90
    assert sandbox.detail(o.order_no)["allowed_triggers"] == [
        "bind_card",
        "approve",
        "reject",
        "cancel",
    ]
    d = sandbox.force(o.order_no, "approve")
    assert d["status"] == 100
    assert d["timeline"][-1]["cause"] == "forced via control API: approve"
    m = Model("1001", 1_000_000, 14, approval_time=sandbox.now())
    check_figures(o, m)
    o.confirm().payout()
    m.disburse(sandbox.now())
    check_figures(o, m)


def test_forced_approve_with_an_amount(sandbox: Sandbox, loan) -> None:
    o = loan("forced-amount", SUFFIX["review_stuck"]).create().submit()
    sandbox.force(o.order_no, "approve", amount=700_000)
    check_figures(o, Model("1001", 700_000, 14, approval_time=sandbox.now()))


def test_forced_reject_with_reason(sandbox: Sandbox, loan) -> None:
    o = loan("forced-reject", SUFFIX["review_stuck"]).create().submit()
    sandbox.force(o.order_no, "reject", reason="Dokumen tidak lengkap")
    assert o.get("/get-approval-result")["order_remark"] == "Dokumen tidak lengkap"


def test_illegal_forced_trigger_is_409_with_allowed_list(sandbox: Sandbox, loan) -> None:
    o = loan("illegal", SUFFIX["review_stuck"]).create()
    r = sandbox.force(o.order_no, "disburse", status=409)
    assert r["code"] == 11011 and r["error"] == "illegal_trigger"
    assert "allowed: submit, bind_card, cancel" in r["message"]
    assert o.status == 80
    r = sandbox.force(o.order_no, "teleport", status=400)
    assert "unknown trigger 'teleport'" in r["message"]
    sandbox.force(o.order_no, "cancel")
    r = sandbox.force(o.order_no, "approve", status=409)
    assert "none (final)" in r["message"]


def test_forced_overdue_and_settle(sandbox: Sandbox, loan) -> None:
    o = loan("forced", SUFFIX["approve"])
    m = approve_and_disburse(o)
    sandbox.force(o.order_no, "overdue")
    m.status = 180
    check_figures(o, m)  # status 180 before the due date: no late fee yet
    sandbox.force(o.order_no, "settle")
    m.status, m.settled_at = 200, sandbox.now()
    check_figures(o, m)


# ---- determinism ----

WALL = wib(2026, 1, 5, 8)
N_DET = 8


def _run(settings: Any) -> dict[str, list[Any]]:
    """Walk 8 default-rule orders through the API; everything the lender answered."""
    out: list[Any] = []
    approvals: list[dict] = []
    gen = make_sandbox(settings, wall=lambda: WALL)
    sb = next(gen)
    try:
        for i in range(N_DET):
            o = Loan(sb, person(f"det-{i}"), f"ORD-DETERMINISM-{i:03d}")
            o.create().submit().bind().review()
            approval = o.get("/get-approval-result")
            approvals.append(approval)
            if approval["order_status"] == 100:
                o.confirm(approval["approval_amount"]).payout()
                out.append(o.get("/get-order-status"))
                if o.status == 169:
                    o.bind().confirm(approval["approval_amount"]).payout()
                out.append(o.get("/get-repay-plan"))
                out.append(o.code(method_code=("1001", "1005")[i % 2]))
                out.append(o.code(repay_method=2, method_code="2001"))
                out.append(o.get("/get-loan-contract"))
        out.append(
            [
                (t["from"], t["to"], t["trigger"], t["at"])
                for i in range(N_DET)
                for t in sb.detail(f"ORD-DETERMINISM-{i:03d}")["timeline"]
            ]
        )
    finally:
        gen.close()
    return {"approvals": approvals, "rest": out}


@pytest.fixture(scope="module")
def first_run() -> dict[str, list[Any]]:
    return _run(settings_for())


def test_same_inputs_and_seed_give_the_same_answers(first_run: dict) -> None:
    first = first_run
    second = _run(settings_for())
    assert first == second
    codes = [d["repay_code"] for d in first["rest"] if isinstance(d, dict) and "repay_code" in d]
    assert len(codes) >= 6 and len(set(codes)) == len(codes)


def test_another_seed_changes_default_outcomes(first_run: dict) -> None:
    settings = settings_for()
    other = settings_for(scenarios={"seed": "another-seed"})
    from sandbox.core.scenarios import decide

    outcomes = [
        decide(
            s.data.rules,
            s.data.default,
            seed=s.scenarios.seed,
            partner="demo",
            order_no=f"ORD-DETERMINISM-{i:03d}",
            mobile="81234567551",
        )
        for s in (settings, other)
        for i in range(N_DET)
    ]
    assert outcomes[:N_DET] != outcomes[N_DET:]
    a, b = first_run, _run(other)
    assert a["approvals"] != b["approvals"]
    assert {d["order_status"] for d in a["approvals"] + b["approvals"]} >= {100, 110}
