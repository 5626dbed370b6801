"""Callbacks end to end: a real server process delivers 19-21 to real receivers on loopback.

The server is `lender-sandbox serve` in a subprocess (LiveServer) with fast retries; each
test is its own partner with its own CallbackSink. Requests are encrypted with the
partner's key/IV, callbacks decrypted by the sink, as an aggregator would.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any

import httpx
import pytest

from sandbox.core import crypto
from sandbox.core.clock import WIB, parse_instant
from sandbox.core.crypto import Codec, php_json_encode
from sandbox.harness.liveserver import LiveServer
from sandbox.harness.sink import CallbackSink
from sandbox.testing import SampleOrder, sample_order

# Fast retries so a receiver's failures play out in well under a second.
CALLBACKS = {
    "first_delay": 0.05,
    "factor": 2.0,
    "max_delay": 0.5,
    "jitter": 0.1,
    "max_attempts": 4,
    "timeout": 0.5,
}
SETTINGS = {
    "callbacks": CALLBACKS,
    "scheduler": {"tick": 0.05},
    "lifecycle": {"review_delay": "2m", "payout_delay": "1m"},
}
REVIEW_DELAY, PAYOUT_DELAY = 120, 60
TODAY = date(2026, 3, 2)
_serial = itertools.count(1)


def wait_until(fn: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll the server's control API (a bounded loop of short reads) until `fn()` is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Aggregator:
    """One partner on the live server: encrypted lender calls, control calls, its sink."""

    def __init__(
        self,
        server: LiveServer,
        http: httpx.Client,
        sink: CallbackSink,
        token: str,
        key: str,
        iv: str,
    ):
        self.server, self.http, self.sink = server, http, sink
        self.token, self.codec = token, Codec(key, iv)

    # ---- the lender API, encrypted ----

    def call(self, path: str, payload: dict) -> Any:
        envelope = {"partner_token": self.token, "encode_data": self.codec.encrypt_json(payload)}
        r = self.http.post(
            self.server.url(path),
            content=php_json_encode(envelope),
            headers={"content-type": "application/json;charset=utf-8"},
        )
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["code"] == 0, doc
        return doc["data"]

    # ---- the control API ----

    def control(self, method: str, path: str, body: dict | None = None, status: int = 200) -> Any:
        r = self.http.request(method, self.server.url(path), json=body)
        assert r.status_code == status, r.text
        return r.json()

    def now(self) -> float:
        return self.control("GET", f"/sandbox/partners/{self.token}/clock")["now_unix"]

    def advance(self, seconds: float) -> None:
        self.control("POST", f"/sandbox/partners/{self.token}/clock/advance", {"seconds": seconds})

    def set_clock(self, ts: float) -> None:
        to = datetime.fromtimestamp(ts, WIB).isoformat(timespec="microseconds")
        self.control("POST", f"/sandbox/partners/{self.token}/clock/set", {"to": to})

    def patch(self, **changes: Any) -> dict:
        return self.control("PATCH", f"/sandbox/partners/{self.token}", changes)

    def deliveries(self, **filters: str) -> list[dict]:
        query = "&".join(f"{k}={v}" for k, v in {"partner_token": self.token, **filters}.items())
        return self.control("GET", f"/sandbox/callbacks?{query}")

    def wait_deliveries(
        self, ready: Callable[[list[dict]], bool], timeout: float = 10.0, what: str = "deliveries"
    ) -> list[dict]:
        found: list[dict] = []

        def check() -> bool:
            found[:] = self.deliveries()
            return ready(found)

        wait_until(check, timeout, what)
        return found

    # ---- an order through the API ----

    def new_order(self, suffix: str = "001") -> Loan:
        n = next(_serial)
        order = sample_order(
            f"e2e-{self.token}-{n}",
            suffix=suffix,
            today=TODAY,
            order_no=f"E2E{self.token[-6:]}{n:06d}".replace("_", "X"),
        )
        loan = Loan(self, order)
        self.call("/push-basic-info", order.basic_info())
        return loan


class Loan:
    """An order walked through the lender API (product 1001: 1 000 000 IDR for 14 days);
    the payloads come from the harness's `SampleOrder`."""

    def __init__(self, agg: Aggregator, order: SampleOrder):
        self.agg, self.o, self.order_no = agg, order, order.order_no

    def q(self, **extra: Any) -> dict:
        return self.o.order(**extra)

    def submit(self) -> Loan:
        self.agg.call("/push-supplement-info", self.o.supplement_info())
        return self

    def bind(self) -> Loan:
        self.agg.call("/push-bind-bank", self.o.bind_bank())
        return self

    def confirm(self, amount: int) -> Loan:
        self.agg.call("/push-order-confirm", self.o.confirm(amount))
        return self

    def get(self, path: str) -> Any:
        return self.agg.call(path, self.q())

    def pay(self, **kind: Any) -> None:
        """15 issues a payment code (bank VA); the borrower pays it (POST /sandbox/payments)."""
        code = self.agg.call(
            "/get-repay-detail", self.q(repay_method=1, method_code="1001", **kind)
        )
        self.agg.control("POST", "/sandbox/payments", {"repay_code": code["repay_code"]})

    def detail(self) -> dict:
        return self.agg.control(
            "GET", f"/sandbox/orders/{self.order_no}?partner_token={self.agg.token}"
        )


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(SETTINGS) as live:
        yield live


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, trust_env=False) as client:
        yield client


