"""The command line against a real server (`lender_sandbox_server`): orders, trigger, pay,
callbacks, encrypt/decrypt for a partner that exists only there, `listen` forwarding to a
developer's handler, and `demo --url` on a partner of its own."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from sandbox import cli
from sandbox.core import crypto
from sandbox.harness.listen import Forwarder, Listener
from sandbox.harness.sink import CallbackSink
from sandbox.testing import SampleOrder


def run(server, *args: str, input: str | None = None):
    return CliRunner().invoke(cli.main, [*args, "--url", server.base_url], input=input)


def approved(server) -> SampleOrder:
    """An order of the demo partner, reviewed and approved (100)."""
    api, loan = server.client(), server.sample_order(scenario="approve")
    api.data("push-basic-info", loan.basic_info())
    api.data("push-supplement-info", loan.supplement_info())
    server.clock.advance(minutes=5)
    return loan


def disbursed(server) -> tuple[SampleOrder, str]:
    """An order paid out (170) and a full-repayment code from 15."""
    api, loan = server.client(), approved(server)
    api.data("push-bind-bank", loan.bind_bank())
    api.data("push-order-confirm", loan.confirm())
    server.clock.advance(minutes=5)
    return loan, api.data("get-repay-detail", loan.repay_detail(1))["repay_code"]


# ---- orders, trigger, pay ----


def test_orders_ls_and_show(lender_sandbox_server):
    server = lender_sandbox_server
    loan = approved(server)
    listed = run(server, "orders", "ls")
    assert listed.exit_code == 0, listed.output
    assert re.search(rf"^{loan.order_no}\s+100 approved\s", listed.output, re.M)
    as_json = json.loads(run(server, "orders", "ls", "--json", "--status", "100").output)
    assert [o["order_no"] for o in as_json] == [loan.order_no]
    shown = run(server, "orders", "show", loan.order_no)
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert f"{loan.order_no}  100 approved" in out
    assert re.search(r"created\s+80 new\s+create\s+05 push-basic-info", out)  # not "None"
    assert "due event: review" in out and "allowed triggers: bind_card, confirm, disburse" in out
    assert "approval_expiry" in out  # the pending event
    missing = run(server, "orders", "show", "NOPE-1")
    assert missing.exit_code == 1 and "HTTP 404" in missing.output


def test_trigger_forces_a_transition_or_says_what_is_allowed(lender_sandbox_server):
    server = lender_sandbox_server
    loan = approved(server)
    done = run(server, "trigger", loan.order_no, "cancel")
    assert done.exit_code == 0, done.output
    assert "100 approved -> 161 cancelled (cancel)" in done.output
    assert server.order(loan.order_no)["status"] == 161
    refused = run(server, "trigger", loan.order_no, "approve")
    assert refused.exit_code == 1 and "HTTP 409" in refused.output
    assert "none (final)" in refused.output


def test_pay_settles_with_a_code_from_15(lender_sandbox_server):
    server = lender_sandbox_server
    loan, code = disbursed(server)
    paid = run(server, "pay", code)
    assert paid.exit_code == 0, paid.output
    assert f"for order {loan.order_no} of demo: now 200 settled" in paid.output
    again = run(server, "pay", code)
    assert again.exit_code == 1 and "payment_rejected" in again.output


# ---- callbacks ----


def test_callbacks_ls_show_and_redeliver(lender_sandbox_server):
    server = lender_sandbox_server
    server.callbacks.fail_next(1)  # the first callback is refused once, then retried
    loan = approved(server)
    server.wait_for(loan.order_no, 100, callback="acknowledged")
    listed = run(server, "callbacks", "ls", "--order", loan.order_no)
    assert listed.exit_code == 0, listed.output
    assert "created (virtual)" in listed.output and "delivered (wall)" in listed.output
    first = json.loads(run(server, "callbacks", "ls", "--json").output)[0]
    assert first["path"] == "/callback-order-status" and first["state"] == "delivered"
    shown = run(server, "callbacks", "show", str(first["id"]))
    assert shown.exit_code == 0, shown.output
    assert "attempt 1 at" in shown.output and "HTTP 500" in shown.output
    assert "attempt 2 at" in shown.output and '"order_status": 90' in shown.output
    assert "sink told to fail" in shown.output  # the receiver's answer, as it came
    before = len(server.callbacks.received("callback-order-status"))
    again = run(server, "callbacks", "redeliver", str(first["id"]))
    assert again.exit_code == 0, again.output and again.output.startswith(f"#{first['id']}")
    server.callbacks.wait_for(before + 1, "callback-order-status")
    assert run(server, "callbacks", "show", "999999").exit_code == 1


# ---- encrypt / decrypt with a partner of the server ----


def test_encrypt_and_decrypt_for_a_partner_that_exists_only_on_the_server(lender_sandbox_server):
    server = lender_sandbox_server
    creds = server.new_partner(name="Team B")
    enc = run(server, "encrypt", "--partner", creds.partner_token, input='{"a":1}')
    assert enc.exit_code == 0, enc.output
    assert crypto.decrypt(enc.stdout.strip(), creds.aes_key, creds.aes_iv) == b'{"a":1}'
    dec = run(server, "decrypt", "--partner", creds.partner_token, input=enc.stdout)
    assert dec.exit_code == 0 and dec.stdout == '{"a":1}\n'
    unknown = run(server, "encrypt", "--partner", "nobody-here", input="{}")
    assert unknown.exit_code == 1 and "unknown_partner" in unknown.output
    no_partner = run(server, "encrypt", input="{}")
    assert no_partner.exit_code == 2 and "give --partner too" in no_partner.output


# ---- listen ----


@pytest.fixture
def handler(lender_sandbox_server) -> Iterator[CallbackSink]:
    """The developer's own callback handler: a receiver with the demo partner's key."""
    c = lender_sandbox_server.partner
    with CallbackSink(c.aes_key, c.aes_iv) as sink:
        yield sink


def test_listener_relays_to_the_handler_and_restores_the_url(lender_sandbox_server, handler):
    server = lender_sandbox_server
    before = server.control.partner("demo")["callback_url"]
    seen = []
    with Listener(
        server.control, "demo", forward_to=handler.url + "/hooks", on_record=seen.append
    ) as listener:
        assert server.control.partner("demo")["callback_url"] == listener.url
        handler.fail_next(1)  # the handler's refusal goes back to the sandbox: it retries
        loan = approved(server)
        server.wait_for(loan.order_no, 100, callback="acknowledged")
    assert server.control.partner("demo")["callback_url"] == before
    got = handler.records("/hooks/callback-order-status")
    assert [r.outcome for r in got] == ["failed", "ok", "ok"]
    assert got[0].raw == seen[0].raw  # the body as the sandbox sent it: the envelope
    assert json.loads(got[0].raw)["partner_token"] == "demo"
    assert [r.body["order_status"] for r in seen if r.path == "/callback-order-status"] == [
        90,
        90,
        100,
    ]
    assert seen[0].status == 500 and seen[0].answer == got[0].answer  # relayed as it came
    attempts = server.control.callbacks("demo", loan.order_no)[0]["attempt_log"]
    assert [a["status_code"] for a in attempts] == [500, 200]


def test_forwarder_says_when_the_handler_is_down():
    forward = Forwarder("http://127.0.0.1:9", timeout=2)
    status, text = forward("/callback-order-status", b"{}", {})
    forward.close()
    assert status == 502 and "cannot reach http://127.0.0.1:9/callback-order-status" in text
    with pytest.raises(ValueError):
        Forwarder("localhost:3000")


def test_listen_command_prints_forwards_and_restores_on_ctrl_c(lender_sandbox_server, handler):
    server = lender_sandbox_server
    before = server.control.partner("demo")["callback_url"]
    command = ["listen", "--url", server.base_url, "--forward-to", handler.url]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        ready = proc.stderr.readline()  # type: ignore[union-attr]
        assert ready.startswith("Ready: callbacks of demo come to http://127.0.0.1:"), ready
        assert f"(was: {before})" in ready and f"forwarding to {handler.url}" in ready
        loan = approved(server)
        server.wait_for(loan.order_no, 100, callback="acknowledged")
        lines = _read_lines(proc, 4)  # two callbacks: what came, and the handler's answer
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "--> " in lines[0] and "callback-order-status" in lines[0]
    assert '"order_status": 90' in lines[0]
    assert lines[1].startswith(f"<-- [200] POST {handler.url}/callback-order-status")
    assert '"code": 0' in lines[1] or '"code":0' in lines[1]
    assert f"Stopped: callback_url of demo is {before} again." in err
    assert server.control.partner("demo")["callback_url"] == before
    assert len(handler.received("callback-order-status")) == 2


def _read_lines(proc: subprocess.Popen, n: int, timeout: float = 15.0) -> list[str]:
    """`n` lines of the process's stdout, or fail after `timeout` (no hanging test)."""
    lines: list[str] = []

    def read() -> None:
        while len(lines) < n:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                return
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert len(lines) >= n, f"got only {lines}"
    return lines


