"""Callback delivery (sandbox.callbacks): backoff, acknowledgement, retries, dead letters,
per-order ordering, leases, chaos — against an in-process MemorySink and a fake wall clock.

Outbox rows are inserted the way `orders.Ctx.callback` enqueues them; `deliver_now` runs
the same claim/send/record code the server's worker runs.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from callback_rows import IV, KEY, STATUS, T0, enqueue
from sqlalchemy import create_engine, select, text

from sandbox.core.chaos import validate_chaos
from sandbox.core.crypto import Codec, php_json_encode
from sandbox.core.errors import SandboxError
from sandbox.core.settings import CallbackSettings
from sandbox.harness.sink import ACK, MemorySink
from sandbox.services import control, deliveries, outbox
from sandbox.services.config import load_settings
from sandbox.services.lender import Lender, create_lender
from sandbox.services.worker import Worker
from sandbox.store import Callback, CallbackAttempt, Partner, Store

URL = "http://receiver.test/hooks"
POLICY = {
    "first_delay": 1,
    "factor": 2,
    "max_delay": 10,
    "jitter": 0,
    "max_attempts": 4,
    "timeout": 5,
}


class Wall:
    """The injected wall clock: moves only when told."""

    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make_lender(wall: Wall, url: str = "sqlite://", **policy: object) -> Lender:
    settings = load_settings(
        overrides={
            "database": {"url": url},
            "clock": {"mode": "manual"},
            "callbacks": {**POLICY, **policy},
        },
        env={},
    )
    return create_lender(settings, store=Store(url), wall=wall)


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def lender(wall: Wall) -> Iterator[Lender]:
    lender = make_lender(wall)
    add_partner(lender)
    yield lender
    lender.store.dispose()


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink(KEY, IV)


def add_partner(lender: Lender, token: str = "p1", **fields: object) -> None:
    """A receiving partner; its clock is real unless said (retries on the wall's schedule)."""
    fields.setdefault("clock_mode", "real")
    with lender.store.transaction() as s:
        p = lender.new_partner(token, KEY, IV, callback_url=URL)
        for name, value in fields.items():
            setattr(p, name, value)
        s.add(p)


def row(lender: Lender, callback_id: int) -> Callback:
    with lender.store.transaction() as s:
        found = s.get(Callback, callback_id)
        assert found is not None
        return found


def attempts(lender: Lender, callback_id: int) -> list[CallbackAttempt]:
    with lender.store.transaction() as s:
        return list(
            s.scalars(
                select(CallbackAttempt)
                .where(CallbackAttempt.callback_id == callback_id)
                .order_by(CallbackAttempt.id)
            )
        )


def statuses(sink: MemorySink) -> list[tuple[str, int]]:
    return [(b["order_no"], b["order_status"]) for b in sink.received()]


# ---- policy ----


def test_backoff_is_exponential_and_capped():
    cfg = CallbackSettings(first_delay=0.05, factor=2, max_delay=0.5, jitter=0)
    assert [outbox.backoff(cfg, n) for n in range(1, 7)] == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]


def test_backoff_jitter_stays_within_the_fraction():
    cfg = CallbackSettings(first_delay=10, factor=2, max_delay=3600, jitter=0.2)
    delays = [outbox.backoff(cfg, 3, random.Random(i)) for i in range(500)]
    assert min(delays) >= 32 and max(delays) <= 48
    assert max(delays) - min(delays) > 10  # it does spread


