"""Endpoints 02-18 through the real ASGI app: the success shape of each, exactly per the spec.

Field names follow the spec (../seed/partner-api.zh.md); the text key is `message`, except
09, 10, 11 and 16 which say `msg` (docs/protocol.md "msg vs message"). Amounts are JSON
integers, interest_rate a decimal string, date-times "YYYY-MM-DD HH:MM:SS" in WIB.
"""

from __future__ import annotations

import re

import pytest
from conftest import SUFFIX, T0, Loan, Sandbox, basic_payload, person, supplement_payload
from sqlalchemy import select

from sandbox.core.crypto import php_json_encode
from sandbox.store import Order

WIB_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
MSG_PATHS = {"/get-bind-bank", "/get-loan-contract", "/push-order-confirm", "/get-delay-list"}


def text_key(path: str) -> str:
    return "msg" if path in MSG_PATHS else "message"


def envelope_ok(doc: dict, path: str) -> None:
    assert doc["code"] == 0, doc
    assert set(doc) == {"code", text_key(path), "data"}
    assert doc[text_key(path)] == "success"


@pytest.fixture
def active(loan) -> Loan:
    """An order disbursed (170) with 1,000,000 for 14 days on product 1001."""
    return loan("active", SUFFIX["approve"]).disbursed()


# ---- 02 / 03 / 04 ----


def test_02_precheck_shape(sandbox: Sandbox) -> None:
    p = person("pre", SUFFIX["approve"])
    doc = sandbox.call(
        "/get-loan-precheck",
        {"product_id": "1001", "user_mobile": p.mobile, "user_idcard": p.nik, "user_name": p.name},
    )
    envelope_ok(doc, "/get-loan-precheck")
    data = doc["data"]
    assert set(data) == {"is_reloan", "loan_range", "term_unit"}
    assert data["is_reloan"] == 0 and data["term_unit"] == 1
    assert data["loan_range"], data
    for row in data["loan_range"]:
        assert set(row) == {"amount", "term"}
        assert isinstance(row["amount"], int) and 500_000 <= row["amount"] <= 2_000_000
        assert row["amount"] % 100_000 == 0
        assert row["term"] == [7, 14]
    amounts = [r["amount"] for r in data["loan_range"]]
    assert amounts == sorted(amounts) and amounts[0] == 500_000 and amounts[-1] == 2_000_000


def test_02_user_name_is_optional(sandbox: Sandbox) -> None:
    p = person("pre-noname")
    sandbox.ok(
        "/get-loan-precheck", {"product_id": "1001", "user_mobile": p.mobile, "user_idcard": p.nik}
    )


def test_03_amount_shape(sandbox: Sandbox) -> None:
    p = person("amount")
    doc = sandbox.call("/get-loan-amount", {"product_id": "1002", "user_mobile": p.mobile})
    envelope_ok(doc, "/get-loan-amount")
    data = doc["data"]
    assert set(data) == {"loan_range", "term_unit", "default_amount", "default_term"}
    assert data["term_unit"] == 2
    assert data["default_amount"] == 3_000_000 and data["default_term"] == 3
    assert all(r["term"] == [3, 6] for r in data["loan_range"])
    assert data["loan_range"][-1]["amount"] == 5_000_000  # first-time limit


def test_04_interest_trial(sandbox: Sandbox) -> None:
    p = person("interest")
    doc = sandbox.call(
        "/get-loan-interest",
        {
            "product_id": "1001",
            "user_mobile": p.mobile,
            "application_amount": 1_000_000,
            "application_term": 14,
            "term_unit": 1,
        },
    )
    envelope_ok(doc, "/get-loan-interest")
    # 1,000,000 x 0.0006 x 14 = 8,400 interest; 0.0003 x 14 = 4,200 admin
    assert doc["data"] == {
        "interest_amount": 8400,
        "admin_amount": 4200,
        "actual_amount": 995_800,
        "repay_amount": 1_008_400,
        "expiry_time": "2026-03-16 23:59:59",
    }