def test_listen_refuses_an_address_the_sandbox_cannot_call(lender_sandbox_server):
    result = run(lender_sandbox_server, "listen", "--host", "0.0.0.0")
    assert result.exit_code == 2 and "give --public-url too" in result.output


# ---- demo ----


def test_demo_url_plays_on_a_partner_of_its_own_and_shows_its_callbacks(lender_sandbox_server):
    server = lender_sandbox_server
    demo_clock = server.clock.state()["now_unix"]
    partners_before = {p["partner_token"] for p in server.control.partners()}
    result = CliRunner().invoke(cli.main, ["demo", "--url", server.base_url, "--seed", "own"])
    assert result.exit_code == 0, result.output
    new = {p["partner_token"] for p in server.control.partners()} - partners_before
    assert len(new) == 1
    token = new.pop()
    assert f"a new partner of its own, {token}" in result.output
    assert abs(server.clock.state()["now_unix"] - demo_clock) < 60  # demo's clock not moved
    shown = re.findall(r"^  callback (callback-[a-z-]+) (\{.*\})$", result.output, re.M)
    assert ("callback-order-status", 90) in {(p, json.loads(b)["order_status"]) for p, b in shown}
    assert len(shown) == len(server.control.callbacks(token))
    assert "(pending" not in result.output  # the demo's own receiver acknowledged them
    assert server.control.partner(token)["callback_url"] == ""  # its receiver is gone
