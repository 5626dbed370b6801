"""Races of a shared staging instance on PostgreSQL: several lenders on one database (the
processes behind the proxy, each with its own engine) serve one partner's traffic while that
partner is reset, its acceptance run restarted and everything reset now and then, the outbox
delivering and callbacks redelivered (tests/http/race_traffic.py). No answer may be a 5xx or
code 10099 (a foreign-key violation, a deadlock, a row gone under an update), each partner
reset must leave nothing it saw, and the store must be consistent afterwards.

Then the races one at a time, each interleaving forced: one process holds its transaction open
at the moment that matters while another runs into it (services/locks.py says who waits).
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, text
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "http"))

import race_traffic
from test_postgres import h, pg, pg_url  # noqa: F401  (the fixtures: a fresh schema, emptied)

from sandbox.core.errors import SandboxError
from sandbox.services import conformance, control, deliveries, pipeline
from sandbox.services.lender import Lender, create_lender
from sandbox.store import Callback, Order
from sandbox.testing import sample_order
from sandbox.web.app import create_app

pytestmark = pytest.mark.postgres

PROCESSES = 3


def test_resets_racing_traffic_on_several_processes_answer_no_server_error(
    pg: str,  # noqa: F811
) -> None:
    settings = h.settings_for(pg)
    lenders = [create_lender(settings, wall=lambda: h.T0) for _ in range(PROCESSES)]
    clients = [
        TestClient(
            create_app(settings, lender=lender, background=False),
            base_url=h.LOCAL,
            raise_server_exceptions=False,
        ).__enter__()
        for lender in lenders
    ]
    try:
        race = race_traffic.run(clients, lenders, workers=4, orders=8)
        assert not race.failures, "\n".join(race.failures)
        assert race.done["reset"] >= 3 and race.done["/push-basic-info"] == 32, race.done
        assert race_traffic.inconsistencies(lenders[0]) == []
    finally:
        for client in clients:
            client.__exit__(None, None, None)
        for lender in lenders:
            lender.store.dispose()


# ---- one race at a time ----


@pytest.fixture
def two(pg: str) -> Iterator[tuple[Lender, Lender, str]]:  # noqa: F811
    """Two processes' lenders on the database; the second's connections carry a name of
    their own, so the test can see when one of them waits for a lock."""
    name = f"races-{uuid.uuid4().hex[:8]}"
    first = create_lender(h.settings_for(pg), wall=lambda: h.T0)
    second = create_lender(h.settings_for(f"{pg}&application_name={name}"), wall=lambda: h.T0)
    yield first, second, name
    first.store.dispose()
    second.store.dispose()


class Background(threading.Thread):
    """`work()` on a thread of its own: its result, or what it raised."""

    def __init__(self, work: Callable[[], Any]):
        super().__init__(daemon=True)
        self.work, self.result, self.error = work, None, None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as e:
            self.error = e


def wait_until_blocked(lender: Lender, name: str, thread: Background) -> None:
    """Until a connection named `name` waits for a lock, or `thread` is done without one."""
    probe = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = :name AND wait_event_type = 'Lock'"
    )
    for _ in range(1000):
        with lender.store.engine.connect() as conn:
            if conn.execute(probe, {"name": name}).scalar() or not thread.is_alive():
                return
        thread.join(0.01)
    raise AssertionError(f"{name} neither waited for a lock nor finished")


def request(lender: Lender, path: str, payload: dict, token: str = "demo") -> pipeline.Reply:
    envelope = {"partner_token": token, "encode_data": race_traffic.CODEC.encrypt_json(payload)}
    return pipeline.handle(lender, path, race_traffic.json_bytes(envelope))


def test_a_reset_waits_for_a_request_in_flight_and_leaves_nothing_of_it(
    two: tuple[Lender, Lender, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request has written its order and not yet committed when a reset of its partner
    starts on another process: the reset waits for it, then deletes the order too (without
    the wait, the order committed after the reset survived it, or the reset failed on a
    foreign key of a row written under it)."""
    first, second, name = two
    inside, release = threading.Event(), threading.Event()
    journal = pipeline._journal

    def paused(*args: Any) -> None:
        journal(*args)
        inside.set()  # the order and the journal entry are written, the commit is next
        release.wait(30)

    monkeypatch.setattr(pipeline, "_journal", paused)
    o = sample_order("race-in-flight")
    creating = Background(lambda: request(first, "/push-basic-info", o.basic_info()))
    creating.start()
    assert inside.wait(30)
    reset = Background(lambda: control.reset(second, "demo"))
    reset.start()
    wait_until_blocked(first, name, reset)
    release.set()
    creating.join(30)
    reset.join(30)
    assert creating.error is None and creating.result.code == 0, creating.result.body
    assert reset.error is None, reset.error
    assert reset.result["orders_deleted"] == 1
    with first.store.transaction() as s:
        assert s.scalars(select(Order.order_no).where(Order.partner_token == "demo")).all() == []