def test_04_monthly_product(sandbox: Sandbox) -> None:
    p = person("interest-m")
    data = sandbox.ok(
        "/get-loan-interest",
        {
            "product_id": "1002",
            "user_mobile": p.mobile,
            "user_idcard": p.nik,
            "application_amount": 2_500_000,
            "application_term": 3,
            "term_unit": 2,
        },
    )
    # 2,500,000 x 0.018 x 3 = 135,000; admin 0.009 x 3 = 67,500; due 3 months later
    assert data == {
        "interest_amount": 135_000,
        "admin_amount": 67_500,
        "actual_amount": 2_432_500,
        "repay_amount": 2_635_000,
        "expiry_time": "2026-06-02 23:59:59",
    }


# ---- 05 / 06 ----


def test_05_and_06_answer_empty_data(sandbox: Sandbox, loan) -> None:
    o = loan("push")
    doc = sandbox.call("/push-basic-info", basic_payload(o.p, o.order_no))
    envelope_ok(doc, "/push-basic-info")
    assert doc["data"] == {}
    assert o.status == 80
    doc = sandbox.call("/push-supplement-info", supplement_payload(o.p, o.order_no))
    envelope_ok(doc, "/push-supplement-info")
    assert doc["data"] == {}
    assert o.status == 90


def test_05_stores_what_was_sent(sandbox: Sandbox, loan) -> None:
    o = loan("stored").create()
    d = sandbox.detail(o.order_no)
    assert d["user_name"] == o.p.name and d["user_mobile"] == o.p.mobile
    assert d["application_amount"] == 1_000_000 and d["application_term"] == 14
    assert d["timeline"][0]["to"] == 80 and d["timeline"][0]["trigger"] == "create"
    # Ruling: the creation (80) sends no callback; the first is 90.
    assert d["callbacks"] == []


# ---- 07 ----


def test_07_bank_list_for_binding(sandbox: Sandbox) -> None:
    doc = sandbox.call("/get-bank-list", {"action_type": 1, "product_id": "1001"})
    envelope_ok(doc, "/get-bank-list")
    banks = doc["data"]["banklist"]
    assert set(doc["data"]) == {"banklist"}
    assert all(set(b) == {"bank_code", "bank_name"} for b in banks)
    assert {"BCA", "MANDIRI", "BRI", "BNI", "CIMB", "BUKOPIN"} <= {b["bank_code"] for b in banks}


def test_07_repayment_methods(sandbox: Sandbox) -> None:
    data = sandbox.ok("/get-bank-list", {"action_type": "2", "product_id": 1001})
    methods = data["banklist"]
    assert all(set(m) == {"bank_code", "method_code", "repay_method"} for m in methods)
    assert {"bank_code": "BNI", "method_code": "1001", "repay_method": 1} in methods
    assert {"bank_code": "Alfamart", "method_code": "2001", "repay_method": 2} in methods


# ---- 08 / 09 / 10 ----


def test_08_09_bind_and_read_the_card(sandbox: Sandbox, loan) -> None:
    o = loan("bind").create()
    doc = sandbox.call(
        "/push-bind-bank",
        {
            "order_no": o.order_no,
            "product_id": "1001",
            "bank_card": o.p.bank_account,
            "user_name": o.p.name.upper(),
            "bank_code": o.p.bank_code.lower(),
        },
    )
    envelope_ok(doc, "/push-bind-bank")
    assert doc["data"] == {}
    doc = sandbox.call("/get-bind-bank", o.q())
    envelope_ok(doc, "/get-bind-bank")
    assert "message" not in doc
    assert doc["data"] == {
        "order_no": o.order_no,
        "card_list": [
            {"bank_code": o.p.bank_code, "bank_card": o.p.bank_account, "extra_info": ""}
        ],
    }


def test_09_before_binding_lists_no_card(sandbox: Sandbox, loan) -> None:
    o = loan("nocard").create()
    assert o.get("/get-bind-bank") == {"order_no": o.order_no, "card_list": []}


