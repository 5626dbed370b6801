"""The /sandbox/callbacks routes through `create_app()`, and the server's scheduler delivering
callbacks by itself to a real loopback receiver (CallbackSink)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from callback_rows import IV, KEY, T0, enqueue
from starlette.testclient import TestClient

from sandbox.harness.sink import CallbackSink, MemorySink
from sandbox.services import deliveries, outbox
from sandbox.services.config import load_settings
from sandbox.services.lender import Lender, create_lender
from sandbox.store import Store
from sandbox.web.app import create_app

LOCAL = "http://localhost"  # a loopback sandbox answers loopback Host names only


def settings(**callbacks_policy: object):
    return load_settings(
        overrides={
            "database": {"url": "sqlite://"},
            "clock": {"mode": "manual"},
            "callbacks": {
                "first_delay": 0.05,
                "factor": 2,
                "max_delay": 0.2,
                "jitter": 0,
                "max_attempts": 3,
                "timeout": 2,
                **callbacks_policy,
            },
            "scheduler": {"tick": 0.05},
        },
        env={},
    )


def add_partner(lender: Lender, url: str) -> None:
    with lender.store.transaction() as s:
        p = lender.new_partner("p1", KEY, IV, callback_url=url)
        p.clock_mode = "real"  # retries on the wall's schedule
        s.add(p)


@pytest.fixture
def lender() -> Iterator[Lender]:
    lender = create_lender(settings(), store=Store("sqlite://"), wall=lambda: T0)
    add_partner(lender, "http://receiver.test")
    yield lender
    lender.store.dispose()


@pytest.fixture
def client(lender: Lender) -> Iterator[TestClient]:
    with TestClient(
        create_app(lender.settings, lender=lender, background=False), base_url=LOCAL
    ) as c:
        yield c


def test_list_filters_and_shows_bodies_and_attempts(lender, client):
    a = enqueue(lender, "ORDER-A-0001")
    enqueue(lender, "ORDER-B-0001")
    sink = MemorySink(KEY, IV)
    sink.fail_next(1)
    outbox.deliver_now(lender, sink)
    everything = client.get("/sandbox/callbacks").json()
    assert [d["order_no"] for d in everything] == ["ORDER-A-0001", "ORDER-B-0001"]
    (d,) = client.get("/sandbox/callbacks?partner_token=p1&order_no=ORDER-A-0001").json()
    assert d["id"] == a and d["state"] == "pending" and d["attempts"] == 1
    assert d["body"] == {"order_no": "ORDER-A-0001", "order_status": 90, "update_time": 1}
    assert d["request_body"] == d["attempt_log"][0]["request_body"]
    assert d["attempt_log"][0]["status_code"] == 500 and d["url"].endswith("/callback-order-status")
    assert [x["order_no"] for x in client.get("/sandbox/callbacks?state=delivered").json()] == [
        "ORDER-B-0001"
    ]
    assert client.get("/sandbox/callbacks?state=pending&limit=1").json()[0]["id"] == a
    assert client.get("/sandbox/callbacks?partner_token=nobody").json() == []


def test_a_delivery_not_yet_sent_shows_the_body_it_will_send(lender, client):
    cid = enqueue(lender)
    d = client.get(f"/sandbox/callbacks/{cid}").json()
    assert d["attempt_log"] == [] and '"encode_data"' in d["request_body"]
    assert d["waiting"] == "due now" and d["created_at"] == lender.fmt(T0)


@pytest.mark.parametrize(
    "path,status,fragment",
    [
        (
            "/sandbox/callbacks?state=lost",
            400,
            "state must be one of 'pending', 'delivered' or 'dead'",
        ),
        ("/sandbox/callbacks?limit=many", 400, "limit must be an integer 1-1000"),
        ("/sandbox/callbacks/12345", 404, "no callback delivery with id 12345"),
        ("/sandbox/callbacks/99999999999999999999", 404, "no callback delivery with id"),
    ],
)
def test_bad_queries_are_json_4xx(client, path, status, fragment):
    r = client.get(path)
    assert r.status_code == status and fragment in r.json()["message"]


def test_redeliver_route(lender, client):
    cid = enqueue(lender)
    outbox.deliver_now(lender, MemorySink(KEY, IV))
    d = client.post(f"/sandbox/callbacks/{cid}/redeliver").json()
    assert (d["state"], d["attempts"], len(d["attempt_log"])) == ("pending", 0, 1)
    assert client.post("/sandbox/callbacks/999/redeliver").status_code == 404


def test_pause_and_resume_routes(lender, client):
    cid = enqueue(lender)
    assert client.post("/sandbox/partners/p1/callbacks/pause").json()["callbacks_paused"] is True
    assert outbox.deliver_now(lender, MemorySink(KEY, IV)) == 0
    assert client.get(f"/sandbox/callbacks/{cid}").json()["waiting"].startswith("callbacks paused")
    assert client.post("/sandbox/partners/p1/callbacks/resume").json()["callbacks_paused"] is False
    assert outbox.deliver_now(lender, MemorySink(KEY, IV)) == 1
    assert client.post("/sandbox/partners/nobody/callbacks/pause").status_code == 404


def test_the_running_server_delivers_and_retries_by_itself():
    """background=True: the scheduler's worker sends without anyone flushing, and retries."""
    with CallbackSink(KEY, IV) as sink:
        lender = create_lender(settings(), store=Store("sqlite://"))
        add_partner(lender, sink.url)
        sink.fail_next(1)
        with TestClient(create_app(lender.settings, lender=lender)):
            ids = [enqueue(lender, status=s) for s in (90, 100)]
            lender.on_outbox()
            assert [b["order_status"] for b in sink.wait_for(2, timeout=10)] == [90, 100]
            deadline = time.monotonic() + 5
            while {deliveries.get_delivery(lender, i)["state"] for i in ids} != {"delivered"}:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        assert [r.outcome for r in sink.records()] == ["failed", "ok", "ok"]
        assert deliveries.get_delivery(lender, ids[0])["attempts"] == 2
        lender.store.dispose()


def test_shutdown_while_a_receiver_hangs_is_prompt_and_hands_the_row_back():
    with CallbackSink(KEY, IV) as sink:
        lender = create_lender(settings(timeout=30), store=Store("sqlite://"))
        add_partner(lender, sink.url)
        sink.hang()
        with TestClient(create_app(lender.settings, lender=lender)):
            cid = enqueue(lender)
            lender.on_outbox()
            sink.wait_for_requests(1)
            started = time.monotonic()
        assert time.monotonic() - started < 4  # the grace (2 s at most), not the 30 s timeout
        d = deliveries.get_delivery(lender, cid)
        assert (d["state"], d["attempts"], d["waiting"]) == ("pending", 0, "due now")
        lender.store.dispose()
