"""Retention ([journal] in config.toml): the journal and finished callback deliveries go by
age and by rows per partner, in batches; pending deliveries and orders stay; an acceptance
report over a pruned run says so and still judges what is left; the server prunes by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import IV, KEY, LOCAL, T0, TOKEN, Sandbox, order_payload, settings_for
from scripted_aggregator import EPISODES, Aggregator, Wall
from sqlalchemy import func, select
from starlette.testclient import TestClient

from sandbox.core.conformance import Report
from sandbox.services import retention
from sandbox.services.lender import Lender
from sandbox.services.outbox import deliver_now
from sandbox.store import Callback, CallbackAttempt, JournalEntry, Store
from sandbox.web.app import create_app

DAY = 86400.0
REPORT = f"/sandbox/partners/{TOKEN}/conformance"


@pytest.fixture
def app(template_store: Store) -> Iterator[Callable[..., tuple[TestClient, Wall]]]:
    """`app(**sections)`: a fresh app on a wall clock the test moves; (client, wall)."""
    made: list[TestClient] = []

    def make(**sections: Any) -> tuple[TestClient, Wall]:
        wall = Wall(T0)
        settings = settings_for(**sections)
        lender = Lender(settings, template_store.copy(), wall=wall)
        client = TestClient(
            create_app(settings, lender=lender, background=False), base_url=LOCAL
        ).__enter__()
        made.append(client)
        return client, wall

    yield make
    for client in made:
        client.__exit__(None, None, None)
        client.app.state.lender.store.dispose()  # type: ignore[attr-defined]


def bank_list(client: TestClient, token: str = TOKEN, key: str = KEY, iv: str = IV) -> None:
    from sandbox.client import LenderClient

    api = LenderClient("http://testserver", token, key, iv, http=client)
    assert api.call("get-bank-list", {"product_id": "1001", "action_type": 1})["code"] == 0


def journal_ids(client: TestClient, token: str = TOKEN) -> list[int]:
    r = client.get(f"/sandbox/journal?partner_token={token}&limit=1000")
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()]


def prune(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/sandbox/journal/prune", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_entries_older_than_max_age_go_and_younger_ones_stay(app) -> None:
    client, wall = app()
    for _ in range(3):
        bank_list(client)
    old = journal_ids(client)
    wall.sleep(20 * DAY)
    for _ in range(2):
        bank_list(client)
    young = [i for i in journal_ids(client) if i not in old]
    wall.sleep(11 * DAY)  # the first three are 31 days old, the others 11
    done = prune(client)  # the settings: 30 days, 100 000 rows
    assert done["journal_deleted"] == 3 and done["max_age_days"] == 30
    assert journal_ids(client) == young
    assert done["cutoff"].startswith("2026-03-03T10:00")  # now (2 March + 31 days) - 30 days


def test_each_partner_keeps_its_newest_rows_and_no_more(app) -> None:
    client, _ = app()
    team = client.post("/sandbox/partners", json={"name": "Team B"}).json()
    for _ in range(6):
        bank_list(client)
    for _ in range(3):
        bank_list(client, team["partner_token"], team["aes_key"], team["aes_iv"])
    demo, other = journal_ids(client), journal_ids(client, team["partner_token"])
    done = prune(client, max_rows_per_partner=4)
    assert done["journal_deleted"] == 2
    assert journal_ids(client) == demo[:4]  # newest first: the 4 newest stay
    assert journal_ids(client, team["partner_token"]) == other  # under its limit: untouched


def test_deleting_goes_in_batches_and_deletes_everything_asked(app) -> None:
    client, wall = app()
    for _ in range(10):
        bank_list(client)
    wall.sleep(40 * DAY)
    lender = client.app.state.lender  # type: ignore[attr-defined]
    done = retention.prune(lender, batch=3)
    assert done["journal_deleted"] == 10
    with lender.store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(JournalEntry)) == 0


def test_zero_turns_a_limit_off(app) -> None:
    client, wall = app()
    bank_list(client)
    wall.sleep(400 * DAY)
    assert prune(client, max_age_days=0, max_rows_per_partner=0)["journal_deleted"] == 0
    assert len(journal_ids(client)) == 1


def test_the_prune_route_refuses_bad_limits(app) -> None:
    client, _ = app()
    for body in ({"max_age_days": -1}, {"max_rows_per_partner": "ten"}, {"max_days": 3}):
        r = client.post("/sandbox/journal/prune", json=body)
        assert r.status_code == 400 and r.json()["error"] == "invalid_field", r.text


# ---- callbacks: finished ones go, pending ones never ----


class Ack:
    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]:
        return 200, '{"code":0}'


def loan(client: TestClient, name: str) -> str:
    """An order pushed and submitted (callback 19 enqueued): its order_no."""
    from sandbox.testing import sample_order

    sb = Sandbox(client)
    o = sample_order(name, scenario="approve")
    sb.ok("/push-basic-info", o.basic_info())
    sb.ok("/push-supplement-info", o.supplement_info())
    return o.order_no


def deliveries(lender: Lender) -> dict[int, tuple[str, int]]:
    """id -> (state, attempts logged)."""
    with lender.store.transaction() as s:
        rows = s.execute(select(Callback.id, Callback.state)).all()
        logged = dict(
            s.execute(
                select(CallbackAttempt.callback_id, func.count()).group_by(
                    CallbackAttempt.callback_id
                )
            ).all()
        )
        return {r.id: (r.state, logged.get(r.id, 0)) for r in rows}


def test_delivered_callbacks_go_with_their_attempts_and_pending_ones_stay(app) -> None:
    client, wall = app()
    lender = client.app.state.lender  # type: ignore[attr-defined]
    client.patch(f"/sandbox/partners/{TOKEN}", json={"callback_url": "http://receiver.test"})
    loan(client, "retention-delivered")
    deliver_now(lender, Ack())
    delivered = set(deliveries(lender))
    assert {state for state, _ in deliveries(lender).values()} == {"delivered"}
    client.post(f"/sandbox/partners/{TOKEN}/callbacks/pause")
    loan(client, "retention-pending")
    pending = set(deliveries(lender)) - delivered
    assert pending and all(deliveries(lender)[i][0] == "pending" for i in pending)
    wall.sleep(60 * DAY)  # everything is old now
    done = prune(client, max_rows_per_partner=1)
    assert done["callbacks_deleted"] == len(delivered)
    assert done["attempts_deleted"] == len(delivered)  # one attempt each
    left = deliveries(lender)
    assert set(left) == pending and all(state == "pending" for state, _ in left.values())
    r = client.get(f"/sandbox/callbacks?partner_token={TOKEN}")
    assert {d["id"] for d in r.json()} == pending


# ---- the acceptance report over a pruned run ----


@pytest.fixture
def played(template_store: Store) -> Iterator[Callable[..., Aggregator]]:
    made: list[TestClient] = []

    def play(*episodes: str) -> Aggregator:
        wall = Wall(T0)
        settings = settings_for(
            callbacks={"first_delay": 0, "max_delay": 0, "jitter": 0, "timeout": 5}
        )
        lender = Lender(settings, template_store.copy(), wall=wall)
        client = TestClient(
            create_app(settings, lender=lender, background=False), base_url=LOCAL
        ).__enter__()
        made.append(client)
        agg = Aggregator(client, wall)
        agg.setup()
        for episode in episodes:
            getattr(agg, episode)()
        return agg

    yield play
    for client in made:
        client.__exit__(None, None, None)
        client.app.state.lender.store.dispose()  # type: ignore[attr-defined]


def report(agg: Aggregator) -> dict[str, Any]:
    r = agg.http.get(REPORT)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_report_over_a_pruned_run_says_so_and_fails_nothing_it_passed(played) -> None:
    agg = played(*EPISODES)
    before = report(agg)
    assert before["summary"]["fail"] == 0 and before["run"]["pruned"] is False
    done = prune(agg.http, max_rows_per_partner=30)
    assert done["journal_deleted"] > 0 and done["callbacks_deleted"] > 0
    after = report(agg)
    assert after["run"]["pruned"] is True
    assert after["run"]["requests"] == 30
    assert after["summary"]["fail"] == 0, [c for c in after["checks"] if c["status"] == "fail"]
    assert "retention deleted the oldest records of this run" in str(Report(after))


def test_a_new_run_after_pruning_is_not_marked_pruned(played) -> None:
    agg = played("browse")
    prune(agg.http, max_rows_per_partner=2)
    assert report(agg)["run"]["pruned"] is True
    agg.control("POST", f"/sandbox/partners/{TOKEN}/conformance/reset")
    agg.ok("/get-bank-list", {"product_id": "1001", "action_type": 1})
    doc = report(agg)
    assert doc["run"]["pruned"] is False and doc["run"]["requests"] == 1


def test_requests_after_everything_was_pruned_still_count(played) -> None:
    """Deleting the highest ids lets SQLite reuse them: the marks are settled, so the run's
    next requests are not hidden under its mark."""
    agg = played("browse")
    agg.control("POST", f"/sandbox/partners/{TOKEN}/conformance/reset")
    agg.ok("/get-bank-list", {"product_id": "1001", "action_type": 1})
    agg.wall.sleep(31 * DAY)
    assert prune(agg.http)["journal_deleted"] > 0
    assert journal_ids(agg.http) == []
    agg.ok("/get-bank-list", {"product_id": "1001", "action_type": 2})
    doc = report(agg)
    assert doc["run"]["requests"] == 1
    assert doc["run"]["pruned"] is False  # the pruned ids were lowered with the marks


# ---- the server does it by itself ----


def test_the_scheduler_prunes_every_prune_every(template_store: Store) -> None:
    settings = settings_for(journal={"max_rows_per_partner": 2, "prune_every": 0.2})
    lender = Lender(settings, template_store.copy(), wall=time.time)
    try:
        with TestClient(create_app(settings, lender=lender), base_url=LOCAL) as client:
            for _ in range(5):
                bank_list(client)
            deadline = time.monotonic() + 10
            while len(journal_ids(client)) > 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(journal_ids(client)) == 2
            health = client.get("/sandbox/health").json()
            assert health["scheduler"]["last_prune"] is not None
            assert health["scheduler"]["pruned"]["max_rows_per_partner"] == 2
    finally:
        lender.store.dispose()


def test_order_detail_and_timeline_survive_retention(app) -> None:
    client, wall = app()
    order_no = loan(client, "retention-order")
    wall.sleep(60 * DAY)
    prune(client)
    sb = Sandbox(client)
    assert journal_ids(client) == []
    detail = sb.detail(order_no)
    assert [t["to"] for t in detail["timeline"]] == [80, 90]
    assert sb.call("/get-order-status", order_payload(order_no))["code"] == 0