@pytest.fixture
def aggregator(http: httpx.Client) -> Iterator[Callable[..., Aggregator]]:
    """`aggregator(server, callback=True, encrypt=True, clock="manual")`: a new partner with
    its own sink."""
    sinks: list[CallbackSink] = []

    def make(
        server: LiveServer, *, callback: bool = True, encrypt: bool = True, clock: str = "manual"
    ) -> Aggregator:
        token = f"pt_e2e_{next(_serial):04d}"
        key, iv = crypto.generate_key(), crypto.generate_iv()
        sink = CallbackSink(key, iv) if encrypt else CallbackSink()
        sinks.append(sink.start())
        r = http.post(
            server.url("/sandbox/partners"),
            json={
                "partner_token": token,
                "aes_key": key,
                "aes_iv": iv,
                "clock_mode": clock,
                "encrypt_callbacks": encrypt,
                "callback_url": sink.url if callback else "",
            },
        )
        assert r.status_code == 200, r.text
        return Aggregator(server, http, sink, token, key, iv)

    yield make
    for sink in sinks:
        sink.stop()


# ---- the tests ----

STATUS, APPROVAL, PLAN = (
    "/callback-order-status",
    "/callback-approval-result",
    "/callback-repay-plan",
)
# docs/protocol.md §6 / the spec's 19-21: exactly these fields, in this order.
FIELDS = {
    STATUS: ["order_no", "order_status", "update_time"],
    APPROVAL: [
        "order_no",
        "order_status",
        "approval_time",
        "loan_time",
        "approval_amount",
        "approval_term",
        "term_unit",
        "interest_amount",
        "interest_rate",
        "actual_amount",
        "admin_amount",
        "repay_amount",
        "order_remark",
    ],
    PLAN: [
        "order_no",
        "order_status",
        "loan_time",
        "loan_amount",
        "loan_term",
        "term_unit",
        "interest_amount",
        "interest_rate",
        "expiry_time",
        "expiry_amount",
        "is_overdue",
        "overdue_days",
        "admin_amount",
        "repay_amount",
        "url_repay",
        "url_info",
        "delay_repay",
        "delay_status",
    ],
}


def status_body(order_no: str, status: int, at: float) -> dict:
    return {"order_no": order_no, "order_status": status, "update_time": int(at)}


def delivered(deliveries: list[dict], n: int) -> bool:
    return len(deliveries) >= n and all(d["state"] == "delivered" for d in deliveries)


