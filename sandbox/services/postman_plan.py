"""What a partner's Postman collection is built from: the sample loan, its timings, its payloads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..core.pricing import Product
from ..core.samples import SampleOrder, sample_order
from ..core.scenarios import ScenarioRule
from ..core.settings import Settings

HAPPY_SCENARIO = "approve"  # fixtures/scenarios.toml: approved in full, payout succeeds


@dataclass(frozen=True)
class Plan:
    """Everything the collection needs besides the partner: the sample loan and the timings."""

    sample: SampleOrder
    delay_term: int  # the product's default extension term (15 repay_type 2, 17)
    method_code: str  # a virtual-account repayment method of 07 action_type 2
    review_seconds: float  # [lifecycle] review_delay: the sandbox step moves the clock this far
    payout_seconds: float  # [lifecycle] payout_delay
    mobile_suffix: str  # of the happy scenario


class PostmanError(ValueError):
    """The configuration cannot give a whole loan (no product with extensions, no VA method)."""


def loan_product(products: Mapping[str, Product]) -> Product:
    """The first product offering extensions: the whole loan extends once before it settles."""
    for p in products.values():
        if p.extension.enabled and p.extension.terms:
            return p
    raise PostmanError("no product offers extensions: the whole-loan folder extends the loan once")


def plan_for(
    settings: Settings, products: Mapping[str, Product], partner_token: str, today: date
) -> Plan:
    product = loan_product(products)
    methods = [m.method_code for m in settings.data.repay_methods if m.repay_method == 1]
    if not methods:
        raise PostmanError("no virtual-account repayment method (repay_method 1) in banks.toml")
    rules: list[ScenarioRule] = settings.data.rules
    suffix = {r.name: r.mobile_suffix for r in rules}.get(HAPPY_SCENARIO)
    if suffix is None:
        raise PostmanError(f"no scenario rule named {HAPPY_SCENARIO!r} in scenarios.toml")
    amount = min(product.default_amount or product.amount_min, product.amount_max_new)
    sample = sample_order(
        f"postman-{partner_token}",
        scenario=HAPPY_SCENARIO,
        product_id=product.product_id,
        amount=amount,
        term=product.default_term or product.terms[0],
        term_unit=product.term_unit,
        today=today,
        rules=rules,
    )
    return Plan(
        sample,
        product.extension.default_term,
        methods[0],
        settings.lifecycle.review_delay,
        settings.lifecycle.payout_delay,
        suffix,
    )


# ---- example payloads, with the borrower and order as {{variables}} ----

EXAMPLES: dict[str, Callable[[Plan], dict]] = {
    "/get-loan-precheck": lambda p: p.sample.precheck(),
    "/get-loan-amount": lambda p: {
        k: v for k, v in p.sample.precheck().items() if k != "user_name"
    },
    "/get-loan-interest": lambda p: p.sample.interest(),
    "/push-basic-info": lambda p: p.sample.basic_info(),
    "/push-supplement-info": lambda p: p.sample.supplement_info(),
    "/get-bank-list": lambda p: {"product_id": p.sample.product_id, "action_type": 1},
    "/push-bind-bank": lambda p: p.sample.bind_bank(),
    "/get-bind-bank": lambda p: p.sample.order(),
    "/get-loan-contract": lambda p: p.sample.order(),
    "/push-order-confirm": lambda p: p.sample.confirm(),
    "/get-order-status": lambda p: p.sample.order(),
    "/get-approval-result": lambda p: p.sample.order(),
    "/get-repay-plan": lambda p: p.sample.order(),
    "/get-repay-detail": lambda p: p.sample.repay_detail(1, method_code=p.method_code),
    "/get-delay-list": lambda p: p.sample.order(),
    "/get-delay-interest": lambda p: p.sample.order(delay_term=p.delay_term),
    "/get-delay-detail": lambda p: p.sample.order(),
}

# docs/protocol.md §4: the statuses an order must be in (the others answer 11002).
NEEDS = {
    "/push-supplement-info": "80",
    "/push-bind-bank": "80, 90, 100 or 169",
    "/push-order-confirm": "100 (approved, not yet confirmed) or 169 after a re-bind",
    "/get-repay-plan": "170, 180 or 200",
    "/get-repay-detail": "170 or 180",
    "/get-delay-list": "170, 180 or 200",
    "/get-delay-interest": "170 or 180",
    "/get-delay-detail": "170, 180 or 200",
}


def identity(sample: SampleOrder) -> dict[str, str]:
    """Variable name -> the sample's value, for the values a new run replaces."""
    p = sample.person
    return {
        "order_no": sample.order_no,
        "user_mobile": p.mobile,
        "user_idcard": p.nik,
        "user_name": p.name,
    }


def templated(payload: Any, sample: SampleOrder) -> Any:
    """The payload with the borrower's and order's values as {{variables}} (the order number
    also inside URLs such as the KTP image links)."""
    values = identity(sample)
    if isinstance(payload, dict):
        return {k: templated(v, sample) for k, v in payload.items()}
    if isinstance(payload, list):
        return [templated(v, sample) for v in payload]
    if isinstance(payload, str):
        for var, value in values.items():
            if payload == value:
                return "{{" + var + "}}"
        return payload.replace(sample.order_no, "{{order_no}}")
    return payload
