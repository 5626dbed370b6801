"""A real `serve` process as staging runs it: JSON logs with an access line per request and
its id, /metrics and /sandbox/health over the network, retention by the scheduler."""

from __future__ import annotations

import json
import time

from prometheus_client.parser import text_string_to_metric_families

from sandbox.client import LenderClient
from sandbox.harness.liveserver import LiveServer

KEY, IV = "Loan@apis#123456@", "loan#654321@apis"  # the demo partner's
STAGING = {
    "server": {"access_log": True, "log_format": "json"},
    "scheduler": {"tick": 0.1},
    "journal": {"max_rows_per_partner": 3, "prune_every": 0.3},
}


def test_a_staging_process_logs_json_counts_and_prunes() -> None:
    with LiveServer(STAGING) as server:
        with LenderClient(server.base_url, "demo", KEY, IV) as api:
            for action_type in (1, 2, 1, 2, 1):
                body = {"product_id": "1001", "action_type": action_type}
                assert api.call("get-bank-list", body)["code"] == 0
        r = server.request("GET", "/sandbox/orders?limit=1", headers={"x-request-id": "lb-42"})
        assert r.headers["x-request-id"] == "lb-42"
        text = server.request("GET", "/metrics").text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            journal = server.request("GET", "/sandbox/journal?partner_token=demo").json()
            if len(journal) <= 3:
                break
            time.sleep(0.1)
        assert len(journal) == 3
        health = server.request("GET", "/sandbox/health").json()
        server.stop()  # flushes the log
        log = server.log()
    assert health["status"] == "ok" and health["scheduler"]["state"] == "running"
    assert health["scheduler"]["last_prune"] is not None
    counted = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    key = ("lender_sandbox_lender_requests_total", (("code", "0"), ("path", "/get-bank-list")))
    assert counted[key] == 5
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [r for r in records if r["logger"] == "sandbox.access"]
    lender = [r for r in access if r["path"] == "/get-bank-list"]
    assert len(lender) == 5 and all(r["code"] == 0 and r["partner"] == "demo" for r in lender)
    assert all(r["status"] == 200 and r["request_id"] for r in lender)
    (mine,) = [r for r in access if r["request_id"] == "lb-42"]
    assert mine["path"] == "/sandbox/orders?limit=1" and mine["method"] == "GET"
    assert 'HTTP/1.1" 200 OK' not in log  # uvicorn's own access line: ours replaces it