def at(attempt: dict) -> float:
    return datetime.fromisoformat(attempt["at"]).timestamp()


@pytest.mark.timeout(30)
def test_a_full_order_life_sends_every_callback_in_order(server, aggregator):
    agg = aggregator(server)
    # Whole seconds + 0.5 on the clock, so int(update_time) is never a rounding question.
    agg.set_clock(int(agg.now()) + 3600.5)
    loan = agg.new_order("001")  # approve, payout ok
    t_submit = agg.now()
    loan.submit()  # 80 -> 90
    agg.advance(REVIEW_DELAY)  # 90 -> 100
    approval = loan.get("/get-approval-result")
    loan.bind().confirm(approval["approval_amount"])
    t_confirm = agg.now()
    agg.advance(PAYOUT_DELAY)  # 100 -> 170
    plan_170 = loan.get("/get-repay-plan")
    overdue = next(e for e in loan.detail()["pending_events"] if e["kind"] == "overdue")
    t_overdue = parse_instant(overdue["due_at"])
    agg.set_clock(t_overdue + 0.5)  # 170 -> 180
    plan_180 = loan.get("/get-repay-plan")
    loan.pay(repay_type=2, delay_term=7)  # extension: 180 -> 170
    t_extend = agg.now()
    plan_extended = loan.get("/get-repay-plan")
    agg.advance(3600)
    loan.pay(repay_type=1)  # full repayment: -> 200
    t_settle = agg.now()
    plan_200 = loan.get("/get-repay-plan")
    assert loan.get("/get-order-status")["order_status"] == 200

    no = loan.order_no
    expected = [
        (STATUS, status_body(no, 90, t_submit)),
        (STATUS, status_body(no, 100, t_submit + REVIEW_DELAY)),
        (APPROVAL, approval),  # = 13's data
        (STATUS, status_body(no, 170, t_confirm + PAYOUT_DELAY)),
        (PLAN, plan_170),  # = 14's data, same moment
        (STATUS, status_body(no, 180, t_overdue)),
        (PLAN, plan_180),
        (STATUS, status_body(no, 170, t_extend)),
        (PLAN, plan_extended),
        (STATUS, status_body(no, 200, t_settle)),
        (PLAN, plan_200),
    ]
    agg.sink.wait_for(len(expected), timeout=10)
    got = [(r.path, r.body) for r in agg.sink.records() if r.acknowledged]
    assert [p for p, _ in got] == [p for p, _ in expected]
    for (path, body), (_, want) in zip(got, expected, strict=True):
        assert list(body) == FIELDS[path], path
        for field in FIELDS[path]:
            assert body[field] == want[field], (path, field, body[field], want[field])
    assert plan_180["is_overdue"] == 1 and plan_extended["delay_status"] == 1
    assert plan_200["order_status"] == 200
    # The envelope: the partner's token, encrypted data, JSON content type.
    first = agg.sink.records()[0]
    assert first.partner_token == agg.token and '"encode_data"' in first.raw
    assert first.headers["content-type"].startswith("application/json")
    deliveries = agg.wait_deliveries(lambda ds: delivered(ds, len(expected)))
    assert [d["attempts"] for d in deliveries] == [1] * len(expected)
    assert [d["body"] for d in deliveries] == [body for _, body in got]


