"""Operating a shared instance: /sandbox/health (database, scheduler, outbox backlog, 503 when
the database is gone), /metrics (Prometheus text), request ids and the access log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LOCAL, SUFFIX, T0, TOKEN, Loan, Sandbox, person, settings_for
from prometheus_client.parser import text_string_to_metric_families
from scripted_aggregator import Wall
from starlette.testclient import TestClient

from sandbox.services import metrics as metrics_module
from sandbox.services.lender import Lender
from sandbox.services.outbox import deliver_now
from sandbox.store import Store
from sandbox.web.access import JsonFormatter, RequestIdFilter, TextFormatter
from sandbox.web.app import create_app


class Answer:
    """A callback receiver answering `status` with `body` (a services.senders.Sender)."""

    def __init__(self, status: int = 200, body: str = '{"code":0}'):
        self.status, self.body = status, body

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]:
        return self.status, self.body


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics parsed: (sample name, sorted labels) -> value."""
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


# ---- health ----


def test_health_reports_database_scheduler_and_backlog(sandbox: Sandbox, loan) -> None:
    doc = sandbox.control("GET", "/sandbox/health")
    assert doc["status"] == "ok" and doc["database"] == "sqlite" and doc["partners"] == 1
    assert doc["database_check"]["ok"] is True and doc["database_check"]["latency_ms"] >= 0
    assert doc["scheduler"]["state"] == "off"  # the test app runs no scheduler
    assert doc["outbox"] == {"pending": 0, "dead": 0, "oldest_pending_seconds": None}
    loan("health", SUFFIX["approve"]).create().submit()  # 19 waits: no callback_url
    outbox = sandbox.control("GET", "/sandbox/health")["outbox"]
    assert outbox["pending"] == 1 and outbox["dead"] == 0
    assert outbox["oldest_pending_seconds"] == 0  # the injected wall stands still


def test_the_oldest_pending_delivery_ages_and_dead_ones_are_counted(template_store) -> None:
    wall = Wall(T0)
    settings = settings_for(callbacks={"max_attempts": 1})
    lender = Lender(settings, template_store.copy(), wall=wall)
    with TestClient(
        create_app(settings, lender=lender, background=False), base_url=LOCAL
    ) as client:
        sb = Sandbox(client)
        Loan(sb, person("health-a", "001"), "ORD-HEALTH-A").create().submit()
        wall.sleep(90)
        assert client.get("/sandbox/health").json()["outbox"]["oldest_pending_seconds"] >= 90
        client.patch(f"/sandbox/partners/{TOKEN}", json={"callback_url": "http://rcv.test"})
        deliver_now(lender, Answer(500, "down"))
        outbox = client.get("/sandbox/health").json()["outbox"]
        assert outbox == {"pending": 0, "dead": 1, "oldest_pending_seconds": None}
    lender.store.dispose()


def test_an_unreachable_database_is_a_503(sandbox: Sandbox) -> None:
    lender = sandbox.lender
    real = lender.store
    lender.store = Store("postgresql+psycopg://nobody@127.0.0.1:1/none")  # nothing listens
    try:
        r = sandbox.client.get("/sandbox/health")
    finally:
        lender.store.dispose()
        lender.store = real
    assert r.status_code == 503, r.text
    doc = r.json()
    assert doc["status"] == "unavailable" and doc["partners"] is None
    assert (
        doc["database_check"]["ok"] is False
        and "OperationalError" in doc["database_check"]["error"]
    )
    assert sandbox.client.get("/sandbox/health").status_code == 200  # back


def test_a_running_scheduler_ticks_and_a_stalled_one_degrades(template_store) -> None:
    wall = Wall(T0)
    settings = settings_for(scheduler={"tick": 60})  # no tick during the test after the first
    lender = Lender(settings, template_store.copy(), wall=wall)
    with TestClient(create_app(settings, lender=lender), base_url=LOCAL) as client:
        doc = client.get("/sandbox/health").json()
        assert doc["status"] == "ok" and doc["scheduler"]["state"] == "running"
        wall.sleep(601)  # 10 ticks without one
        r = client.get("/sandbox/health")
        assert r.status_code == 200 and r.json()["status"] == "degraded"
        assert r.json()["scheduler"]["state"] == "stalled"
    lender.store.dispose()


# ---- metrics ----