def test_08_rebinding_replaces_the_card(sandbox: Sandbox, loan) -> None:
    o = loan("rebind").create().bind()
    other = "BCA", "1234567890"
    sandbox.ok(
        "/push-bind-bank",
        {
            "order_no": o.order_no,
            "product_id": "1001",
            "bank_card": other[1],
            "user_name": o.p.name,
            "bank_code": other[0],
        },
    )
    assert o.get("/get-bind-bank")["card_list"] == [
        {"bank_code": "BCA", "bank_card": "1234567890", "extra_info": ""}
    ]


def test_10_contract_url_opens_a_real_page(sandbox: Sandbox, loan) -> None:
    o = loan("contract").create()
    doc = sandbox.call("/get-loan-contract", o.q())
    envelope_ok(doc, "/get-loan-contract")
    data = doc["data"]
    assert set(data) == {"contract_url", "contract_desc"}
    assert o.order_no in data["contract_desc"]
    url = data["contract_url"]
    assert url.startswith("http://127.0.0.1:8000/contract/demo/")
    page = sandbox.client.get(url.removeprefix("http://127.0.0.1:8000"))
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert o.order_no in page.text and o.p.name in page.text
    tampered = sandbox.client.get(url.removeprefix("http://127.0.0.1:8000")[:-3] + "000")
    assert tampered.status_code == 404


# ---- 11 / 12 / 13 ----


def test_11_confirm_answers_msg(sandbox: Sandbox, loan) -> None:
    o = loan("confirm").create().submit().bind().review()
    doc = sandbox.call(
        "/push-order-confirm",
        {
            "order_no": o.order_no,
            "product_id": "1001",
            "application_amount": 1_000_000,
            "application_term": 14,
            "term_unit": 1,
        },
    )
    envelope_ok(doc, "/push-order-confirm")
    assert doc["data"] == {}
    assert o.status == 100
    o.payout()
    assert o.status == 170


def test_12_order_status(sandbox: Sandbox, loan) -> None:
    o = loan("status").create()
    doc = sandbox.call("/get-order-status", o.q())
    envelope_ok(doc, "/get-order-status")
    assert doc["data"] == {"order_no": o.order_no, "order_status": 80, "update_time": int(T0)}
    sandbox.advance("1h")
    o.submit()
    assert o.get("/get-order-status") == {
        "order_no": o.order_no,
        "order_status": 90,
        "update_time": int(T0) + 3600,
    }


def test_13_reviewing(sandbox: Sandbox, loan) -> None:
    o = loan("reviewing").create().submit()
    doc = sandbox.call("/get-approval-result", o.q())
    envelope_ok(doc, "/get-approval-result")
    assert doc["data"] == {
        "order_no": o.order_no,
        "order_status": 90,
        "order_remark": "Menunggu persetujuan",
    }


def test_13_approved_shape(sandbox: Sandbox, loan) -> None:
    o = loan("approved").create().submit().review()
    data = o.get("/get-approval-result")
    assert set(data) == {
        "order_no",
        "order_status",
        "approval_time",
        "loan_time",
        "approval_amount",
        "approval_term",
        "term_unit",
        "interest_amount",
        "interest_rate",
        "actual_amount",
        "admin_amount",
        "repay_amount",
        "order_remark",
    }
    assert data["order_status"] == 100
    assert data["approval_time"] == "2026-03-02 10:02:00"  # review_delay = 2m
    assert data["loan_time"] == ""  # not disbursed yet
    assert (data["approval_amount"], data["approval_term"], data["term_unit"]) == (1_000_000, 14, 1)
    assert data["interest_rate"] == "0.0006"
    assert (data["interest_amount"], data["admin_amount"]) == (8400, 4200)
    assert (data["actual_amount"], data["repay_amount"]) == (995_800, 1_008_400)
    assert "1000000" in data["order_remark"] and "8400" in data["order_remark"]


def test_13_rejected_has_reason(sandbox: Sandbox, loan) -> None:
    o = loan("rejected", SUFFIX["reject_review"]).create().submit().review()
    assert o.get("/get-approval-result") == {
        "order_no": o.order_no,
        "order_status": 110,
        "order_remark": "Skor kredit tidak memenuhi syarat",
    }


