"""Realistic sample payloads: a borrower and an order with a valid payload for every endpoint.

The one payload builder of the project: the test harness (`sandbox.testing.sample_order`),
the demo, the Postman collection and the OpenAPI examples all use it. Pure: the person comes
from `people.make_person(seed, today=...)` and the scenario's magic mobile suffix from the
scenario rules, both passed in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from .people import Person, make_person
from .scenarios import ScenarioRule


@dataclass(frozen=True)
class SampleOrder:
    """A borrower and an order, with a valid payload for each endpoint that needs one."""

    order_no: str
    person: Person
    product_id: str = "1001"
    amount: int = 1_000_000
    term: int = 14
    term_unit: int = 1
    scenario: str | None = None

    def precheck(self) -> dict:
        """02 get-loan-precheck (also 03 get-loan-amount)."""
        p = self.person
        return {
            "product_id": self.product_id,
            "user_mobile": p.mobile,
            "user_idcard": p.nik,
            "user_name": p.name,
        }

    def interest(self, amount: int | None = None, term: int | None = None) -> dict:
        """04 get-loan-interest."""
        return {
            "product_id": self.product_id,
            "user_mobile": self.person.mobile,
            "user_idcard": self.person.nik,
            "application_amount": amount or self.amount,
            "application_term": term or self.term,
            "term_unit": self.term_unit,
        }

    def basic_info(self) -> dict:
        """05 push-basic-info: creates the order (80)."""
        p = self.person
        return {
            "product_id": self.product_id,
            "device_ip": "114.124.10.20",
            "is_reloan": 0,
            "basic_info": {
                "user_type": 1,
                "education": p.education,
                "loan_remark": 2,
                "idcard_image_front": f"https://cdn.example.id/ktp/{self.order_no}-front.jpg",
                "idcard_image_hand": f"https://cdn.example.id/ktp/{self.order_no}-hand.jpg",
                "month_income": int(p.month_income),
                "religion": p.religion,
            },
            "order_info": {
                "order_no": self.order_no,
                "application_amount": self.amount,
                "application_term": self.term,
                "term_unit": self.term_unit,
                "product_id": self.product_id,
                "user_name": p.name,
                "user_mobile": p.mobile,
                "user_idcard": p.nik,
            },
        }

    def supplement_info(self) -> dict:
        """06 push-supplement-info: KYC details; review starts (90)."""
        p = self.person
        return {
            "product_id": self.product_id,
            "device_ip": "114.124.10.20",
            "supplement_info": {
                "is_charge": 2,
                "birthday": p.birth_date.isoformat(),
                "marital_status": p.marital_status,
                "sex": p.sex,
                "face_photo_image": [f"https://cdn.example.id/face/{self.order_no}.jpg"],
                "pass_face_photo": 1,
                "same_person": 1,
                "confidence_score": "92.5",
                "work_type": 2,
                "company": p.company,
                "area": {
                    "province": p.province,
                    "city": p.city,
                    "district": p.district,
                    "village": "Sukamaju",
                    "detail_address": "Jl. Merdeka No. 10",
                },
                "emergs": [
                    {
                        "emergs_name": e.emergs_name,
                        "emergs_phone": e.emergs_phone,
                        "emergs_relation": e.emergs_relation,
                    }
                    for e in p.emergs
                ],
                "device_info": {"os": "android", "model": "Redmi Note 12"},
            },
            "order_info": {
                "order_no": self.order_no,
                "application_amount": self.amount,
                "application_term": self.term,
                "term_unit": self.term_unit,
                "user_mobile": p.mobile,
            },
        }

    def bind_bank(self) -> dict:
        """08 push-bind-bank: the person's own account."""
        p = self.person
        return {
            **self.order(),
            "bank_card": p.bank_account,
            "user_name": p.name,
            "bank_code": p.bank_code,
        }

    def order(self, **extra: Any) -> dict:
        """`order_no` + `product_id`: 09, 10, 12, 13, 14, 16, 18 (and 17 with delay_term)."""
        return {"order_no": self.order_no, "product_id": self.product_id, **extra}

    def confirm(self, amount: int | None = None, term: int | None = None) -> dict:
        """11 push-order-confirm (pass the approved amount when it was reduced)."""
        return {
            **self.order(),
            "application_amount": amount or self.amount,
            "application_term": term or self.term,
            "term_unit": self.term_unit,
        }

    def repay_detail(
        self,
        repay_type: int = 1,
        *,
        method_code: str = "1001",
        repay_method: int = 1,
        delay_term: int | None = None,
    ) -> dict:
        """15 get-repay-detail: repay_type 1 full repayment, 2 extension fee."""
        extra = {} if delay_term is None else {"delay_term": delay_term}
        return self.order(
            repay_method=repay_method, method_code=method_code, repay_type=repay_type, **extra
        )

    def payloads(self) -> dict[str, dict]:
        """A valid decrypted payload for every lender endpoint 02-18, by path."""
        o = self.order()
        return {
            "/get-loan-precheck": self.precheck(),
            "/get-loan-amount": {k: v for k, v in self.precheck().items() if k != "user_name"},
            "/get-loan-interest": self.interest(),
            "/push-basic-info": self.basic_info(),
            "/push-supplement-info": self.supplement_info(),
            "/get-bank-list": {"product_id": self.product_id, "action_type": 1},
            "/push-bind-bank": self.bind_bank(),
            "/get-bind-bank": o,
            "/get-loan-contract": o,
            "/push-order-confirm": self.confirm(),
            "/get-order-status": o,
            "/get-approval-result": o,
            "/get-repay-plan": o,
            "/get-repay-detail": self.repay_detail(),
            "/get-delay-list": o,
            "/get-delay-interest": self.order(delay_term=7),
            "/get-delay-detail": o,
        }


