"""`lender-sandbox demo`: the whole aggregator flow, in process and against a server."""

from __future__ import annotations

import re
import socket

from click.testing import CliRunner
from starlette.testclient import TestClient

from sandbox import cli
from sandbox.harness import demo
from sandbox.services.config import load_settings
from sandbox.web.app import create_app

LOCAL = "http://localhost"  # a loopback sandbox answers loopback Host names only


def run(*args: str):
    return CliRunner().invoke(cli.main, ["demo", *args])


def test_in_process_flow_settles_and_shows_the_rejection():
    result = run("--seed", "unit")
    assert result.exit_code == 0, result.output
    out = result.output
    steps = re.findall(r"^\[(\d+)/(\d+)\] (.+?) \.\.\. ok", out, flags=re.M)
    total = int(steps[0][1])
    assert [int(n) for n, _, _ in steps] == list(range(1, total + 1)) and total >= 22
    assert "get-order-status: settled ... ok  (order_status 200)" in out
    assert "settled (status 200)" in out
    assert "(code 11007 as expected)" in out and '"code":11007' in out
    assert '"order_status":110' in out
    assert "\x1b[" not in out  # colours only on a terminal


def test_each_step_prints_the_request_and_the_decrypted_answer():
    out = run("--seed", "pretty", "--pretty").output
    first = out.split("[1/")[1].split("[2/")[0]
    assert '  > {\n  "product_id": "1001"' in first
    assert '  < {\n  "code": 0' in first and '"loan_range"' in first


def test_same_seed_same_borrowers():
    a, b = run("--seed", "same").output, run("--seed", "same").output
    names = lambda out: re.findall(r'"user_name":"([^"]+)"', out)  # noqa: E731
    assert names(a) == names(b) and names(a)


def test_a_wrong_key_fails_the_first_step_with_exit_1():
    result = run("--key", "wrong-key-123456", "--iv", "wrong-iv-1234567")
    assert result.exit_code == 1
    assert "[1/" in result.output and "FAILED" in result.output
    assert "10003" in result.output or "10004" in result.output


def test_no_server_at_the_url_is_a_clear_exit_1():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run("--url", f"http://127.0.0.1:{port}")
    assert result.exit_code == 1
    assert "cannot start" in result.output and "lender-sandbox serve" in result.output


def test_remote_flavour_over_http_uses_the_control_api(capsys):
    settings = load_settings(
        overrides={"database": {"url": "sqlite://"}, "clock": {"mode": "manual"}}, env={}
    )
    with TestClient(create_app(settings, background=False), base_url=LOCAL) as http:
        code = demo.run(url=LOCAL, seed="remote", http=http)
        journal = http.get("/sandbox/journal?limit=1000").json()
    out = capsys.readouterr().out
    assert code == 0, out
    assert "settled (status 200)" in out
    paths = {e["path"] for e in journal}
    assert {"/push-order-confirm", "/get-delay-list", "/get-repay-detail"} <= paths
