"""The core of the control API (/sandbox, plain JSON): health, partners, products, clocks,
orders, payments and reset (docs/architecture.md "Control API")."""

from __future__ import annotations

from datetime import datetime

import pytest
from conftest import SUFFIX, T0, TOKEN, Loan, Sandbox, person

from sandbox.core.clock import WIB
from sandbox.core.crypto import Codec

SPEC_01 = {
    "product_id",
    "product_name",
    "product_icon",
    "product_desc",
    "amount_min",
    "amount_max",
    "interest_rate",
    "gp_link",
}

JSON = {"content-type": "application/json"}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, WIB).isoformat(timespec="seconds")


# ---- health and partners ----


def test_health(sandbox: Sandbox) -> None:
    doc = sandbox.control("GET", "/sandbox/health")
    assert doc["status"] == "ok" and doc["database"] == "sqlite" and doc["partners"] == 1


def test_partner_hides_secrets_unless_asked(sandbox: Sandbox) -> None:
    doc = sandbox.control("GET", f"/sandbox/partners/{TOKEN}")
    assert doc["partner_token"] == TOKEN and "aes_key" not in doc and "aes_iv" not in doc
    assert doc["clock"]["mode"] == "manual"
    secret = sandbox.control("GET", f"/sandbox/partners/{TOKEN}?secrets=1")
    assert (secret["aes_key"], secret["aes_iv"]) == ("Loan@apis#123456@", "loan#654321@apis")
    listed = sandbox.control("GET", "/sandbox/partners")
    assert [p["partner_token"] for p in listed] == [TOKEN]
    assert all("aes_key" not in p for p in listed)


def test_unknown_partner_is_404(sandbox: Sandbox) -> None:
    doc = sandbox.control("GET", "/sandbox/partners/nobody", status=404)
    assert doc["code"] == 10002 and "'nobody'" in doc["message"]
    sandbox.control("GET", "/sandbox/partners/nobody/clock", status=404)
    sandbox.control("POST", "/sandbox/partners/nobody/clock/advance", {"by": "1d"}, status=404)


def test_products_in_the_spec_01_shape(sandbox: Sandbox) -> None:
    products = sandbox.control("GET", f"/sandbox/partners/{TOKEN}")["products"]
    assert [p["product_id"] for p in products] == ["1001", "1002", "1003"]
    for p in products:
        assert SPEC_01 <= set(p)
        assert isinstance(p["amount_min"], int) and isinstance(p["amount_max"], int)
        assert isinstance(p["interest_rate"], str)
    first = products[0]
    assert (
        first["product_name"],
        first["amount_min"],
        first["amount_max"],
        first["interest_rate"],
    ) == ("Dana Kilat", 500_000, 4_000_000, "0.0006")
    assert first["gp_link"].startswith("https://play.google.com/")
    icon = sandbox.client.get(first["product_icon"].removeprefix("http://127.0.0.1:8000"))
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")


def test_onboard_a_partner(sandbox: Sandbox) -> None:
    doc = sandbox.control(
        "POST", "/sandbox/partners", {"name": "Tim Lain", "callback_url": "http://127.0.0.1:9/cb/"}
    )
    token, key, iv = doc["partner_token"], doc["aes_key"], doc["aes_iv"]
    assert token.startswith("pt_") and len(key) == 16 and len(iv) == 16
    assert doc["callback_url"] == "http://127.0.0.1:9/cb" and doc["products"]
    other = Sandbox(sandbox.client, token, Codec(key, iv))
    assert other.ok("/get-bank-list", {"action_type": 1, "product_id": "1001"})["banklist"]
    # the demo partner's key does not open the new partner's envelope
    wrong = Sandbox(sandbox.client, token, sandbox.codec)
    assert wrong.call("/get-bank-list", {"action_type": 1, "product_id": "1001"})["code"] in (
        10003,
        10004,
    )
    sandbox.control("POST", "/sandbox/partners", {"partner_token": token}, status=409)
    sandbox.control("POST", "/sandbox/partners", {"partner_token": "x" * 65}, status=400)
    sandbox.control("POST", "/sandbox/partners", {"callback_url": "ftp://x"}, status=400)