@pytest.mark.timeout(30)
def test_b_failing_receiver_gets_it_after_retries_on_the_partners_clock(server, aggregator):
    """The partner's clock is manual: retries wait for it (wall time alone retries nothing),
    and one advance past them runs them in order, each timed from the one before."""
    agg = aggregator(server)
    agg.sink.fail_next(2, status=500)
    agg.sink.fail_next(1, code=1)  # HTTP 200 but code 1 is a refusal too
    agg.new_order().submit()
    (d,) = agg.wait_deliveries(lambda ds: ds and ds[0]["attempts"] == 1, what="a first attempt")
    assert d["state"] == "pending" and d["next_attempt_at"] is None
    assert "manual clock" in d["waiting"] and d["retry_at"]
    time.sleep(0.5)  # ten times the first backoff, in wall time
    assert agg.deliveries()[0]["attempts"] == 1
    agg.advance(1)  # 0.05 s + 0.1 s + 0.2 s (+/- 10 %) of the partner's clock fit in 1 s
    assert agg.sink.wait_for(1)[0]["order_status"] == 90
    (d,) = agg.wait_deliveries(lambda ds: delivered(ds, 1))
    log = d["attempt_log"]
    assert d["attempts"] == 4 and len(log) == 4
    assert [a["status_code"] for a in log] == [500, 500, 200, 200]
    assert [a["error"] for a in log][:3] == ["HTTP 500", "HTTP 500", "code 1: sink told to fail"]
    assert log[3]["error"] == "" and d["last_error"] == "" and d["retry_at"] is None
    assert all(a["request_body"] == log[0]["request_body"] for a in log)
    assert [r.outcome for r in agg.sink.records()] == ["failed", "failed", "failed", "ok"]


@pytest.mark.timeout(30)
def test_b_a_real_clock_partner_is_retried_on_the_wall_clock(server, aggregator):
    agg = aggregator(server, clock="real")
    agg.sink.fail_next(2, status=500)
    agg.new_order().submit()
    (d,) = agg.wait_deliveries(lambda ds: delivered(ds, 1))
    log = d["attempt_log"]
    assert [a["status_code"] for a in log] == [500, 500, 200]
    # exponential backoff with +/-10 % jitter: 0.05 s, 0.1 s
    for i, base in enumerate([0.05, 0.1]):
        assert at(log[i + 1]) - at(log[i]) >= base * 0.9 - 0.002


@pytest.mark.timeout(30)
def test_c_receiver_that_never_answers_makes_it_dead_then_redeliver(server, aggregator):
    agg = aggregator(server)
    agg.sink.hang()
    agg.new_order().submit()
    agg.wait_deliveries(lambda ds: ds and ds[0]["attempts"] == 1, what="a first attempt")
    agg.advance(5)  # past every retry: 0.05 + 0.1 + 0.2 s, each attempt timing out
    (d,) = agg.wait_deliveries(lambda ds: ds and ds[0]["state"] == "dead", what="dead")
    assert d["attempts"] == CALLBACKS["max_attempts"]
    assert all(a["status_code"] is None and "Timeout" in a["error"] for a in d["attempt_log"])
    assert all(a["latency_ms"] >= CALLBACKS["timeout"] * 1000 * 0.9 for a in d["attempt_log"])
    assert "Timeout" in d["last_error"]
    agg.sink.recover()
    agg.control("POST", f"/sandbox/callbacks/{d['id']}/redeliver")
    (d,) = agg.wait_deliveries(lambda ds: delivered(ds, 1), what="redelivered")
    assert d["attempts"] == 1 and len(d["attempt_log"]) == CALLBACKS["max_attempts"] + 1
    assert agg.sink.received()[0]["order_status"] == 90


@pytest.mark.timeout(60)
def test_d_kill_9_with_deliveries_pending_loses_nothing(aggregator):
    # Retries that outlast the crash: 50 attempts, at most 0.5 s apart.
    with LiveServer({**SETTINGS, "callbacks": {**CALLBACKS, "max_attempts": 50}}) as server:
        # real clocks: retries on the wall's schedule, running on across the crash
        paused, failing, hanging = (aggregator(server, clock="real") for _ in range(3))
        paused.control("POST", f"/sandbox/partners/{paused.token}/callbacks/pause")
        failing.sink.fail_next(10_000)
        hanging.sink.hang()
        for agg in (paused, failing, hanging):
            for _ in range(2):
                agg.new_order().submit()
        failing.sink.wait_for_requests(4)  # so at least two failed attempts are recorded
        hanging.sink.wait_for_requests(1)  # a delivery is in flight right now
        server.kill()

        server.start()  # same port, same SQLite file
        assert [d["attempts"] for d in paused.deliveries()] == [0, 0]
        assert sum(d["attempts"] for d in failing.deliveries()) >= 2
        assert all(
            d["state"] == "pending" for a in (paused, failing, hanging) for d in a.deliveries()
        )
        paused.control("POST", f"/sandbox/partners/{paused.token}/callbacks/resume")
        failing.sink.recover()
        hanging.sink.recover()
        for agg in (paused, failing, hanging):
            bodies = agg.sink.wait_for(2, timeout=15)  # the in-flight one after its lease
            assert {b["order_no"] for b in bodies} == {d["order_no"] for d in agg.deliveries()}
            agg.wait_deliveries(lambda ds: delivered(ds, 2))
        assert hanging.sink.records()[0].outcome == "hung"