@pytest.mark.parametrize(
    "status,text,problem",
    [
        (200, '{"code":0,"message":"success","data":{}}', ""),
        (200, '{"code":"0"}', ""),  # PHP receivers send strings
        (201, '{"code":0}', ""),
        (204, '{"code":0,"msg":"ok"}', ""),
        (200, '{"code":1,"message":"gagal"}', "code 1: gagal"),
        (200, '{"code":false}', "code False: "),
        (200, '{"code":0.0}', "code 0.0: "),
        (200, '{"code":"00"}', "code '00': "),
        (200, '{"code":" 0"}', "code ' 0': "),
        (200, '{"code":""}', "code '': "),
        (200, '{"code":null,"msg":"ok"}', "code None: ok"),
        (200, '{"code":[0]}', "code [0]: "),
        (200, '{"message":"ok"}', "code None: ok"),
        (200, "OK", "HTTP 200, but the body is not JSON"),
        (200, "[0]", "HTTP 200, but the body is not a JSON object"),
        (500, '{"code":0}', "HTTP 500"),
        (302, "", "HTTP 302"),
    ],
)
def test_only_2xx_with_code_0_acknowledges(status, text, problem):
    assert outbox.refusal(status, text) == problem


# ---- delivering ----


def test_delivers_the_encrypted_envelope_and_logs_the_attempt(lender, sink, wall):
    cid = enqueue(lender)
    assert outbox.deliver_now(lender, sink) == 1
    (rec,) = sink.records()
    body = {"order_no": "ORD0000001", "order_status": 90, "update_time": 1}
    assert rec.body == body and rec.path == "/hooks" + STATUS and rec.partner_token == "p1"
    envelope = {"partner_token": "p1", "encode_data": Codec(KEY, IV).encrypt_json(body)}
    assert rec.raw == php_json_encode(envelope)  # PHP json_encode: "\/" escapes
    r = row(lender, cid)
    assert (r.state, r.attempts, r.delivered_at, r.lease_until, r.last_error) == (
        "delivered",
        1,
        T0,
        0.0,
        "",
    )
    (a,) = attempts(lender, cid)
    assert (a.at, a.url, a.request_body, a.status_code, a.response_body, a.error) == (
        T0,
        URL + STATUS,
        rec.raw,
        200,
        ACK,
        "",
    )
    assert a.latency_ms >= 0


def test_plain_json_when_the_partner_turned_encryption_off(wall, sink):
    lender = make_lender(wall)
    add_partner(lender, encrypt_callbacks=False)
    enqueue(lender)
    outbox.deliver_now(lender, sink)
    (rec,) = sink.records()
    assert rec.raw == php_json_encode(rec.body) and rec.partner_token == ""
    lender.store.dispose()


def test_retries_with_backoff_then_dead(lender, sink, wall):
    sink.fail_next(10)
    cid = enqueue(lender)
    schedule = []
    for _ in range(6):
        outbox.deliver_now(lender, sink)
        r = row(lender, cid)
        schedule.append((r.state, r.attempts, r.next_attempt_at - T0))
        wall.advance(r.next_attempt_at - wall.t if r.state == "pending" else 100)
    # attempts at T0, +1, +3, +7 (delays 1, 2, 4); the 4th failure is the last
    assert schedule[:4] == [
        ("pending", 1, 1.0),
        ("pending", 2, 3.0),
        ("pending", 3, 7.0),
        ("dead", 4, 7.0),
    ]
    assert schedule[4][:2] == schedule[5][:2] == ("dead", 4)
    assert [a.at - T0 for a in attempts(lender, cid)] == [0, 1, 3, 7]
    assert row(lender, cid).last_error == "HTTP 500"
    assert len(sink.records()) == 4


def test_nothing_is_sent_before_the_retry_is_due(lender, sink, wall):
    sink.fail_next(1)
    cid = enqueue(lender)
    outbox.deliver_now(lender, sink)
    wall.advance(0.99)
    assert outbox.deliver_now(lender, sink) == 0
    wall.advance(0.01)
    assert outbox.deliver_now(lender, sink) == 1
    assert row(lender, cid).state == "delivered" and row(lender, cid).attempts == 2