def test_patch_a_partner(sandbox: Sandbox) -> None:
    doc = sandbox.control(
        "PATCH", f"/sandbox/partners/{TOKEN}", {"callback_url": "https://agg.example/cb"}
    )
    assert doc["callback_url"] == "https://agg.example/cb"
    bad = sandbox.control("PATCH", f"/sandbox/partners/{TOKEN}", {"partner_token": "x"}, status=400)
    assert "cannot change partner_token" in bad["message"]


def test_bad_control_bodies(sandbox: Sandbox) -> None:
    r = sandbox.client.post(
        f"/sandbox/partners/{TOKEN}/clock/advance", content=b"{not json", headers=JSON
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    r = sandbox.client.post(
        f"/sandbox/partners/{TOKEN}/clock/advance", content=b"[1]", headers=JSON
    )
    assert r.status_code == 400 and "JSON object" in r.json()["message"]


# ---- clocks ----


def test_clock_get_advance_set(sandbox: Sandbox) -> None:
    c = sandbox.control("GET", f"/sandbox/partners/{TOKEN}/clock")
    assert c["mode"] == "manual" and c["rate"] == 0 and c["now_unix"] == T0
    assert c["now"] == "2026-03-02T10:00:00+07:00" and c["next_event"] is None
    c = sandbox.advance(90)
    assert c["now_unix"] == T0 + 90 and c["events_fired"] == 0
    c = sandbox.advance("1h30m")
    assert c["now_unix"] == T0 + 90 + 5400
    c = sandbox.control("POST", f"/sandbox/partners/{TOKEN}/clock/advance", {"seconds": "2d"})
    assert c["now_unix"] == T0 + 90 + 5400 + 2 * 86400
    c = sandbox.control(
        "POST", f"/sandbox/partners/{TOKEN}/clock/set", {"to": "2026-04-01T09:00:00+07:00"}
    )
    assert c["now"] == "2026-04-01T09:00:00+07:00"
    c = sandbox.control(
        "POST", f"/sandbox/partners/{TOKEN}/clock/set", {"to": "2026-04-01 12:00:00"}
    )
    assert c["now"] == "2026-04-01T12:00:00+07:00"  # no zone: WIB
    c = sandbox.control(
        "POST", f"/sandbox/partners/{TOKEN}/clock/set", {"to": "2026-04-01T06:00:00Z"}
    )
    assert c["now"] == "2026-04-01T13:00:00+07:00"


def test_clock_advance_fires_events_and_reports_them(sandbox: Sandbox, loan) -> None:
    o = loan("clock", SUFFIX["approve"]).create().submit()
    c = sandbox.control("GET", f"/sandbox/partners/{TOKEN}/clock")
    assert c["next_event"] == iso(T0 + 120)
    c = sandbox.advance("1d")
    assert c["events_fired"] == 1 and o.status == 100
    assert c["next_event"] == iso(T0 + 120 + 3 * 86400)  # the approval expiry


def test_clock_refuses_to_go_back(sandbox: Sandbox) -> None:
    sandbox.advance("1d")
    doc = sandbox.control(
        "POST",
        f"/sandbox/partners/{TOKEN}/clock/set",
        {"to": "2026-03-02T09:00:00+07:00"},
        status=400,
    )
    assert "only moves forward" in doc["message"]
    doc = sandbox.control(
        "POST", f"/sandbox/partners/{TOKEN}/clock/advance", {"seconds": -5}, status=400
    )
    assert "only moves forward" in doc["message"]
    assert sandbox.now() == T0 + 86400


@pytest.mark.parametrize(
    "body,fragment",
    [
        ({"by": "8x"}, "cannot read duration"),
        ({"by": ""}, "cannot read duration"),
        ({"by": "d"}, "cannot read duration"),
        ({"by": "1d 2q"}, "cannot read duration"),
        ({"seconds": "soon"}, "cannot read duration"),
        ({"by": None}, "cannot read duration"),
        ({"by": ["1d"]}, "cannot read duration"),
        ({}, 'send {"seconds": N} or {"by": "8d"}'),
        ({"days": 3}, 'send {"seconds": N}'),
    ],
)
def test_bad_durations_are_400(sandbox: Sandbox, body: dict, fragment: str) -> None:
    doc = sandbox.control("POST", f"/sandbox/partners/{TOKEN}/clock/advance", body, status=400)
    assert fragment in doc["message"]
    assert sandbox.now() == T0


@pytest.mark.parametrize(
    "body,fragment",
    [
        ({}, 'send {"to": "<ISO 8601>"}'),
        ({"to": "next tuesday"}, "cannot read time"),
        ({"to": "2026-13-01T00:00:00"}, "cannot read time"),
        ({"to": 12345}, "cannot read time"),
    ],
)
def test_bad_clock_set_is_400(sandbox: Sandbox, body: dict, fragment: str) -> None:
    doc = sandbox.control("POST", f"/sandbox/partners/{TOKEN}/clock/set", body, status=400)
    assert fragment in doc["message"]


def test_clock_mode_change(sandbox: Sandbox) -> None:
    doc = sandbox.control(
        "PATCH", f"/sandbox/partners/{TOKEN}", {"clock_mode": "scaled", "clock_rate": 60}
    )
    assert doc["clock"]["mode"] == "scaled" and doc["clock"]["rate"] == 60
    sandbox.control("PATCH", f"/sandbox/partners/{TOKEN}", {"clock_mode": "sideways"}, status=400)


# ---- orders ----


def test_order_list_and_filter(sandbox: Sandbox, loan) -> None:
    a = loan("list-a", None).create()
    b = loan("list-b", SUFFIX["approve"]).create().submit()
    rows = sandbox.control("GET", f"/sandbox/orders?partner_token={TOKEN}")
    assert [r["order_no"] for r in rows] == [b.order_no, a.order_no]  # newest first
    assert rows[0]["status"] == 90 and rows[0]["status_name"] == "reviewing"
    assert rows[0]["scenario"] == "approve" and rows[1]["scenario"] == "default"
    only = sandbox.control("GET", "/sandbox/orders?status=80")
    assert [r["order_no"] for r in only] == [a.order_no]
    assert sandbox.control("GET", "/sandbox/orders?partner_token=nobody") == []
    assert len(sandbox.control("GET", "/sandbox/orders?limit=1")) == 1
    sandbox.control("GET", "/sandbox/orders?status=reviewing", status=400)


def test_order_detail_with_timeline(sandbox: Sandbox, loan) -> None:
    o = loan("detail", SUFFIX["approve"]).disbursed()
    d = sandbox.detail(o.order_no)
    assert d["status"] == 170 and d["allowed_triggers"] == ["overdue", "extend", "settle"]
    assert [(t["from"], t["to"]) for t in d["timeline"]] == [
        (None, 80),
        (80, 90),
        (90, 90),
        (90, 100),
        (100, 100),
        (100, 170),
    ]
    assert d["timeline"][3] == {
        "from": 90,
        "to": 100,
        "trigger": "approve",
        "at": "2026-03-02 10:02:00",
        "cause": "due event: review",
    }
    assert d["scenario"]["rule"] == "approve" and d["scenario"]["review"] == "approve"
    assert d["approval"]["approval_amount"] == 1_000_000
    assert d["repay_plan"]["repay_amount"] == 1_008_400
    assert d["bank_cards"] == [
        {"bank_code": o.p.bank_code, "bank_card": o.p.bank_account, "active": True}
    ]
    assert {e["kind"] for e in d["pending_events"]} == {"overdue"}
    assert d["due_at"] == "2026-03-16 23:59:59"


def test_order_detail_errors(sandbox: Sandbox, loan) -> None:
    o = loan("detail-err").create()
    doc = sandbox.control("GET", f"/sandbox/orders/{o.order_no}", status=400)
    assert "partner_token is required" in doc["message"]
    sandbox.control("GET", f"/sandbox/orders/NOPE00000001?partner_token={TOKEN}", status=404)
    sandbox.control("GET", f"/sandbox/orders/{o.order_no}?partner_token=nobody", status=404)
    doc = sandbox.control(
        "POST", f"/sandbox/orders/{o.order_no}/transition", {"partner_token": TOKEN}, status=400
    )
    assert "trigger is required" in doc["message"]


# ---- payments ----


@pytest.fixture
def owing(loan) -> Loan:
    return loan("owing", SUFFIX["approve"]).disbursed()


def test_payment_settles(sandbox: Sandbox, owing: Loan) -> None:
    code = owing.code()
    doc = sandbox.pay(code["repay_code"])
    assert doc == {
        "repay_code": code["repay_code"],
        "amount": 1_008_400,
        "repay_type": 1,
        "order_no": owing.order_no,
        "partner_token": TOKEN,
        "order_status": 200,
        "paid_at": "2026-03-02 10:03:00",
    }
    d = sandbox.detail(owing.order_no)
    assert d["payments"] == [
        {
            "repay_code": code["repay_code"],
            "repay_type": 1,
            "amount": 1_008_400,
            "at": "2026-03-02 10:03:00",
            "source": "api",
        }
    ]
    assert [c["state"] for c in d["repay_codes"]] == ["paid"]


def test_payment_errors(sandbox: Sandbox, owing: Loan) -> None:
    doc = sandbox.pay("NO-SUCH-CODE", status=404)
    assert doc["code"] == 11010 and "unknown repay_code" in doc["message"]
    doc = sandbox.control("POST", "/sandbox/payments", {}, status=400)
    assert "repay_code is required" in doc["message"]
    code = owing.code()["repay_code"]
    doc = sandbox.pay(code, amount=1_000_000, status=400)
    assert "differs from the code's 1008400" in doc["message"]
    assert owing.status == 170
    sandbox.pay(code, amount=1_008_400)
    doc = sandbox.pay(code, status=409)
    assert "already paid" in doc["message"]


def test_expired_code(sandbox: Sandbox, owing: Loan) -> None:
    code = owing.code()["repay_code"]
    sandbox.advance(86400 - 1)
    assert sandbox.detail(owing.order_no)["repay_codes"][0]["state"] == "open"
    sandbox.advance(1)
    doc = sandbox.pay(code, status=409)
    assert "expired" in doc["message"]
    assert sandbox.detail(owing.order_no)["repay_codes"][0]["state"] in ("expired", "void")
    fresh = owing.code()["repay_code"]
    assert fresh != code
    assert sandbox.pay(fresh)["order_status"] == 200


def test_extension_payment(sandbox: Sandbox, owing: Loan) -> None:
    code = owing.code(repay_type=2, delay_term=14)
    doc = sandbox.pay(code["repay_code"])
    assert doc["repay_type"] == 2 and doc["order_status"] == 170
    assert sandbox.detail(owing.order_no)["extensions"][0]["delay_term"] == 14


# ---- reset ----


def test_reset_one_partner(sandbox: Sandbox, loan) -> None:
    o = loan("reset", SUFFIX["approve"]).disbursed()
    other = sandbox.control("POST", "/sandbox/partners", {"partner_token": "keeper"})
    keeper = Sandbox(sandbox.client, "keeper", Codec(other["aes_key"], other["aes_iv"]))
    k = Loan(keeper, person("keeper"), "ORD-KEEPER-00001").create()
    sandbox.advance("2d")
    doc = sandbox.control("POST", "/sandbox/reset", {"partner_token": TOKEN})
    assert doc == {"reset": TOKEN, "orders_deleted": 1}
    sandbox.control("GET", f"/sandbox/orders/{o.order_no}?partner_token={TOKEN}", status=404)
    sandbox.err("/get-order-status", o.q(), 11001)
    assert keeper.ok("/get-order-status", k.q())["order_status"] == 80
    # the partner's clock starts again (manual: at the wall time)
    assert sandbox.now() == T0
    sandbox.control("POST", "/sandbox/reset", {"partner_token": "nobody"}, status=404)


def test_reset_everything(sandbox: Sandbox, loan) -> None:
    loan("reset-all").create()
    sandbox.control("POST", "/sandbox/partners", {"partner_token": "gone"})
    doc = sandbox.control("POST", "/sandbox/reset", {"all": True})
    assert doc == {"reset": "all", "orders_deleted": 1}
    assert [p["partner_token"] for p in sandbox.control("GET", "/sandbox/partners")] == [TOKEN]
    assert sandbox.control("GET", "/sandbox/orders") == []
    # the demo partner is back from the fixtures and works
    assert sandbox.ok("/get-bank-list", {"action_type": 1, "product_id": "1001"})["banklist"]


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"partner_token": None},
        {"partner_token": ""},
        {"partner_token": 0},
        {"partner_token": False},
        {"all": False},
        {"all": 1},
        {"all": "true"},
        {"all": None},
        {"all": True, "partner_token": TOKEN},
        {"all": True, "partner_token": None},
    ],
)
def test_a_reset_of_everything_must_be_asked_for_in_so_many_words(
    sandbox: Sandbox, loan, body
) -> None:
    """Issue 12 #1: a missing, null, empty or false partner_token wiped every partner."""
    o = loan("reset-explicit", SUFFIX["approve"]).create()
    sandbox.control("POST", "/sandbox/partners", {"partner_token": "bystander"})
    r = sandbox.client.post("/sandbox/reset", json=body)
    assert r.status_code == 400, r.text
    doc = r.json()
    assert doc["error"] in ("missing_field", "invalid_field")
    assert '{"all": true}' in doc["message"] and "partner_token" in doc["message"]
    # nothing was touched: the order and the other partner are still there
    assert sandbox.status(o.order_no) == 80
    tokens = {p["partner_token"] for p in sandbox.control("GET", "/sandbox/partners")}
    assert tokens == {TOKEN, "bystander"}