@pytest.mark.timeout(30)
def test_e_plain_json_when_encryption_is_off(server, aggregator):
    agg = aggregator(server, encrypt=False)
    agg.set_clock(int(agg.now()) + 1.5)
    t = agg.now()
    loan = agg.new_order().submit()
    (record,) = [r for r in agg.sink.wait_for_requests(1) if r.acknowledged]
    want = status_body(loan.order_no, 90, t)
    assert record.body == want and record.partner_token == ""
    assert record.raw == php_json_encode(want) and "encode_data" not in record.raw


@pytest.mark.timeout(30)
def test_f_without_callback_url_deliveries_wait_then_go(server, aggregator):
    agg = aggregator(server, callback=False)
    agg.new_order().submit()
    agg.wait_deliveries(lambda ds: len(ds) == 1)
    time.sleep(0.3)  # six scheduler ticks: nothing may be attempted
    (d,) = agg.deliveries()
    assert d["state"] == "pending" and d["attempts"] == 0 and d["attempt_log"] == []
    assert d["waiting"].startswith("no callback_url")
    agg.patch(callback_url=agg.sink.url)
    assert agg.sink.wait_for(1)[0]["order_status"] == 90
    (d,) = agg.wait_deliveries(lambda ds: delivered(ds, 1))
    assert d["attempts"] == 1


@pytest.mark.timeout(30)
def test_g_chaos_duplicate_sends_twice(server, aggregator):
    agg = aggregator(server)
    agg.patch(chaos={"duplicate": 1.0})
    agg.new_order().submit()
    first, second = agg.sink.wait_for(2)
    assert first == second
    (d,) = agg.wait_deliveries(lambda ds: delivered(ds, 1))
    assert d["attempts"] == 2 and d["last_error"] == "chaos: sent twice (duplicate)"


@pytest.mark.timeout(30)
def test_h_one_clock_advance_fires_every_transition_in_order(server, aggregator):
    agg = aggregator(server)
    agg.set_clock(int(agg.now()) + 3600.5)
    loan = agg.new_order("007")  # settle_on_time: pays on the due day
    loan.submit()
    agg.advance(REVIEW_DELAY)
    loan.bind().confirm(loan.get("/get-approval-result")["approval_amount"])
    t_confirm = agg.now()
    agg.advance(30 * 86400)  # payout, then repayment: one advance
    bodies = agg.sink.wait_for(7, timeout=10)
    got = [(r.path, r.body["order_status"]) for r in agg.sink.records() if r.acknowledged]
    assert got == [
        (STATUS, 90),
        (STATUS, 100),
        (APPROVAL, 100),
        (STATUS, 170),
        (PLAN, 170),
        (STATUS, 200),
        (PLAN, 200),
    ]
    # each callback carries the virtual time of its own transition, not of the advance
    assert bodies[3]["update_time"] == int(t_confirm + PAYOUT_DELAY)
    due = parse_instant(bodies[4]["expiry_time"])
    assert bodies[5]["update_time"] == int(due - 15 * 3600)  # the morning of the due day
    assert bodies[6] == loan.get("/get-repay-plan")