def test_a_redelivery_of_a_delivery_deleted_meanwhile_is_not_found(
    two: tuple[Lender, Lender, str],
) -> None:
    """A reset (or the pruner) on one process deletes a delivery while another redelivers it:
    the redelivery waits, then answers 404 not_found (it updated a vanished row: a 500)."""
    first, second, name = two
    with first.store.transaction() as s:
        row = Callback(
            partner_token="demo", order_no="ORD-RACE", path="/callback-order-status",
            body={}, created_at=h.T0, state="dead",
        )  # fmt: skip
        s.add(row)
        s.flush()
        callback_id = row.id
    with first.store.begin() as conn:
        conn.execute(delete(Callback).where(Callback.id == callback_id))
        redeliver = Background(lambda: deliveries.redeliver(second, callback_id))
        redeliver.start()
        wait_until_blocked(first, name, redeliver)
    redeliver.join(30)
    assert isinstance(redeliver.error, SandboxError), redeliver.error
    assert (redeliver.error.name, redeliver.error.http_status) == ("not_found", 404)


def test_a_partner_reset_and_its_acceptance_run_reset_at_once_both_succeed(
    two: tuple[Lender, Lender, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The acceptance run's reset holds the partner's row while it reads the highest ids; a
    reset of the partner starts on another process. Both take the partner's row first, so
    one waits for the other (the partner reset used to delete the run's mark first and then
    wait for the row: a deadlock, one of them a 500)."""
    first, second, name = two
    conformance.reset(first, "demo")  # a mark to delete
    request(first, "/get-order-status", sample_order("race-mark").order())  # a mark to move
    control.advance_clock(first, "demo", 60)  # a clock for the partner reset to restart
    inside, release = threading.Event(), threading.Event()
    highest = conformance._highest

    def paused(s: Any, column: Any) -> int:
        if threading.current_thread() is run_reset:
            inside.set()
            release.wait(30)
        return highest(s, column)

    monkeypatch.setattr(conformance, "_highest", paused)
    run_reset = Background(lambda: conformance.reset(first, "demo"))
    run_reset.start()
    assert inside.wait(30)
    partner_reset = Background(lambda: control.reset(second, "demo"))
    partner_reset.start()
    wait_until_blocked(first, name, partner_reset)
    release.set()
    run_reset.join(30)
    partner_reset.join(30)
    assert run_reset.error is None, run_reset.error
    assert partner_reset.error is None, partner_reset.error
    assert partner_reset.result == {"reset": "demo", "orders_deleted": 0}


def test_a_partner_reset_and_a_global_reset_at_once_both_succeed(
    two: tuple[Lender, Lender, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partner's reset holds its row while it deletes; a global reset starts on another
    process and locks the partners' table, then waits for the row. The partner reset took
    the table lock its clock's update needs before the row, so it goes on and the global
    reset after it (the other order: each waited for the other, a deadlock)."""
    first, second, name = two
    control.advance_clock(first, "demo", 60)  # a clock for the partner reset to restart
    inside, release = threading.Event(), threading.Event()
    wipe = control._wipe

    def paused(s: Any, token: str | None) -> int:
        if token is not None:
            inside.set()
            release.wait(30)
        return wipe(s, token)

    monkeypatch.setattr(control, "_wipe", paused)
    partner_reset = Background(lambda: control.reset(first, "demo"))
    partner_reset.start()
    assert inside.wait(30)
    everything = Background(lambda: control.reset(second))
    everything.start()
    wait_until_blocked(first, name, everything)
    release.set()
    partner_reset.join(30)
    everything.join(30)
    assert partner_reset.error is None, partner_reset.error
    assert everything.error is None, everything.error
    assert everything.result["reset"] == "all"


def test_two_partners_reset_at_once_both_succeed(
    two: tuple[Lender, Lender, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another partner's reset deletes the newest rows, so it lowers the demo partner's
    acceptance-run mark (settle_marks) while a reset of the demo partner holds that partner's
    row and waits for the marks' lock. The mark row changes once: a second change of a row
    re-checks its foreign key, i.e. waits for the partner's row (a deadlock, one a 500)."""
    first, second, name = two
    other = {"partner_token": "team-b", "aes_key": race_traffic.KEY, "aes_iv": race_traffic.IV}
    control.create_partner(first, other)
    reply = request(first, "/push-basic-info", sample_order("race-b").basic_info(), "team-b")
    assert reply.code == 0, reply.body
    conformance.reset(first, "demo")  # its mark: team-b's journal entry and timeline row
    inside, release = threading.Event(), threading.Event()
    wipe = control._wipe

    def paused(s: Any, token: str | None) -> int:
        if token == "team-b":
            inside.set()  # holding the marks' lock
            release.wait(30)
        return wipe(s, token)

    monkeypatch.setattr(control, "_wipe", paused)
    other_reset = Background(lambda: control.reset(first, "team-b"))
    other_reset.start()
    assert inside.wait(30)
    demo_reset = Background(lambda: control.reset(second, "demo"))
    demo_reset.start()
    wait_until_blocked(first, name, demo_reset)
    release.set()
    other_reset.join(30)
    demo_reset.join(30)
    assert other_reset.error is None, other_reset.error
    assert demo_reset.error is None, demo_reset.error
    assert other_reset.result == {"reset": "team-b", "orders_deleted": 1}