# ---- hostile control-API input: a 400 naming the field, never a 500 or a broken partner ----


@pytest.mark.parametrize(
    "method,path,body,fragment",
    [
        ("POST", "/sandbox/partners/demo/clock/advance", {"seconds": 1e308}, "year 9000"),
        ("POST", "/sandbox/partners/demo/clock/advance", {"by": "99999999d"}, "year 9000"),
        ("POST", "/sandbox/partners/demo/clock/set", {"to": "9999-12-31T00:00:00Z"}, "year 9000"),
        ("POST", "/sandbox/partners", {"clock_mode": "weird"}, "clock mode"),
        ("POST", "/sandbox/partners", {"clock_mode": "scaled", "clock_rate": "fast"}, "clock rate"),
        ("POST", "/sandbox/partners", {"encrypt_callbacks": "no"}, "encrypt_callbacks"),
        ("POST", "/sandbox/partners", {"name": ["x"]}, "name"),
        (
            "PATCH",
            "/sandbox/partners/demo",
            {"clock_mode": "scaled", "clock_rate": 1e300},
            "clock rate",
        ),
        ("PATCH", "/sandbox/partners/demo", {"callbacks_paused": "yes"}, "callbacks_paused"),
        ("PATCH", "/sandbox/partners/demo", {"aes_key": ""}, "aes_key"),
        ("POST", "/sandbox/payments", {"repay_code": "X", "amount": "abc"}, "amount"),
        ("GET", "/sandbox/orders?status=99999999999999999999999", None, "status"),
        ("GET", "/sandbox/callbacks?limit=99999999999999999999999", None, "limit"),
        ("DELETE", "/sandbox/faults?id=99999999999999999999999", None, "id"),
    ],
)
def test_hostile_control_input_is_a_400(
    sandbox: Sandbox, method: str, path: str, body: dict | None, fragment: str
) -> None:
    before = sandbox.control("GET", "/sandbox/partners/demo/clock")
    answer = sandbox.control(method, path, body, status=400)
    assert answer["error"] == "invalid_field" and fragment in answer["message"]
    after = sandbox.control("GET", "/sandbox/partners/demo/clock")  # the partner still works
    assert after["now"] == before["now"] and after["mode"] == before["mode"]


