"""`LenderClient` and `SandboxControl` (sandbox.client) over HTTP, against the real ASGI app.

The app is `create_app(lender=...)` behind starlette's TestClient, which *is* an
`httpx.Client`: the clients get it injected exactly as a user would hand in their own.
The lender is an in-process `Sandbox`'s, so both paths can be compared on the same state.
"""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.testclient import TestClient

from sandbox.client import (
    BadResponse,
    ControlAPIError,
    LenderClient,
    LenderError,
    SandboxControl,
    endpoint_path,
)
from sandbox.testing import Sandbox, Template
from sandbox.web.app import create_app

BASE = "http://localhost"  # the app answers loopback Host names only


@pytest.fixture
def http(sb):
    with TestClient(create_app(lender=sb.lender, background=False), base_url=BASE) as client:
        yield client


@pytest.fixture
def api(sb, http):
    p = sb.partner
    return LenderClient(BASE, p.partner_token, p.aes_key, p.aes_iv, http=http)


@pytest.fixture
def control(http):
    return SandboxControl(BASE, http=http)


def test_data_and_call(sb, api):
    loan = sb.sample_order()
    data = api.data("get-loan-precheck", loan.precheck())
    assert data["is_reloan"] == 0 and data["term_unit"] == 1
    doc = api.call("/get-loan-precheck", loan.precheck())
    assert doc == {"code": 0, "message": "success", "data": data}
    assert sb.journal.last("get-loan-precheck").request == loan.precheck()


def test_business_error(api):
    with pytest.raises(LenderError) as e:
        api.data(
            "get-loan-precheck",
            {"product_id": "9", "user_mobile": "81234567890", "user_idcard": "3171014508900001"},
        )
    assert (e.value.code, e.value.path, e.value.http_status) == (10008, "/get-loan-precheck", 200)
    assert e.value.response["data"] == {}


def test_msg_endpoints_and_unknown_paths(sb, api):
    loan = sb.sample_order()
    api.data("push-basic-info", loan.basic_info())
    doc = api.call("get-bind-bank", loan.order())  # docs/protocol.md §1: this one says "msg"
    assert doc["msg"] == "success" and "message" not in doc
    assert api.call("no-such-endpoint", {})["code"] == 10001
    with pytest.raises(LenderError) as e:
        api.data("no-such-endpoint", {})
    assert e.value.http_status == 404


def test_in_process_and_http_answer_alike(sb, api):
    loan = sb.sample_order()
    over_http = api.call("get-loan-interest", loan.interest())
    assert sb.client().call("get-loan-interest", loan.interest()) == over_http
    assert sb.client().call("nope", {}) == api.call("nope", {})


def test_encrypted_data_is_decrypted():
    template = Template(overrides={"responses": {"encrypt_data": True}})
    with (
        Sandbox(template) as sb,
        TestClient(create_app(lender=sb.lender, background=False), base_url=BASE) as http,
    ):
        p = sb.partner
        api = LenderClient(BASE, p.partner_token, p.aes_key, p.aes_iv, http=http)
        loan = sb.sample_order()
        raw = http.post("/get-loan-precheck", json=api.envelope(loan.precheck())).json()
        assert isinstance(raw["data"], str)
        assert api.decrypt(raw["data"]) == api.data("get-loan-precheck", loan.precheck())
    template.close()


def test_encrypt_decrypt_match_the_spec_pair():
    api = LenderClient(BASE, "demo", "Loan@apis#123456@", "loan#654321@apis")
    text = api.encrypt({"a": "b/c"})
    assert api.decrypt(text) == {"a": "b/c"}
    assert api.envelope({"a": 1})["partner_token"] == "demo"
    api.close()


def test_not_an_envelope_is_a_bad_response():
    def proxy_error(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    with httpx.Client(transport=httpx.MockTransport(proxy_error)) as http:
        api = LenderClient("https://lender.example", "demo", "k" * 16, "i" * 16, http=http)
        with pytest.raises(BadResponse) as e:
            api.call("get-loan-precheck", {})
    assert e.value.http_status == 502 and "Bad Gateway" in e.value.text


def test_the_client_owns_only_the_http_client_it_made():
    seen = []

    def lender(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((str(request.url), request.headers["content-type"], body))
        return httpx.Response(200, json={"code": 0, "message": "success", "data": {}})

    http = httpx.Client(transport=httpx.MockTransport(lender))
    with LenderClient("https://lender.example/api/", "demo", "k" * 16, "i" * 16, http=http) as api:
        assert api.data("get-bank-list", {"action_type": 1}) == {}
    assert not http.is_closed
    http.close()
    url, content_type, body = seen[0]
    assert url == "https://lender.example/api/get-bank-list"
    assert content_type == "application/json;charset=utf-8" and set(body) == {
        "partner_token",
        "encode_data",
    }


def test_endpoint_names():
    assert endpoint_path("get-loan-precheck") == endpoint_path("/get-loan-precheck")
    with pytest.raises(ValueError):
        endpoint_path("https://lender.example/get-loan-precheck")


# ---- the control API client ----


def test_control_clock_orders_and_payments(sb, api, control):
    assert control.health()["status"] == "ok"
    loan = sb.sample_order()
    api.data("push-basic-info", loan.basic_info())
    api.data("push-supplement-info", loan.supplement_info())
    assert control.advance_clock(120)["events_fired"] == 1
    approved = control.order(loan.order_no)
    assert approved["status"] == 100
    api.data("push-bind-bank", loan.bind_bank())
    api.data("push-order-confirm", loan.confirm())
    control.transition(loan.order_no, "disburse")
    code = api.data("get-repay-detail", loan.repay_detail())["repay_code"]
    assert control.pay(code)["order_status"] == 200
    assert [o["order_no"] for o in control.orders(partner="demo", status=200)] == [loan.order_no]
    assert control.set_clock("2030-01-01T00:00:00+07:00")["now"].startswith("2030-01-01")
    assert control.clock()["now"].startswith("2030-01-01")
    paths = [c["path"] for c in control.callbacks(order_no=loan.order_no)]
    assert paths[0] == "/callback-order-status" and "/callback-repay-plan" in paths
    assert control.journal(path="push-basic-info")[0]["request"] == loan.basic_info()
    assert control.reset_all()["orders_deleted"] == 1
    assert control.orders() == []


def test_control_partners_faults_and_errors(control):
    team = control.create_partner(name="Team B")
    assert control.partner(team["partner_token"], secrets=True)["aes_key"] == team["aes_key"]
    assert control.update_partner(team["partner_token"], name="B")["name"] == "B"
    assert any(p["partner_token"] == "demo" for p in control.partners())
    control.set_faults({"kind": "business_error", "path": "/get-loan-precheck", "count": 1})
    assert len(control.faults()["rules"]) == 1
    control.clear_faults()
    assert control.faults()["rules"] == []
    assert control.clear_journal()["deleted"] >= 0
    with pytest.raises(ControlAPIError) as e:
        control.order("NOSUCHORDER1")
    assert (e.value.http_status, e.value.error) == (404, "order_not_found")
    with pytest.raises(ControlAPIError) as e:
        control.transition("NOSUCHORDER1", "fly")
    assert e.value.http_status == 400 and "fly" in e.value.message