# ---- 14-18 ----

PLAN_KEYS = {
    "order_no",
    "order_status",
    "loan_time",
    "loan_amount",
    "loan_term",
    "term_unit",
    "interest_amount",
    "interest_rate",
    "expiry_time",
    "expiry_amount",
    "is_overdue",
    "overdue_days",
    "admin_amount",
    "repay_amount",
    "url_repay",
    "url_info",
    "delay_repay",
    "delay_status",
}


def test_14_repay_plan_shape(sandbox: Sandbox, active: Loan) -> None:
    doc = sandbox.call("/get-repay-plan", active.q())
    envelope_ok(doc, "/get-repay-plan")
    data = doc["data"]
    assert set(data) == PLAN_KEYS
    assert data["loan_time"] == "2026-03-02 10:03:00"
    assert data["expiry_time"] == "2026-03-16 23:59:59"
    assert {
        k: data[k]
        for k in (
            "order_status",
            "loan_amount",
            "loan_term",
            "term_unit",
            "interest_amount",
            "interest_rate",
            "expiry_amount",
            "is_overdue",
            "overdue_days",
            "admin_amount",
            "repay_amount",
            "url_repay",
            "delay_repay",
            "delay_status",
        )
    } == {
        "order_status": 170,
        "loan_amount": 1_000_000,
        "loan_term": 14,
        "term_unit": 1,
        "interest_amount": 8400,
        "interest_rate": "0.0006",
        "expiry_amount": 0,
        "is_overdue": 0,
        "overdue_days": 0,
        "admin_amount": 4200,
        "repay_amount": 1_008_400,
        "url_repay": 1,
        "delay_repay": 1,
        "delay_status": None,
    }
    assert data["url_info"].startswith("http://127.0.0.1:8000/repay/demo/")
    page = sandbox.client.get(data["url_info"].removeprefix("http://127.0.0.1:8000"))
    assert page.status_code == 200 and "1.008.400" in page.text


def test_15_payment_code_bank_and_store(sandbox: Sandbox, active: Loan) -> None:
    doc = sandbox.call(
        "/get-repay-detail",
        {
            "order_no": active.order_no,
            "product_id": "1001",
            "repay_method": 1,
            "method_code": "1003",
            "repay_type": 1,
        },
    )
    envelope_ok(doc, "/get-repay-detail")
    data = doc["data"]
    assert set(data) == {
        "order_no",
        "repay_amount",
        "repay_code",
        "expire_time",
        "bank_code",
        "method_code",
        "merchant_name",
    }
    assert data["repay_amount"] == 1_008_400
    assert data["bank_code"] == "MANDIRI" and data["method_code"] == "1003"
    assert re.fullmatch(r"\d{16}", data["repay_code"]) and data["merchant_name"] == ""
    assert data["expire_time"] == "2026-03-03 10:03:00"  # 24 h code
    # asking again for the same payment gives the same code, like a real virtual account
    assert active.code(method_code="1003")["repay_code"] == data["repay_code"]
    store = active.code(repay_method=2, method_code="2001")
    assert re.fullmatch(r"ALF[2-9A-HJ-NP-Z]{10}", store["repay_code"])
    assert store["merchant_name"] == "Alfamart" and store["bank_code"] == "Alfamart"
    # codes of different methods and types never collide
    ext = active.code(repay_type=2, delay_term=7)
    assert len({data["repay_code"], store["repay_code"], ext["repay_code"]}) == 3


def test_16_delay_list_shape(sandbox: Sandbox, active: Loan) -> None:
    doc = sandbox.call("/get-delay-list", active.q())
    envelope_ok(doc, "/get-delay-list")
    assert doc["data"] == {"order_no": active.order_no, "delay_times": 0, "delay_list": []}
    sandbox.pay(active.code(repay_type=2, delay_term=7)["repay_code"])
    data = active.get("/get-delay-list")
    assert data["delay_times"] == 1
    assert data["delay_list"] == [
        {
            "loan_amount": 1_000_000,
            "delay_amount": 8400 + 2100,
            "delay_term": 7,
            "term_unit": 1,
            "delay_time": "2026-03-02 10:03:00",
            "expiry_time": "2026-03-23 23:59:59",
        }
    ]