def test_forced_trigger_parameters_are_checked(sandbox: Sandbox, loan) -> None:
    o = loan("params", SUFFIX["review_stuck"]).create().submit()
    path = f"/sandbox/orders/{o.order_no}/transition"
    for body, fragment in (
        ({"amount": "x"}, "amount"),
        ({"amount": 0}, "amount"),
        ({"reason": 5}, "reason"),
        ({"delay_term": True}, "delay_term"),
    ):
        answer = sandbox.control(
            "POST", path, {"partner_token": TOKEN, "trigger": "approve", **body}, status=400
        )
        assert fragment in answer["message"]
    assert o.status == 90
    sandbox.control("POST", path, {"partner_token": TOKEN, "trigger": "approve", "amount": 700_000})
    assert o.get("/get-approval-result")["approval_amount"] == 700_000


def test_order_detail_names_the_payout_failure(sandbox: Sandbox, loan) -> None:
    o = loan("pfail", SUFFIX["payout_fail_once"]).disbursed()
    assert o.status == 169
    detail = sandbox.control("GET", f"/sandbox/orders/{o.order_no}?partner_token={TOKEN}")
    assert detail["payout_error"] and detail["payout_error"].isupper()  # e.g. REJECTED_BY_BANK
    o.bind().confirm().payout()
    assert o.status == 170
    assert (
        sandbox.control("GET", f"/sandbox/orders/{o.order_no}?partner_token={TOKEN}")[
            "payout_error"
        ]
        is None
    )
