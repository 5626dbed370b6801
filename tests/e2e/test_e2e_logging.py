"""What `serve` prints: no state-machine chatter, an access log only when asked for."""

from __future__ import annotations

import logging

from sandbox.core import lifecycle
from sandbox.harness.liveserver import LiveServer


def flow(server) -> str:
    """Create an order and move it twice, then the server's output."""
    api, loan = server.client(), server.sample_order(scenario="approve")
    api.data("push-basic-info", loan.basic_info())
    api.data("push-supplement-info", loan.supplement_info())
    server.clock.advance(minutes=5)
    return server.server.log()


def test_the_server_logs_no_transition_chatter_and_no_access_lines(lender_sandbox_server):
    log = flow(lender_sandbox_server)
    assert "Lender Sandbox ready on" in log  # the banner is there: the log is read
    assert "Finished processing state" not in log and "transitions" not in log
    assert "POST /push-basic-info" not in log


def test_the_access_log_is_a_setting():
    with LiveServer({"server": {"access_log": True}}) as server:
        server.request("GET", "/sandbox/health")
        server.request("POST", "/get-loan-precheck", json={})
        server.stop()  # flushes the log
        log = server.log()
    assert '"GET /sandbox/health HTTP/1.1" 200' in log
    assert '"POST /get-loan-precheck HTTP/1.1" 200' in log


def test_transitions_logs_only_warnings_wherever_the_machine_runs(caplog):
    caplog.set_level(logging.DEBUG)
    lifecycle.fire(lifecycle.Status.NEW, "submit")
    assert not [r for r in caplog.records if r.name.startswith("transitions")]
