"""The acceptance report from the harness (`Sandbox.conformance()`, `ServerSandbox.conformance()`)
and the command line (`lender-sandbox conformance`, `lender-sandbox check-lender`) against a
real `lender-sandbox serve` process."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from click.testing import CliRunner

from sandbox import cli
from sandbox.core.crypto import Codec, php_json_encode


def walk_to_payout(sandbox) -> None:
    api = sandbox.client()
    loan = sandbox.sample_order(scenario="approve")
    api.data("get-loan-precheck", loan.precheck())
    api.data("push-basic-info", loan.basic_info())
    api.data("push-supplement-info", loan.supplement_info())
    sandbox.clock.advance(minutes=5)
    approval = api.data("get-approval-result", loan.order())
    api.data("push-bind-bank", loan.bind_bank())
    api.data("push-order-confirm", loan.confirm(approval["approval_amount"]))
    sandbox.clock.advance(minutes=5)


def test_in_process_report(sb) -> None:
    walk_to_payout(sb)
    report = sb.conformance()
    assert report.ok and not report.complete and report.status == "incomplete"
    assert report.check("envelope.decrypts")["status"] == "pass"
    assert report.check("scenario.approval")["status"] == "pass"
    assert report.check("callbacks.acknowledged")["status"] == "pass"
    # in-process requests carry no HTTP headers
    assert report.check("envelope.content_type")["status"] == "untested"
    assert "envelope.content_type" in report.untested
    report.assert_ok()
    with pytest.raises(AssertionError, match=r"UNTESTED envelope\.content_type"):
        report.assert_ok(strict=True)
    with pytest.raises(KeyError, match="no check 'nope'"):
        report.check("nope")


def test_in_process_failure_and_reset(sb) -> None:
    api = sb.client()
    loan = sb.sample_order(scenario="reject_precheck")
    assert api.call("get-loan-precheck", loan.precheck())["code"] == 11007
    assert api.call("push-basic-info", loan.basic_info())["code"] == 11007
    report = sb.conformance()
    assert report.failed == ["refusals.respected"]
    with pytest.raises(AssertionError, match=r"FAIL     refusals\.respected"):
        report.assert_ok()
    started = sb.reset_conformance()
    assert started["partner_token"] == "demo" and started["orders_kept"] == 0
    assert sb.conformance().failed == [] and sb.conformance().doc["run"]["requests"] == 0
    assert len(sb.journal.entries()) == 2  # the journal is kept


def wrong_key_precheck(server) -> None:
    body = php_json_encode(
        {
            "partner_token": "demo",
            "encode_data": Codec("Wrong-key-123456", server.partner.aes_iv).encrypt_json(
                {"product_id": "1001"}
            ),
        }
    )
    r = httpx.post(
        server.base_url + "/get-loan-precheck",
        content=body,
        headers={"content-type": "application/json"},
        trust_env=False,
    )
    assert r.json()["code"] in (10003, 10004)


def run(*args: str):
    return CliRunner().invoke(cli.main, list(args))


def test_server_report_and_the_cli_gate(lender_sandbox_server) -> None:
    server = lender_sandbox_server
    walk_to_payout(server)
    wrong_key_precheck(server)
    report = server.conformance()
    assert report.failed == ["envelope.decrypts"]
    assert report.check("envelope.content_type")["status"] == "pass"
    evidence = report.check("envelope.decrypts")["evidence"][0]
    assert f"{server.base_url}{evidence['link']}" in str(report)
    assert server.control.journal_entry(evidence["id"])["code"] in (10003, 10004)

    failing = run("conformance", "--url", server.base_url)
    assert failing.exit_code == 1, failing.output
    assert "FAIL     envelope.decrypts" in failing.output
    as_json = run("conformance", "--url", server.base_url, "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.output)["summary"]["fail"] == 1

    reset = run("conformance", "--url", server.base_url, "--reset")
    assert reset.exit_code == 0 and "new acceptance run for demo" in reset.output
    assert "1 orders kept" in reset.output
    passing = run("conformance", "--url", server.base_url)
    assert passing.exit_code == 0 and "INCOMPLETE: 0 pass, 0 fail, 23 untested" in passing.output
    strict = run("conformance", "--url", server.base_url, "--strict")
    assert strict.exit_code == 1


def test_check_lender_cli_against_a_real_server(lender_sandbox_server) -> None:
    server, p = lender_sandbox_server, lender_sandbox_server.partner
    result = run(
        "check-lender",
        server.base_url,
        "--token",
        p.partner_token,
        "--key",
        p.aes_key,
        "--iv",
        p.aes_iv,
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("No deviation from the specification.")
    server.control.set_faults({"path": "/get-loan-precheck", "kind": "malformed"})
    broken = run(
        "check-lender",
        server.base_url,
        "--token",
        p.partner_token,
        "--key",
        p.aes_key,
        "--iv",
        p.aes_iv,
        "--json",
    )
    assert broken.exit_code == 1
    doc = json.loads(broken.output)
    deviating = [f["step"] for f in doc["findings"] if f["level"] == "deviation"]
    # 02 itself and the three error probes sent to 02
    assert doc["deviations"] == 4 and deviating == [
        "02 /get-loan-precheck",
        "errors: unknown partner",
        "errors: undecryptable",
        "errors: missing field",
    ]


@pytest.fixture
def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_nothing_listening_is_exit_2(closed_url) -> None:
    report = run("conformance", "--url", closed_url)
    assert report.exit_code == 2 and "no sandbox answers at" in report.output
    check = run("check-lender", closed_url, "--token", "t", "--key", "k", "--iv", "i")
    assert check.exit_code == 2 and "no lender answers at" in check.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["ftp://x", "--token", "t", "--key", "k", "--iv", "i"], "an http(s) base URL"),
        (
            ["http://x", "--token", "t", "--key", "k", "--iv", "i", "--mobile", "0812345678"],
            "starts with 8",
        ),
        (["http://x", "--token", "t", "--key", "k", "--iv", "i", "--nik", "123"], "16 digits"),
        (["http://x", "--key", "k", "--iv", "i"], "Missing option '--token'"),
    ],
)
def test_check_lender_refuses_bad_options(args, message) -> None:
    result = run("check-lender", *args)
    assert result.exit_code == 2 and message in result.output


def test_an_unknown_partner_is_exit_2(lender_sandbox_server) -> None:
    result = run("conformance", "--url", lender_sandbox_server.base_url, "--partner", "nobody")
    assert result.exit_code == 2 and "unknown_partner" in result.output