def test_a_refusal_in_the_body_and_a_network_error_are_failed_attempts(lender, sink, wall):
    sink.fail_next(1, code=7)
    cid = enqueue(lender)
    outbox.deliver_now(lender, sink)
    sink.hang()
    wall.advance(1)
    outbox.deliver_now(lender, sink)
    first, second = attempts(lender, cid)
    assert (first.status_code, first.error) == (200, "code 7: sink told to fail")
    assert second.status_code is None and second.error.startswith("TimeoutError: no answer")
    sink.recover()
    wall.advance(2)
    outbox.deliver_now(lender, sink)
    assert row(lender, cid).state == "delivered"


class Answers:
    """A receiver that answers each callback with the next of the given bodies (HTTP 200)."""

    def __init__(self, *bodies: str) -> None:
        self.bodies = list(bodies)

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]:
        return 200, self.bodies.pop(0)


def test_a_php_receivers_string_code_0_acknowledges(lender, wall):
    cid = enqueue(lender)
    outbox.deliver_now(lender, Answers('{"code":"0","message":"success","data":[]}'))
    assert (row(lender, cid).state, row(lender, cid).attempts) == ("delivered", 1)


def test_near_misses_of_code_0_are_retried(lender, wall):
    cid = enqueue(lender)
    receiver = Answers('{"code":"00"}', '{"code":0.0}', '{"code":false}', '{"code":0}')
    for wait in (0, 1, 2, 4):
        wall.advance(wait)
        outbox.deliver_now(lender, receiver)
    assert [a.error for a in attempts(lender, cid)] == [
        "code '00': ",
        "code 0.0: ",
        "code False: ",
        "",
    ]
    assert row(lender, cid).state == "delivered"


def test_the_response_kept_is_truncated_to_64_KiB(lender, wall):
    class Chatty:
        async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]:
            return 500, "x" * 100_000

    cid = enqueue(lender)
    outbox.deliver_now(lender, Chatty())
    (a,) = attempts(lender, cid)
    assert len(a.response_body) == 64 * 1024


# ---- ordering ----


def test_a_later_callback_of_an_order_waits_for_the_earlier_one(lender, sink, wall):
    a1, a2, a3 = (enqueue(lender, "ORDER-A-001", s) for s in (90, 100, 170))
    b1 = enqueue(lender, "ORDER-B-001", 90)
    sink.fail_next(1)  # A's first callback fails: A waits, B does not
    outbox.deliver_now(lender, sink)
    assert row(lender, b1).state == "delivered"
    assert [row(lender, i).attempts for i in (a1, a2, a3)] == [1, 0, 0]
    views = {d["id"]: d for d in deliveries.list_deliveries(lender, order_no="ORDER-A-001")}
    assert views[a2]["waiting"] == f"behind #{a1} of the same order (ordered delivery)"
    assert views[a1]["waiting"].startswith("next attempt at ")
    wall.advance(1)
    outbox.deliver_now(lender, sink)
    assert statuses(sink) == [
        ("ORDER-B-001", 90),
        ("ORDER-A-001", 90),
        ("ORDER-A-001", 100),
        ("ORDER-A-001", 170),
    ]


def test_a_dead_callback_does_not_block_the_next(wall, sink):
    lender = make_lender(wall, max_attempts=1)
    add_partner(lender)
    a1, a2 = enqueue(lender, status=90), enqueue(lender, status=100)
    sink.fail_next(1)
    outbox.deliver_now(lender, sink)
    assert (row(lender, a1).state, row(lender, a2).state) == ("dead", "delivered")
    lender.store.dispose()


def test_unordered_delivery_when_ordering_is_off(wall, sink):
    lender = make_lender(wall, ordered=False)
    add_partner(lender)
    a1, a2 = enqueue(lender, status=90), enqueue(lender, status=100)
    sink.fail_next(1)
    assert outbox.deliver_now(lender, sink) == 2  # one pass sends both
    assert (row(lender, a1).state, row(lender, a2).state) == ("pending", "delivered")
    lender.store.dispose()


# ---- waiting receivers ----


