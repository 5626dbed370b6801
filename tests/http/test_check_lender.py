"""`check-lender` (sandbox.harness.check_lender) against the sandbox itself, in-process over
the ASGI app: no deviation from the sandbox, and each fault rule shows up as a deviation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import IV, KEY, TODAY, TOKEN, settings_for
from starlette.testclient import TestClient

from sandbox.client import LenderClient
from sandbox.harness.check_lender import DEVIATION, NOTE, OK, Borrower, LenderCheck, check_lender
from sandbox.services.lender import create_lender
from sandbox.web.app import create_app

LOCAL = "http://localhost"  # a loopback sandbox answers loopback Host names only


@pytest.fixture(scope="module")
def http() -> Iterator[TestClient]:
    """A sandbox whose clock runs 2000x: the review (2 min) and payout (1 min) of a flow pass
    in a fraction of a second of polling."""
    settings = settings_for(clock={"mode": "scaled", "rate": 2000})
    lender = create_lender(settings)
    with TestClient(
        create_app(settings, lender=lender, background=False), base_url=LOCAL
    ) as client:
        yield client
    lender.store.dispose()


@pytest.fixture(autouse=True)
def no_faults(http: TestClient) -> Iterator[None]:
    yield
    http.delete("/sandbox/faults")


def run(http: TestClient, flow: bool = False, key: str = KEY, **kw) -> LenderCheck:
    client = LenderClient("http://testserver", TOKEN, key, IV, http=http)
    return check_lender(client, today=TODAY, flow=flow, poll_interval=0.05, timeout=10, **kw)


def steps(result: LenderCheck, level: str) -> list[str]:
    return [f.step for f in result.findings if f.level == level]


def test_the_sandbox_itself_shows_no_deviation(http) -> None:
    result = run(http)
    assert result.deviations == [], result.text()
    assert steps(result, OK) == [
        "02 /get-loan-precheck",
        "03 /get-loan-amount",
        "04 /get-loan-interest",
        "07 /get-bank-list (banks)",
        "07 /get-bank-list (methods)",
        "errors: unknown partner",
        "errors: undecryptable",
        "errors: missing field",
        "errors: unknown order",
    ]
    assert not http.get("/sandbox/orders").json()  # nothing was created
    assert result.text().endswith("No deviation from the specification.")


def test_a_whole_loan_against_the_sandbox_shows_no_deviation(http) -> None:
    borrower = Borrower.make(today=TODAY, seed="check-lender-flow")
    result = run(http, flow=True, borrower=borrower, order_no="CHKFLOW0000000001")
    assert result.deviations == [] and steps(result, NOTE) == [], result.text()
    walked = steps(result, OK)
    for number in ("05", "06", "08", "09", "10", "11", "14", "15", "16", "17", "18"):
        assert any(s.startswith(number + " ") for s in walked), number
    order = http.get(f"/sandbox/orders/CHKFLOW0000000001?partner_token={TOKEN}").json()
    assert order["status"] == 170 and order["user_mobile"] == borrower.mobile


@pytest.mark.parametrize(
    "rule,step,fragment",
    [
        (
            {"path": "/get-loan-interest", "kind": "malformed", "style": "php_notice"},
            "04 /get-loan-interest",
            "the answer is not JSON (HTTP 200): '<br />",
        ),
        (
            {"path": "/get-bank-list", "kind": "business_error"},
            "07 /get-bank-list (banks)",
            "answered code 10011",
        ),
        (
            {"path": "/get-loan-amount", "kind": "http_error", "status": 502},
            "03 /get-loan-amount",
            "the answer is not JSON (HTTP 502)",
        ),
        # 02 accepted the borrower, so 04 refusing the amount 02 offered is no borrower's refusal
        (
            {"path": "/get-loan-interest", "kind": "business_error", "code": 10099},
            "04 /get-loan-interest",
            "answered code 10099",
        ),
    ],
    ids=["malformed", "business_error", "http_error", "refusal_after_02"],
)
def test_a_fault_rule_is_reported_as_a_deviation(http, rule, step, fragment) -> None:
    assert http.put("/sandbox/faults", json={"partner_token": TOKEN, **rule}).status_code == 200
    result = run(http)
    assert [d.step for d in result.deviations][:1] == [step], result.text()
    assert fragment in result.deviations[0].message
    assert result.deviations[0].rule.startswith("docs/protocol.md")


def test_with_a_wrong_key_02_and_03_are_refused_and_07_deviates(http) -> None:
    result = run(http, key="Not-the-key-1234")
    refusals = [f for f in result.findings if f.step.startswith(("02", "03"))]
    # 02/03 may refuse a borrower (a note); 07 has nobody to refuse (a deviation)
    assert [f.level for f in refusals] == [NOTE, NOTE]
    assert [d.step for d in result.deviations] == [
        "07 /get-bank-list (banks)",
        "07 /get-bank-list (methods)",
    ]
    assert all("code 1000" in f.message for f in refusals + result.deviations)
    assert steps(result, OK)[-1] == "errors: unknown order"  # refusals keep the protocol shape


def test_a_flow_that_cannot_go_on_says_why(http) -> None:
    rejected = Borrower.make(today=TODAY, seed="check-lender-rejected", mobile="81299887003")
    result = run(http, flow=True, borrower=rejected)
    assert result.findings[-1].step == "flow" and result.findings[-1].level == NOTE
    assert "the review answered 110" in result.findings[-1].message
    assert result.deviations == []


def test_findings_as_json(http) -> None:
    doc = run(http).as_json()
    assert doc["deviations"] == 0 and doc["partner_token"] == TOKEN
    assert {f["level"] for f in doc["findings"]} == {OK}
    assert set(doc["findings"][0]) == {"step", "level", "message", "rule"}
    assert DEVIATION not in [f["level"] for f in doc["findings"]]
