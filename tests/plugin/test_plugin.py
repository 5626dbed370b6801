"""The pytest plugin, used as a user would: test files run by `pytester` in a fresh folder.

The plugin is found through its `pytest11` entry point, as in any project that installs
lender-sandbox. Inner runs treat warnings as errors too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# Inline pytester runs forget the modules an inner run imported; importing the harness here
# keeps one copy (re-importing the cryptography bindings in one process fails).
import sandbox.harness.liveserver
import sandbox.testing  # noqa: F401

pytest_plugins = ["pytester"]
REPO_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

FLOW = """
def apply(sandbox, api, scenario):
    loan = sandbox.sample_order(scenario=scenario)
    api.data("get-loan-precheck", loan.precheck())
    api.data("push-basic-info", loan.basic_info())
    api.data("push-supplement-info", loan.supplement_info())
    return loan
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-W", "error", "-p", "no:cacheprovider", *args)


def test_happy_path_to_settlement(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        FLOW
        + """
def test_loan_lifecycle(lender_sandbox):
    sandbox, api = lender_sandbox, lender_sandbox.client()
    loan = apply(sandbox, api, "approve")
    assert sandbox.callbacks.received("callback-order-status")[-1]["order_status"] == 90

    sandbox.clock.advance(hours=1)
    approval = api.data("get-approval-result", loan.order())
    assert approval["order_status"] == 100
    assert sandbox.callbacks.received("callback-approval-result")[-1] == approval

    api.data("push-bind-bank", loan.bind_bank())
    api.data("push-order-confirm", loan.confirm(approval["approval_amount"]))
    sandbox.clock.advance(hours=1)
    plan = api.data("get-repay-plan", loan.order())
    assert plan["order_status"] == 170

    sandbox.clock.advance(days=7)
    code = api.data("get-repay-detail", loan.repay_detail())
    assert code["repay_amount"] == plan["repay_amount"]
    sandbox.pay(code["repay_code"])
    assert sandbox.wait_for(loan.order_no, 200)["status_name"] == "settled"

    statuses = [c["order_status"] for c in sandbox.callbacks.received("callback-order-status")]
    assert statuses == [90, 100, 170, 200]
    assert sandbox.callbacks.received("callback-repay-plan")[-1]["order_status"] == 200
    assert sandbox.journal.last("push-basic-info").get("order_info.order_no") == loan.order_no
"""
    )
    run(pytester).assert_outcomes(passed=1)


def test_each_test_gets_a_fresh_sandbox_from_one_template(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        FLOW
        + """
import pytest

templates = set()

@pytest.mark.parametrize("round", range(3))
def test_fresh(lender_sandbox, round):
    templates.add(id(lender_sandbox.template))
    assert lender_sandbox.orders() == []
    assert lender_sandbox.journal.entries() == []
    assert lender_sandbox.callbacks.received() == []
    start = lender_sandbox.clock.now
    apply(lender_sandbox, lender_sandbox.client(), "approve")
    lender_sandbox.clock.advance(days=round + 1)
    assert lender_sandbox.orders()[0]["status"] == 100

def test_one_template_per_session():
    assert len(templates) == 1
"""
    )
    run(pytester).assert_outcomes(passed=4)


def test_wait_for_explains_a_manual_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        FLOW
        + """
def test_forgot_to_advance(lender_sandbox):
    loan = apply(lender_sandbox, lender_sandbox.client(), "approve")
    lender_sandbox.wait_for(loan.order_no, status=100)
"""
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*WaitError: order * is 90 (reviewing), not 100 (approved)*clock.advance(minutes=2)*"]
    )