def test_without_a_callback_url_deliveries_wait_and_keep_their_attempts(wall, sink):
    lender = make_lender(wall)
    add_partner(lender, callback_url="")
    cid = enqueue(lender)
    for _ in range(3):
        assert outbox.deliver_now(lender, sink) == 0
        wall.advance(60)
    (view,) = deliveries.list_deliveries(lender)
    assert view["state"] == "pending" and view["attempts"] == 0 and view["url"] is None
    assert view["waiting"] == "no callback_url: set one with PATCH /sandbox/partners/p1"
    control.update_partner(lender, "p1", {"callback_url": URL})
    assert outbox.deliver_now(lender, sink) == 1
    assert row(lender, cid).state == "delivered"
    lender.store.dispose()


def test_a_paused_partner_gets_nothing_until_resumed(lender, sink, wall):
    control.update_partner(lender, "p1", {"callbacks_paused": True})
    cid = enqueue(lender)
    assert outbox.deliver_now(lender, sink) == 0
    assert deliveries.get_delivery(lender, cid)["waiting"].startswith("callbacks paused")
    control.update_partner(lender, "p1", {"callbacks_paused": False})
    assert outbox.deliver_now(lender, sink) == 1 and row(lender, cid).attempts == 1


# ---- leases: at-least-once ----


def test_a_claimed_row_is_skipped_until_its_lease_runs_out(lender, sink, wall):
    cid = enqueue(lender)
    (job,) = outbox.claim(lender, wall(), 10)  # a worker claims it... and dies
    lease = outbox.lease_seconds(lender.settings.callbacks)
    assert job.lease == row(lender, cid).lease_until == T0 + lease
    assert deliveries.get_delivery(lender, cid)["waiting"] == "in flight"
    assert outbox.deliver_now(lender, sink) == 0
    wall.advance(lease)
    assert outbox.deliver_now(lender, sink) == 1
    assert row(lender, cid).state == "delivered"


def test_a_released_lease_is_due_at_once(lender, sink, wall):
    cid = enqueue(lender)
    jobs = outbox.claim(lender, wall(), 10)
    outbox.release(lender, jobs)
    assert row(lender, cid).lease_until == 0.0
    assert outbox.deliver_now(lender, sink) == 1


def test_a_result_for_a_row_changed_meanwhile_is_dropped(lender, wall):
    cid = enqueue(lender)
    (job,) = outbox.claim(lender, wall(), 10)
    wall.advance(60)
    (job2,) = outbox.claim(lender, wall(), 10)  # lease ran out, another worker took it
    ok = outbox.Attempt(wall(), 200, ACK, 1.0, "")
    outbox.record(lender, [(job, [ok])])  # the first worker's late answer
    assert attempts(lender, cid) == [] and row(lender, cid).state == "pending"
    outbox.record(lender, [(job2, [ok])])
    assert len(attempts(lender, cid)) == 1 and row(lender, cid).state == "delivered"


def test_claims_are_bounded_by_the_limit(lender, wall):
    for i in range(5):
        enqueue(lender, f"ORDER-{i:06d}")
    assert len(outbox.claim(lender, wall(), 3)) == 3
    assert len(outbox.claim(lender, wall(), 3)) == 2
    assert outbox.claim(lender, wall(), 3) == []


# ---- redelivery ----


def test_redeliver_starts_a_new_cycle_and_keeps_the_history(lender, sink, wall):
    cid = enqueue(lender)
    outbox.deliver_now(lender, sink)
    wall.advance(5)
    view = deliveries.redeliver(lender, cid)
    assert (view["state"], view["attempts"], view["last_error"], view["delivered_at"]) == (
        "pending",
        0,
        "redelivery requested",
        None,
    )
    assert len(view["attempt_log"]) == 1
    outbox.deliver_now(lender, sink)
    view = deliveries.get_delivery(lender, cid)
    assert view["state"] == "delivered" and view["attempts"] == 1 and len(view["attempt_log"]) == 2
    assert len(sink.received()) == 2