def test_17_delay_interest_shape(sandbox: Sandbox, active: Loan) -> None:
    doc = sandbox.call("/get-delay-interest", active.q(delay_term=14))
    envelope_ok(doc, "/get-delay-interest")
    assert doc["data"] == {
        "order_no": active.order_no,
        "loan_amount": 1_000_000,
        "interest_amount": 8400,
        "expiry_amount": 0,
        "admin_amount": 4200,
        "delay_amount": 12_600,
        "min_payment": 10_000,
        "min_payment_topup": 0,
        "repay_amount": 1_008_400,
        "expiry_time": "2026-03-30 23:59:59",
        "start_time": "2026-03-16 23:59:59",
        "end_time": "2026-03-30 23:59:59",
        "delay_times": 0,
        "limit_times": 3,
        "delay_term": [7, 14],
        "default_value": 7,
        "term_unit": 1,
    }
    # without delay_term: the product's default (7 days)
    assert active.get("/get-delay-interest")["expiry_time"] == "2026-03-23 23:59:59"


def test_18_delay_detail_shape(sandbox: Sandbox, active: Loan) -> None:
    doc = sandbox.call("/get-delay-detail", active.q())
    envelope_ok(doc, "/get-delay-detail")
    assert doc["data"] == {
        "order_no": active.order_no,
        "repay_amount": 1_008_400,
        "delay_amount": 0,
        "delay_term": 0,
        "term_unit": 1,
        "expiry_time": "2026-03-16 23:59:59",
        "delay_times": 0,
        "limit_times": 3,
    }


# ---- the envelope variants ----


def test_numbers_as_strings_and_strings_as_numbers(sandbox: Sandbox, loan) -> None:
    o = loan("strings")
    body = basic_payload(o.p, o.order_no)
    body["product_id"] = 1001  # number for a string
    body["is_reloan"] = "0"
    body["basic_info"].update(
        user_type="1", education=str(o.p.education), month_income=o.p.month_income
    )
    body["order_info"].update(
        application_amount="1000000",
        application_term="14",
        term_unit="1",
        product_id=1001,
        user_mobile=int(o.p.mobile),
        user_idcard=int(o.p.nik),
    )
    sandbox.ok("/push-basic-info", body)
    assert (
        sandbox.ok("/get-order-status", {"order_no": o.order_no, "product_id": 1001})[
            "order_status"
        ]
        == 80
    )


def test_php_escaped_json_is_accepted(sandbox: Sandbox, loan) -> None:
    o = loan("php")
    body = supplement_payload(o.p, o.order_no)
    body["supplement_info"]["company"] = "PT Kopi Kenangan Café"
    body["supplement_info"]["area"]["detail_address"] = "Jl. Sudirman Kav. 5/7, RT 01/RW 02"
    o.create()
    data = sandbox.envelope(body, php=True)
    text = php_json_encode(body)
    assert "\\/" in text and "\\u00e9" in text  # what a PHP client really sends
    doc = sandbox.post("/push-supplement-info", data).json()
    assert doc["code"] == 0, doc
    assert sandbox.detail(o.order_no)["status"] == 90
    with sandbox.lender.store.transaction() as s:
        info = s.scalars(select(Order).where(Order.order_no == o.order_no)).one().supplement_info
    assert info["company"] == "PT Kopi Kenangan Café"
    assert info["area"]["detail_address"] == "Jl. Sudirman Kav. 5/7, RT 01/RW 02"
    assert info["face_photo_image"] == [f"https://cdn.example.id/face/{o.order_no}.jpg"]


def test_unknown_extra_fields_are_ignored(sandbox: Sandbox) -> None:
    sandbox.ok(
        "/get-bank-list", {"action_type": 1, "product_id": "1001", "sign": "x", "extra": [1]}
    )