def test_lender_requests_are_counted_by_path_code_and_partner(sandbox: Sandbox) -> None:
    for _ in range(3):
        sandbox.ok("/get-bank-list", {"product_id": "1001", "action_type": 1})
    sandbox.err("/get-bank-list", {"product_id": "1001"}, 10006)
    sandbox.post("/get-bank-list", {"partner_token": "nobody", "encode_data": "x"})
    found = samples(sandbox.client)
    name = "lender_sandbox_lender_requests_total"
    assert value(found, name, path="/get-bank-list", code="0") == 3
    assert value(found, name, path="/get-bank-list", code="10006") == 1
    assert value(found, name, path="/get-bank-list", code="10002") == 1  # unknown partner
    hist = "lender_sandbox_lender_request_duration_seconds_count"
    assert value(found, hist, path="/get-bank-list") == 5
    assert value(found, "lender_sandbox_partner_requests_total", partner=TOKEN) == 4
    assert value(found, "lender_sandbox_partner_requests_total", partner="_unknown") == 1


def test_a_fault_that_answers_instead_is_code_none(sandbox: Sandbox) -> None:
    sandbox.control(
        "POST", "/sandbox/faults", {"kind": "http_error", "status": 502, "path": "/get-bank-list"}
    )
    r = sandbox.post("/get-bank-list", sandbox.envelope({"product_id": "1001", "action_type": 1}))
    assert r.status_code == 502
    found = samples(sandbox.client)
    name = "lender_sandbox_lender_requests_total"
    assert value(found, name, path="/get-bank-list", code="none") == 1


def test_other_requests_are_counted_by_route_template(sandbox: Sandbox, loan) -> None:
    o = loan("metrics-route", SUFFIX["approve"]).create()
    sandbox.detail(o.order_no)
    sandbox.client.get(f"/sandbox/orders/NOPE?partner_token={TOKEN}")
    sandbox.client.get("/no/such/page")
    found = samples(sandbox.client)
    name = "lender_sandbox_http_requests_total"
    route = "/sandbox/orders/{order_no}"
    assert value(found, name, method="GET", route=route, status="200") == 1
    assert value(found, name, method="GET", route=route, status="404") == 1
    assert value(found, name, method="GET", route="unmatched", status="404") == 1
    assert not [k for k in found if o.order_no in str(k)]  # no URL is a label


def test_transitions_and_callback_attempts_come_from_the_database(sandbox: Sandbox, loan) -> None:
    loan("metrics-a", SUFFIX["approve"]).create().submit()
    first = samples(sandbox.client)
    assert value(first, "lender_sandbox_transitions_total", trigger="submit") == 1
    assert value(first, "lender_sandbox_callbacks_pending", partner=TOKEN) == 1
    sandbox.control("PATCH", f"/sandbox/partners/{TOKEN}", {"callback_url": "http://rcv.test"})
    deliver_now(sandbox.lender, Answer(200, '{"code":1}'))  # refused: retried later
    loan("metrics-b", SUFFIX["approve"]).create().submit()
    then = samples(sandbox.client)
    assert value(then, "lender_sandbox_transitions_total", trigger="submit") == 2
    assert value(then, "lender_sandbox_transitions_total", trigger="create") == 2
    assert value(then, "lender_sandbox_callback_attempts_total", result="failed") == 1
    assert value(then, "lender_sandbox_callbacks_pending", partner=TOKEN) == 2
    assert value(then, "lender_sandbox_callbacks_dead") == 0


def test_partner_labels_are_bounded(sandbox: Sandbox, monkeypatch) -> None:
    monkeypatch.setattr(metrics_module, "MAX_PARTNERS", 2)
    for name in ("m-a", "m-b"):
        team = sandbox.control("POST", "/sandbox/partners", {"partner_token": name})
        Sandbox(sandbox.client, name, _codec(team)).ok(
            "/get-bank-list", {"product_id": "1001", "action_type": 1}
        )
    sandbox.ok("/get-bank-list", {"product_id": "1001", "action_type": 1})
    found = samples(sandbox.client)
    labels = {
        dict(k[1])["partner"] for k in found if k[0] == "lender_sandbox_partner_requests_total"
    }
    assert labels == {"m-a", "m-b", "_other"}


def _codec(team: dict[str, Any]) -> Any:
    from sandbox.core.crypto import Codec

    return Codec(team["aes_key"], team["aes_iv"])