def test_unknown_delivery_is_a_404(lender):
    with pytest.raises(SandboxError) as e:
        deliveries.get_delivery(lender, 999)
    assert e.value.http_status == 404


# ---- chaos ----


def set_chaos(lender: Lender, chaos: dict) -> None:
    with lender.store.transaction() as s:
        p = s.get(Partner, "p1")
        assert p is not None
        p.chaos = chaos


def test_chaos_duplicate_sends_a_delivered_callback_twice(lender, sink):
    set_chaos(lender, {"duplicate": 1})
    cid = enqueue(lender)
    outbox.deliver_now(lender, sink)
    assert len(sink.received()) == 2 and sink.received()[0] == sink.received()[1]
    r = row(lender, cid)
    assert (r.state, r.attempts, r.last_error) == ("delivered", 2, "chaos: sent twice (duplicate)")


def test_chaos_delay_holds_the_first_attempt(lender, sink, wall):
    set_chaos(lender, {"delay": 5})
    cid = enqueue(lender)
    assert outbox.deliver_now(lender, sink) == 0
    assert row(lender, cid).last_error == "chaos: first attempt delayed 5.000s"
    wall.advance(4.9)
    assert outbox.deliver_now(lender, sink) == 0
    wall.advance(0.1)
    assert outbox.deliver_now(lender, sink) == 1 and row(lender, cid).state == "delivered"


def test_chaos_delay_range_is_drawn_per_callback(lender, sink, wall):
    set_chaos(lender, {"delay": [1, 3]})
    ids = [enqueue(lender, f"ORDER-{i:06d}") for i in range(20)]
    outbox.deliver_now(lender, sink)
    delays = [row(lender, i).next_attempt_at - T0 for i in ids]
    assert all(1 <= d <= 3 for d in delays) and len(set(delays)) > 1
    wall.advance(3)
    outbox.deliver_now(lender, sink)
    assert len(sink.received()) == 20


def test_chaos_reorder_lets_a_later_callback_overtake(lender, sink, wall):
    set_chaos(lender, {"reorder": 1, "reorder_hold": 2})
    a1, a2 = (
        enqueue(lender, status=100),
        enqueue(lender, status=100, path="/callback-approval-result"),
    )
    outbox.deliver_now(lender, sink)
    assert [r.path for r in sink.records()] == ["/hooks/callback-approval-result"]
    assert row(lender, a1).last_error == f"chaos: held back 2s so #{a2} overtakes it"
    wall.advance(2)
    outbox.deliver_now(lender, sink)
    assert [r.path for r in sink.records()] == [
        "/hooks/callback-approval-result",
        "/hooks" + STATUS,
    ]


def test_chaos_reorder_probability_zero_keeps_order(lender, sink, wall):
    set_chaos(lender, {"reorder": 0.0, "duplicate": 0})
    enqueue(lender, status=90)
    enqueue(lender, status=100)
    outbox.deliver_now(lender, sink)
    assert statuses(sink) == [("ORD0000001", 90), ("ORD0000001", 100)]


def test_stored_chaos_that_does_not_validate_is_ignored(lender, sink):
    set_chaos(lender, {"explode": True})
    enqueue(lender)
    assert outbox.deliver_now(lender, sink) == 1 and len(sink.received()) == 1


def test_validate_chaos_normalises():
    assert validate_chaos({}) == {}
    assert validate_chaos(
        {"duplicate": 1, "delay": "2s", "reorder": 0.25, "reorder_hold": 0.5}
    ) == {"duplicate": 1.0, "delay": 2.0, "reorder": 0.25, "reorder_hold": 0.5}
    assert validate_chaos({"delay": [1, "3s"]}) == {"delay": [1.0, 3.0]}