def test_settings_from_a_config_file(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", slow_review='[lifecycle]\nreview_delay = "1d"\n')
    pytester.makepyfile(
        FLOW
        + """
def test_review_takes_a_day(lender_sandbox):
    loan = apply(lender_sandbox, lender_sandbox.client(), "approve")
    lender_sandbox.clock.advance(hours=23)
    assert lender_sandbox.order(loan.order_no)["status"] == 90
    lender_sandbox.clock.advance(hours=1)
    assert lender_sandbox.order(loan.order_no)["status"] == 100
"""
    )
    run(pytester, "--lender-sandbox-config", "slow_review.toml").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nlender_sandbox_config = slow_review.toml\n")
    run(pytester).assert_outcomes(passed=1)


def test_overriding_the_template_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
import pytest
from sandbox.testing import Template

@pytest.fixture(scope="session")
def lender_sandbox_template():
    template = Template(overrides={"responses": {"message_key": "both"}},
                        start="2026-01-05T09:00:00+07:00")
    yield template
    template.close()
""")
    pytester.makepyfile("""
from datetime import date

def test_custom(lender_sandbox):
    assert lender_sandbox.clock.now.date() == date(2026, 1, 5)
    loan = lender_sandbox.sample_order()
    doc = lender_sandbox.client().call("get-loan-precheck", loan.precheck())
    assert doc["message"] == doc["msg"] == "success"
""")
    run(pytester).assert_outcomes(passed=1)


def test_the_intercept_option_serves_the_code_under_test(pytester: pytest.Pytester) -> None:
    """ini `lender_sandbox_intercept`, and the fixture of that name overridden in a module."""
    pytester.makeini("[pytest]\nlender_sandbox_intercept =\n    https://lender.example.id/api\n")
    pytester.makepyfile(
        test_ini="""
import requests
from respx.mocks import HTTPCoreMocker
from sandbox.client import LenderClient

def test_ini(lender_sandbox):
    c = lender_sandbox.partner
    loan = lender_sandbox.sample_order()
    url = "https://lender.example.id/api"
    with LenderClient(url, c.partner_token, c.aes_key, c.aes_iv) as api:
        assert api.data("get-loan-precheck", loan.precheck())["is_reloan"] == 0
    r = requests.post(url + "/get-loan-precheck", json={})
    assert r.json()["code"] != 0
    assert [e.path for e in lender_sandbox.journal.entries()] == ["/get-loan-precheck"] * 2

def test_the_interception_ends_with_the_test():
    assert HTTPCoreMocker.routers == []
"""
    )
    pytester.makepyfile(
        test_override="""
import httpx
import pytest

@pytest.fixture
def lender_sandbox_intercept():
    return ["http://other-lender.test"]

def test_override(lender_sandbox):
    assert httpx.post("http://other-lender.test/get-loan-precheck", json={}).status_code == 200
    assert len(lender_sandbox.journal.entries()) == 1
"""
    )
    run(pytester).assert_outcomes(passed=3)


def test_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--fixtures")
    # pytest lists fixtures sorted by "file:line" text, so each is checked on its own
    for fixture in (
        ["*lender_sandbox_template*", "*Settings and a seeded store*"],
        ["lender_sandbox -- *", "*fresh in-process sandbox*"],
        ["lender_sandbox_intercept -- *", "*Base URLs your code calls the lender at*"],
        ["*lender_sandbox_server_session*"],
        ["lender_sandbox_server -- *", "*reset for this test*"],
    ):
        result.stdout.fnmatch_lines(fixture)
    run(pytester, "--help").stdout.fnmatch_lines(
        ["*--lender-sandbox-config=FILE*", "*lender_sandbox_intercept*"]
    )


def test_server_fixture_over_real_http(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        FLOW
        + """
import httpx

def test_real_server(lender_sandbox_server):
    server = lender_sandbox_server
    assert httpx.get(server.base_url + "/sandbox/health").json()["status"] == "ok"
    assert server.partner.partner_token == "demo"
    api = server.client()
    loan = apply(server, api, "approve")
    server.callbacks.fail_next(1)  # the approval's callbacks: the first try is refused
    server.clock.advance(minutes=30)
    server.wait_for(loan.order_no, status=100, callback="acknowledged", timeout=10)
    approval = api.data("get-approval-result", loan.order())
    api.data("push-bind-bank", loan.bind_bank())
    api.data("push-order-confirm", loan.confirm(approval["approval_amount"]))
    server.clock.advance(minutes=30)
    server.wait_for(loan.order_no, status=170, callback="acknowledged", timeout=10)
    statuses = server.callbacks.wait_for(3, "callback-order-status")
    assert [c["order_status"] for c in statuses] == [90, 100, 170]
    assert [r.outcome for r in server.callbacks.records()].count("failed") == 1
    assert server.journal.last("push-basic-info").get("order_info.order_no") == loan.order_no

def test_state_is_reset_between_tests(lender_sandbox_server):
    assert lender_sandbox_server.orders() == []
    assert lender_sandbox_server.callbacks.records() == []
    assert lender_sandbox_server.journal.entries() == []
    assert lender_sandbox_server.control.partner("demo")["callback_url"] == \\
        lender_sandbox_server.callbacks.url
"""
    )
    run(pytester).assert_outcomes(passed=2)


def test_server_fixture_runs_with_the_config_file(pytester: pytest.Pytester) -> None:
    """[server], [fixtures] (relative to the file) and the rest reach the live server; it still
    binds 127.0.0.1 on a free port and, naming no database, keeps one of its own."""
    folder = pytester.path / "sandbox-config"
    shutil.copytree(REPO_FIXTURES, folder / "my-fixtures")
    with open(folder / "my-fixtures" / "partners.toml", "a", encoding="utf-8") as f:
        f.write(
            '\n[[partners]]\npartner_token = "acme"\naes_key = "acme-key-0123456"\n'
            'aes_iv = "acme-iv-01234567"\n'
        )
    (folder / "sandbox.toml").write_text(
        '[server]\nhost = "0.0.0.0"\nport = 1\nadmin_token = "s3cret"\n'
        '[fixtures]\ndir = "my-fixtures"\n[lifecycle]\nreview_delay = "1d"\n',
        "utf-8",
    )
    pytester.makepyfile(
        FLOW
        + """
import httpx

def test_configured_server(lender_sandbox_server):
    server = lender_sandbox_server
    assert server.base_url.startswith("http://127.0.0.1:") and not server.base_url.endswith(":1")
    assert httpx.get(server.base_url + "/sandbox/partners").status_code == 401  # admin_token
    assert {p["partner_token"] for p in server.control.partners()} == {"demo", "acme"}
    loan = apply(server, server.client("acme"), "approve")
    server.clock_for("acme").advance(hours=23)
    assert server.order(loan.order_no, "acme")["status"] == 90
    server.clock_for("acme").advance(hours=1)
    assert server.order(loan.order_no, "acme")["status"] == 100
    assert server.server.database_url == f"sqlite:///{server.server.workdir / 'sandbox.db'}"
"""
    )
    # In a subprocess: the inner run starts its own server process and must not share this
    # interpreter's state with the in-process runs before it.
    result = pytester.runpytest_subprocess(
        "-W",
        "error",
        "-p",
        "no:cacheprovider",
        "--lender-sandbox-config",
        "sandbox-config/sandbox.toml",
    )
    result.assert_outcomes(passed=1)