def sample_order(
    seed: str,
    *,
    today: date,
    rules: list[ScenarioRule],
    scenario: str | None = "approve",
    suffix: str | None = None,
    product_id: str = "1001",
    amount: int = 1_000_000,
    term: int = 14,
    term_unit: int = 1,
    order_no: str | None = None,
) -> SampleOrder:
    """A realistic borrower (`people.make_person(seed)`) and an order; the same seed gives
    the same order.

    `scenario` names a rule of `rules` (fixtures/scenarios.toml: "approve", "reject_review",
    "overdue", ...) whose magic mobile suffix the borrower gets; `suffix` sets the suffix
    directly; `scenario=None` picks a mobile no rule matches (the [default] odds).
    `today` dates the person's age.
    """
    person = make_person(seed, today=today)
    person = replace(person, mobile=_scenario_mobile(person.mobile, scenario, suffix, rules))
    return SampleOrder(
        order_no or _order_no(seed), person, product_id, amount, term, term_unit, scenario
    )


def _order_no(seed: str) -> str:
    return "ORD" + hashlib.sha256(seed.encode()).hexdigest()[:17].upper()


def _scenario_mobile(
    mobile: str, scenario: str | None, suffix: str | None, rules: list[ScenarioRule]
) -> str:
    if suffix is None and scenario is not None:
        by_name = {r.name: r.mobile_suffix for r in rules}
        if scenario not in by_name:
            raise ValueError(f"unknown scenario {scenario!r}; scenarios: {', '.join(by_name)}")
        suffix = by_name[scenario]
    if suffix is not None:
        return mobile[: -len(suffix)] + suffix
    for step in range(1000):  # no rule may match: the order follows the [default] odds
        candidate = mobile[:-3] + f"{(int(mobile[-3:]) + step) % 1000:03d}"
        if not any(candidate.endswith(r.mobile_suffix) for r in rules):
            return candidate
    raise ValueError("every mobile suffix matches a scenario rule: pass suffix= or scenario=")