@pytest.mark.parametrize(
    "chaos,fragment",
    [
        ([], "must be an object"),
        ({"dupe": 1}, "unknown key 'dupe'"),
        ({"duplicate": 1.5}, "duplicate must be a probability between 0 and 1"),
        ({"duplicate": True}, "duplicate must be a probability"),
        ({"reorder": "often"}, "reorder must be a probability"),
        ({"delay": -1}, "delay must be between 0 and 3600 seconds"),
        ({"delay": "soon"}, "delay must be seconds"),
        ({"delay": [3, 1]}, "delay range [3.0, 1.0] has min > max"),
        ({"delay": [1, 2, 3]}, "delay must be seconds or a [min, max] pair"),
        ({"reorder_hold": 7200}, "reorder_hold must be between 0 and 3600 seconds"),
    ],
)
def test_validate_chaos_names_the_problem(chaos, fragment):
    with pytest.raises(SandboxError) as e:
        validate_chaos(chaos)
    assert e.value.name == "invalid_field" and e.value.http_status == 400
    assert fragment in e.value.message


# ---- the worker and the sync wrapper ----


def test_the_worker_delivers_when_woken_by_the_outbox_hook(lender, sink):
    async def scenario() -> None:
        original = lender.on_outbox
        worker = Worker(lender, sink)
        worker.start()
        await asyncio.sleep(0.05)  # idle: nothing is due
        ids = [enqueue(lender, f"ORDER-{i:06d}") for i in range(3)]
        lender.on_outbox()  # what a committed transition calls
        await asyncio.to_thread(sink.wait_for, 3)
        await worker.stop()
        assert lender.on_outbox is original  # the hook is given back
        assert {row(lender, i).state for i in ids} == {"delivered"}

    asyncio.run(scenario())


def test_stopping_the_worker_hands_in_flight_rows_back(lender):
    class Stuck:
        def __init__(self) -> None:
            self.started = asyncio.Event()

        async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]:
            self.started.set()
            await asyncio.sleep(60)
            return 200, ACK

    async def scenario() -> None:
        sender = Stuck()
        worker = Worker(lender, sender)
        worker.start()
        await sender.started.wait()
        await worker.stop(grace=0.01)

    cid = enqueue(lender)
    asyncio.run(scenario())
    r = row(lender, cid)
    assert (r.state, r.attempts, r.lease_until) == ("pending", 0, 0.0)


def test_deliver_now_also_works_inside_a_running_loop(lender, sink):
    enqueue(lender)

    async def inside() -> int:
        return outbox.deliver_now(lender, sink)

    assert asyncio.run(inside()) == 1


# ---- PostgreSQL: several workers, each row claimed once ----

# Same convention as tests/postgres: a private schema on the test server, env override.
PG = (
    os.environ.get("LENDER_SANDBOX_TEST_PG_URL")
    or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def pg_lender(wall: Wall) -> Iterator[Lender]:
    admin = create_engine(PG, connect_args={"connect_timeout": 2})
    schema = f"ls_cb_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as e:
        admin.dispose()
        pytest.skip(f"PostgreSQL is not reachable at {PG}: {type(e).__name__}")
    sep = "&" if "?" in PG else "?"
    lender = make_lender(wall, f"{PG}{sep}options={quote(f'-csearch_path={schema}')}")
    try:
        yield lender
    finally:
        lender.store.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.postgres
def test_concurrent_claims_on_postgresql_never_share_a_row(pg_lender, wall):
    add_partner(pg_lender)
    for i in range(60):
        enqueue(pg_lender, f"ORDER-{i:06d}")
    claimed: list[list[int]] = []
    lock, start = threading.Lock(), threading.Barrier(6)

    def worker() -> None:
        start.wait()
        for _ in range(5):
            jobs = outbox.claim(pg_lender, wall(), 4)
            with lock:
                claimed.append([j.id for j in jobs])

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for batch in claimed for i in batch]
    assert len(ids) == len(set(ids)) == 60


