"""sandbox.validation: request models per endpoint, and pydantic errors -> 10006 / 10007."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sandbox.core import validation as v
from sandbox.core.errors import SandboxError

BASIC: dict[str, Any] = {
    "product_id": "1001",
    "device_ip": "10.0.0.1",
    "is_reloan": 0,
    "basic_info": {
        "user_type": 1,
        "idcard_image_front": "https://x/f.jpg",
        "idcard_image_hand": "https://x/h.jpg",
        "education": 4,
        "loan_remark": 2,
        "month_income": 5500000,
        "religion": 1,
    },
    "order_info": {
        "order_no": "ORD-VALID-0001",
        "application_amount": 1000000,
        "application_term": 14,
        "term_unit": 1,
        "product_id": "1001",
        "user_name": "Budi Santoso",
        "user_mobile": "81234567890",
        "user_idcard": "3201014101900001",
    },
}
SUPPLEMENT: dict[str, Any] = {
    "product_id": "1001",
    "supplement_info": {
        "marital_status": 2,
        "sex": 1,
        "work_type": 2,
        "area": {"province": "Jawa Barat", "city": "Kota Bandung"},
        "emergs": [
            {"emergs_name": "Siti", "emergs_phone": "81234567891", "emergs_relation": 1},
            {"emergs_name": "Andi", "emergs_phone": "81234567892", "emergs_relation": 6},
        ],
    },
    "order_info": {"order_no": "ORD-VALID-0001"},
}


def error(model: type[v.Req], payload: dict) -> SandboxError:
    with pytest.raises(SandboxError) as info:
        v.parse(model, payload)
    return info.value


def changed(base: dict, path: str, value: Any = ..., *, drop: bool = False) -> dict:
    out = copy.deepcopy(base)
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    target = out
    for k in keys[:-1]:
        target = target[k]
    if drop:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return out


def test_valid_payloads_parse() -> None:
    r = v.parse(v.BasicInfoReq, BASIC)
    assert r.order_info.application_amount == 1_000_000 and r.basic_info.month_income == "5500000"
    s = v.parse(v.SupplementReq, SUPPLEMENT)
    assert len(s.supplement_info.emergs) == 2 and s.order_info.application_amount is None


@pytest.mark.parametrize(
    "path,name",
    [
        ("order_info.user_idcard", "order_info.user_idcard"),
        ("order_info", "order_info"),
        ("basic_info.religion", "basic_info.religion"),
        ("product_id", "product_id"),
    ],
)
def test_missing_is_10006_naming_the_nested_field(path: str, name: str) -> None:
    e = error(v.BasicInfoReq, changed(BASIC, path, drop=True))
    assert (e.code, e.name) == (10006, "missing_field")
    assert e.message == f"Parameter wajib tidak ada: {name} is required"


def test_missing_inside_a_list_names_the_index() -> None:
    e = error(
        v.SupplementReq, changed(SUPPLEMENT, "supplement_info.emergs.1.emergs_relation", drop=True)
    )
    assert e.code == 10006 and "supplement_info.emergs[1].emergs_relation is required" in e.message
    e = error(v.SupplementReq, changed(SUPPLEMENT, "supplement_info.area.province", drop=True))
    assert "supplement_info.area.province is required" in e.message


@pytest.mark.parametrize(
    "path,value,name,rule",
    [
        (
            "order_info.user_mobile",
            "081234567890",
            "order_info.user_mobile",
            v.RULES["user_mobile"],
        ),
        ("order_info.user_idcard", "123", "order_info.user_idcard", v.RULES["user_idcard"]),
        ("order_info.user_name", "Budi 2", "order_info.user_name", v.RULES["user_name"]),
        ("order_info.order_no", "SHORT", "order_info.order_no", v.RULES["order_no"]),
        (
            "order_info.application_amount",
            5000,
            "order_info.application_amount",
            v.RULES["application_amount"],
        ),
        ("order_info.term_unit", 3, "order_info.term_unit", v.RULES["term_unit"]),
        ("basic_info.month_income", "0123456", "basic_info.month_income", v.RULES["month_income"]),
        ("is_reloan", 5, "is_reloan", v.RULES["is_reloan"]),
    ],
)
def test_malformed_is_10007_with_the_rule(path: str, value: Any, name: str, rule: str) -> None:
    e = error(v.BasicInfoReq, changed(BASIC, path, value))
    assert (e.code, e.name) == (10007, "invalid_field")
    assert e.message == f"Parameter tidak valid: {name} {rule}"


def test_rules_of_fields_without_a_quoted_rule() -> None:
    e = error(v.BasicInfoReq, changed(BASIC, "basic_info.education", 9))
    assert e.code == 10007 and e.message.startswith("Parameter tidak valid: basic_info.education ")
    assert "less than or equal to 6" in e.message
    e = error(v.SupplementReq, changed(SUPPLEMENT, "supplement_info.emergs.0.emergs_relation", 0))
    assert "supplement_info.emergs[0].emergs_relation" in e.message
    e = error(
        v.SupplementReq,
        changed(SUPPLEMENT, "supplement_info.emergs", SUPPLEMENT["supplement_info"]["emergs"][:1]),
    )
    assert e.message.endswith("supplement_info.emergs must list at least 2 emergency contacts")


def test_wrong_container_types() -> None:
    e = error(v.BasicInfoReq, changed(BASIC, "order_info", "ORD-1"))
    assert e.code == 10007 and "order_info" in e.message and "valid dictionary" in e.message
    e = error(v.SupplementReq, changed(SUPPLEMENT, "supplement_info.emergs", {"a": 1}))
    assert e.code == 10007 and "supplement_info.emergs" in e.message and "valid list" in e.message


def test_missing_comes_before_malformed() -> None:
    payload = changed(
        changed(BASIC, "order_info.user_mobile", "0"), "basic_info.religion", drop=True
    )
    assert error(v.BasicInfoReq, payload).code == 10006


def test_numbers_as_strings_and_strings_as_numbers() -> None:
    payload = changed(BASIC, "order_info.application_amount", "1000000")
    payload = changed(payload, "order_info.user_mobile", 81234567890)
    payload = changed(payload, "order_info.user_idcard", 3201014101900001)
    payload = changed(payload, "product_id", 1001)
    payload = changed(payload, "basic_info.month_income", 5500000.0)
    payload = changed(payload, "basic_info.education", "4")
    r = v.parse(v.BasicInfoReq, payload)
    assert r.order_info.application_amount == 1_000_000 and r.product_id == "1001"
    assert r.order_info.user_mobile == "81234567890" and r.basic_info.month_income == "5500000"
    assert r.basic_info.education == 4


def test_strings_are_trimmed_and_extras_ignored() -> None:
    payload = changed(BASIC, "order_info.user_mobile", " 81234567890 ")
    payload["sign"] = "whatever"
    payload["order_info"]["unknown"] = {"x": 1}
    r = v.parse(v.BasicInfoReq, payload)
    assert r.order_info.user_mobile == "81234567890"
    assert "sign" not in r.model_dump()


def test_non_integral_numbers_are_refused() -> None:
    e = error(v.BasicInfoReq, changed(BASIC, "order_info.application_amount", 1000000.5))
    assert e.code == 10007
    e = error(v.BasicInfoReq, changed(BASIC, "order_info.user_mobile", 8123456789.5))
    assert e.code == 10007


def test_device_info_is_free_form() -> None:
    for info in ({"os": "android"}, ["a", 1], "raw", 42, None, True):
        payload = changed(SUPPLEMENT, "supplement_info.device_info", info)
        assert v.parse(v.SupplementReq, payload).supplement_info.device_info == info


@pytest.mark.parametrize(
    "model,payload,name",
    [
        (v.PrecheckReq, {"product_id": "1", "user_mobile": "81234567890"}, "user_idcard"),
        (v.AmountReq, {"user_mobile": "81234567890"}, "product_id"),
        (
            v.InterestReq,
            {
                "product_id": "1",
                "user_mobile": "81234567890",
                "application_amount": 100000,
                "application_term": 7,
            },
            "term_unit",
        ),
        (v.BankListReq, {"product_id": "1"}, "action_type"),
        (v.OrderReq, {"product_id": "1"}, "order_no"),
        (
            v.BindBankReq,
            {
                "product_id": "1",
                "order_no": "ORD-000000001",
                "bank_card": "1234567890",
                "bank_code": "BCA",
            },
            "user_name",
        ),
        (
            v.ConfirmReq,
            {
                "product_id": "1",
                "order_no": "ORD-000000001",
                "application_amount": 100000,
                "term_unit": 1,
            },
            "application_term",
        ),
        (
            v.RepayDetailReq,
            {
                "product_id": "1",
                "order_no": "ORD-000000001",
                "repay_method": 1,
                "method_code": "1001",
            },
            "repay_type",
        ),
    ],
)
def test_each_model_names_its_missing_field(model: type[v.Req], payload: dict, name: str) -> None:
    e = error(model, payload)
    assert e.code == 10006 and e.message.endswith(f"{name} is required")


def test_optional_fields() -> None:
    assert (
        v.parse(
            v.PrecheckReq,
            {"product_id": "1", "user_mobile": "81234567890", "user_idcard": "3201014101900001"},
        ).user_name
        is None
    )
    assert (
        v.parse(v.AmountReq, {"product_id": "1", "user_mobile": "81234567890"}).user_idcard is None
    )
    assert (
        v.parse(v.DelayInterestReq, {"product_id": "1", "order_no": "ORD-000000001"}).delay_term
        is None
    )


@pytest.mark.parametrize(
    "card,ok",
    [
        ("123456789", True),
        ("1234567890123456", True),
        ("12345678", False),
        ("12345678901234567", False),
        ("6212262308004359191", False),
        ("1234-5678-90", False),
    ],
)
def test_bank_card_rule(card: str, ok: bool) -> None:
    payload = {
        "product_id": "1",
        "order_no": "ORD-000000001",
        "bank_card": card,
        "user_name": "Budi",
        "bank_code": "BCA",
    }
    if ok:
        assert v.parse(v.BindBankReq, payload).bank_card == card
    else:
        e = error(v.BindBankReq, payload)
        assert e.message == f"Parameter tidak valid: bank_card {v.RULES['bank_card']}"


@pytest.mark.parametrize(
    "mobile,ok",
    [
        ("812345678", True),
        ("8123456789012", True),
        ("81234567", False),
        ("81234567890123", False),
        ("912345678", False),
        ("+6281234567", False),
    ],
)
def test_mobile_rule(mobile: str, ok: bool) -> None:
    payload = {"product_id": "1", "user_mobile": mobile}
    if ok:
        v.parse(v.AmountReq, payload)
    else:
        assert error(v.AmountReq, payload).code == 10007