def test_metrics_need_the_admin_token_where_the_control_api_does(template_store) -> None:
    settings = settings_for(server={"admin_token": "s3cret"})
    lender = Lender(settings, template_store.copy(), wall=lambda: T0)
    with TestClient(
        create_app(settings, lender=lender, background=False), base_url=LOCAL
    ) as client:
        assert client.get("/metrics").status_code == 401
        ok = client.get("/metrics", headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and "lender_sandbox_process_" in ok.text
        assert client.get("/sandbox/health").status_code == 200  # health stays open
    lender.store.dispose()


# ---- request ids and the access log ----


@pytest.fixture
def logged(template_store) -> Iterator[Sandbox]:
    settings = settings_for(server={"access_log": True})
    lender = Lender(settings, template_store.copy(), wall=lambda: T0)
    with TestClient(
        create_app(settings, lender=lender, background=False), base_url=LOCAL
    ) as client:
        yield Sandbox(client)
    lender.store.dispose()


def test_every_answer_carries_a_request_id(sandbox: Sandbox) -> None:
    answers = [
        sandbox.post("/get-bank-list", sandbox.envelope({"product_id": "1001", "action_type": 1})),
        sandbox.client.get("/sandbox/orders"),
        sandbox.client.get("/dashboard"),
        sandbox.client.get("/get-bank-list"),  # 405
        sandbox.client.get("/nothing-here"),
    ]
    ids = [r.headers.get("x-request-id") for r in answers]
    assert all(ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("proxy-7f3a.42", True), ("a b", False), ("x" * 129, False), ("", False), ("é", False)],
)
def test_a_sane_incoming_request_id_is_kept(sandbox: Sandbox, sent: str, kept: bool) -> None:
    r = sandbox.client.get("/sandbox/orders", headers={"x-request-id": sent.encode("utf-8")})
    assert (r.headers["x-request-id"] == sent) is kept
    assert r.headers["x-request-id"]


def test_the_access_log_has_a_line_per_request(logged: Sandbox, caplog) -> None:
    caplog.set_level(logging.INFO, logger="sandbox.access")
    r = logged.post("/get-bank-list", logged.envelope({"product_id": "1001", "action_type": 1}))
    logged.client.get("/sandbox/journal?limit=1", headers={"x-request-id": "abc-1"})
    lines = [rec for rec in caplog.records if rec.name == "sandbox.access"]
    assert len(lines) == 2
    lender_line, control_line = lines[0].access, lines[1].access  # type: ignore[attr-defined]
    assert lender_line["request_id"] == r.headers["x-request-id"]
    assert (lender_line["method"], lender_line["path"], lender_line["status"]) == (
        "POST",
        "/get-bank-list",
        200,
    )
    assert lender_line["code"] == 0 and lender_line["partner"] == TOKEN
    assert control_line["request_id"] == "abc-1"
    assert control_line["path"] == "/sandbox/journal?limit=1" and control_line["ms"] >= 0
    assert '"POST /get-bank-list HTTP/1.1" 200' in lines[0].getMessage()


def test_no_access_lines_unless_asked(sandbox: Sandbox, caplog) -> None:
    caplog.set_level(logging.INFO, logger="sandbox.access")
    sandbox.client.get("/sandbox/orders")
    assert not [rec for rec in caplog.records if rec.name == "sandbox.access"]


def test_log_records_of_a_request_carry_its_id_in_both_formats(sandbox: Sandbox) -> None:
    """A warning written while a request runs (the health check's, its database gone) names
    the request's id: in JSON as a field, in text at the end of the line."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    handler.addFilter(RequestIdFilter())
    log = logging.getLogger("sandbox.health")
    log.addHandler(handler)
    lender, real = sandbox.lender, sandbox.lender.store
    lender.store = Store("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        r = sandbox.client.get("/sandbox/health", headers={"x-request-id": "trace-9"})
    finally:
        log.removeHandler(handler)
        lender.store.dispose()
        lender.store = real
    assert r.status_code == 503
    (record,) = records
    doc = json.loads(JsonFormatter().format(record))
    assert doc["request_id"] == "trace-9" and doc["level"] == "warning"
    assert doc["logger"] == "sandbox.health" and "does not answer" in doc["message"]
    assert TextFormatter().format(record).endswith("[id=trace-9]")


def test_an_access_line_in_json_has_its_fields(logged: Sandbox, caplog) -> None:
    caplog.set_level(logging.INFO, logger="sandbox.access")
    logged.client.get("/sandbox/orders?limit=2", headers={"x-request-id": "j-1"})
    (record,) = [rec for rec in caplog.records if rec.name == "sandbox.access"]
    doc = json.loads(JsonFormatter().format(record))
    assert {k: doc[k] for k in ("request_id", "method", "path", "status")} == {
        "request_id": "j-1",
        "method": "GET",
        "path": "/sandbox/orders?limit=2",
        "status": 200,
    }
    assert doc["logger"] == "sandbox.access" and "time" in doc and doc["ms"] >= 0