@pytest.mark.postgres
def test_ordering_and_delivery_on_postgresql(pg_lender, sink, wall):
    add_partner(pg_lender)
    for status in (90, 100, 170):
        enqueue(pg_lender, status=status)
    assert outbox.deliver_now(pg_lender, sink) == 3
    assert [s for _, s in statuses(sink)] == [90, 100, 170]


# ---- retries on a manual clock (docs/protocol.md §6) ----


@pytest.fixture
def manual(wall: Wall) -> Iterator[Lender]:
    lender = make_lender(wall)
    add_partner(lender, clock_mode="manual", clock_anchor_wall=T0, clock_anchor_virtual=T0)
    yield lender
    lender.store.dispose()


def test_a_manual_clocks_retry_waits_for_the_clock_not_the_wall(manual, sink, wall):
    sink.fail_next(1)
    cid = enqueue(manual)
    assert outbox.deliver_now(manual, sink) == 1
    view = deliveries.get_delivery(manual, cid)
    assert view["next_attempt_at"] is None and "manual clock" in view["waiting"]
    assert view["retry_at"] == manual.fmt(T0 + 1)
    wall.advance(3600)  # an hour of wall time changes nothing
    assert outbox.deliver_now(manual, sink) == 0
    control.advance_clock(manual, "p1", 0.5)  # not there yet
    assert outbox.deliver_now(manual, sink) == 0
    control.advance_clock(manual, "p1", 0.5)
    assert outbox.deliver_now(manual, sink) == 1
    assert row(manual, cid).state == "delivered" and row(manual, cid).retry_at is None


def test_one_advance_runs_the_retries_of_its_span_in_order(manual, sink, wall):
    """Failing three times costs 1 + 2 + 4 s of the partner's clock: one advance of 10 s gets
    it delivered, each retry timed from the one before, not from the advance."""
    sink.fail_next(3)
    cid = enqueue(manual)
    outbox.deliver_now(manual, sink)
    before = manual.enqueued
    control.advance_clock(manual, "p1", 10)
    assert manual.enqueued == before + 1  # the harness sees there is something to deliver
    outbox.deliver_now(manual, sink)
    r = row(manual, cid)
    assert (r.state, r.attempts) == ("delivered", 4)
    assert [rec.outcome for rec in sink.records()] == ["failed", "failed", "failed", "ok"]


def test_an_advance_past_every_retry_makes_it_dead(manual, sink):
    sink.fail_next(10)
    cid = enqueue(manual)
    outbox.deliver_now(manual, sink)
    control.advance_clock(manual, "p1", 3600)
    outbox.deliver_now(manual, sink)
    r = row(manual, cid)
    assert (r.state, r.attempts, r.last_error) == ("dead", 4, "HTTP 500")


def test_switching_to_a_moving_clock_puts_waiting_retries_on_the_wall(manual, sink, wall):
    sink.fail_next(1)
    cid = enqueue(manual)
    outbox.deliver_now(manual, sink)
    control.update_partner(manual, "p1", {"clock_mode": "scaled", "clock_rate": 10})
    r = row(manual, cid)
    assert r.next_attempt_at == pytest.approx(wall.t + 0.1)  # 1 s of the clock at 10x
    wall.advance(0.1)
    assert outbox.deliver_now(manual, sink) == 1
    assert row(manual, cid).state == "delivered"


def test_one_deliverys_failure_to_record_leaves_the_others_recorded(lender, sink, monkeypatch):
    first, second = enqueue(lender, "ORD0000001"), enqueue(lender, "ORD0000002")
    real = outbox._attempt_row

    def refuse_the_first(job, attempt):
        if job.id == first:
            raise ValueError("the database refuses this one")
        return real(job, attempt)

    monkeypatch.setattr(outbox, "_attempt_row", refuse_the_first)
    outbox.deliver_now(lender, sink, max_rounds=1)
    assert row(lender, second).state == "delivered"
    assert row(lender, first).state == "pending" and row(lender, first).lease_until > 0