@pytest.mark.parametrize(
    "mode,keys", [("message", {"message"}), ("msg", {"msg"}), ("both", {"message", "msg"})]
)
def test_message_key_setting(sandbox_with, mode: str, keys: set) -> None:
    sb = sandbox_with(responses={"message_key": mode})
    for path, payload in (
        ("/get-bank-list", {"action_type": 1, "product_id": "1001"}),
        ("/get-bind-bank", {"order_no": "NOSUCHORDER01", "product_id": "1001"}),
    ):
        doc = sb.call(path, payload)
        assert set(doc) == {"code", "data"} | keys, doc


def test_spec_message_key_on_errors_too(sandbox: Sandbox) -> None:
    doc = sandbox.call("/get-bind-bank", {"order_no": "NOSUCHORDER01", "product_id": "1001"})
    assert doc["code"] == 11001 and set(doc) == {"code", "msg", "data"}
    doc = sandbox.call("/get-order-status", {"order_no": "NOSUCHORDER01", "product_id": "1001"})
    assert doc["code"] == 11001 and set(doc) == {"code", "message", "data"}


def test_encrypted_data_setting(sandbox_with) -> None:
    sb = sandbox_with(responses={"encrypt_data": True})
    doc = sb.call("/get-bank-list", {"action_type": 1, "product_id": "1001"})
    assert doc["code"] == 0 and isinstance(doc["data"], str)
    plain = sb.codec.decrypt_json(doc["data"])
    assert plain["banklist"][0] == {"bank_code": "BCA", "bank_name": "Bank Central Asia"}
    # empty data stays {} and errors are never encrypted
    o = Loan(sb, person("enc"), "ORD-ENCRYPTED-01")
    doc = sb.call("/push-basic-info", basic_payload(o.p, o.order_no))
    assert doc == {"code": 0, "message": "success", "data": {}}
    doc = sb.call("/get-order-status", {"order_no": "NOSUCHORDER01", "product_id": "1001"})
    assert doc["code"] == 11001 and doc["data"] == {}
    assert sb.ok("/get-order-status", o.q())["order_status"] == 80


def test_content_type_is_json_utf8(sandbox: Sandbox) -> None:
    r = sandbox.post("/get-bank-list", sandbox.envelope({"action_type": 1, "product_id": "1001"}))
    assert r.headers["content-type"].startswith("application/json")
    assert "utf-8" in r.headers["content-type"].lower()


# ---- transport ----


def test_get_on_a_lender_path_is_405(sandbox: Sandbox) -> None:
    r = sandbox.client.get("/get-loan-precheck")
    assert r.status_code == 405
    doc = r.json()
    assert doc["code"] == 10001 and "POST" in doc["message"] and doc["data"] == {}


def test_unknown_path_is_404(sandbox: Sandbox) -> None:
    r = sandbox.post("/get-loan-everything", sandbox.envelope({"product_id": "1001"}))
    assert r.status_code == 404
    assert r.json()["code"] == 10001 and "/get-loan-everything" in r.json()["message"]


def test_huge_body_is_413(sandbox_with) -> None:
    sb = sandbox_with(server={"max_body_bytes": 2048})
    small = sb.envelope({"action_type": 1, "product_id": "1001"})
    assert sb.post("/get-bank-list", small).json()["code"] == 0
    big = sb.envelope({"action_type": 1, "product_id": "1001", "pad": "x" * 4000})
    r = sb.post("/get-bank-list", big)
    assert r.status_code == 413
    assert r.json()["code"] == 10013 and r.json()["data"] == {}


def test_huge_body_without_content_length_is_413(sandbox_with) -> None:
    sb = sandbox_with(server={"max_body_bytes": 2048})

    def chunks():
        yield b'{"partner_token": "demo", "encode_data": "'
        for _ in range(10):
            yield b"A" * 1000
        yield b'"}'

    r = sb.client.post("/get-bank-list", content=chunks())
    assert r.status_code == 413 and r.json()["code"] == 10013
