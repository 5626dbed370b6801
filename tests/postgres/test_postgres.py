"""The staging backend: PostgreSQL at 127.0.0.1:5432 (docs/architecture.md "Staging").

Each test run works in a schema of its own (`search_path` set through the URL), created here
and dropped afterwards, so parallel CI runs on one server never see each other's rows. When no
server answers the tests skip, saying why — except under CI=true, where they fail: CI must
prove the staging backend, not skip it. LENDER_SANDBOX_TEST_PG_URL overrides the server URL
(without the schema option).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, func, select, text

from sandbox.services import due as orders
from sandbox.services.lender import create_lender
from sandbox.store import DueEvent, Order, TimelineRow

pytestmark = pytest.mark.postgres

_spec = importlib.util.spec_from_file_location(
    "lender_http_helpers", Path(__file__).resolve().parents[1] / "http" / "conftest.py"
)
assert _spec and _spec.loader
h = sys.modules.get("lender_http_helpers") or importlib.util.module_from_spec(_spec)
if "lender_http_helpers" not in sys.modules:
    sys.modules["lender_http_helpers"] = h  # dataclasses look their module up here
    _spec.loader.exec_module(h)

CANDIDATES = (
    [os.environ["LENDER_SANDBOX_TEST_PG_URL"]]
    if os.environ.get("LENDER_SANDBOX_TEST_PG_URL")
    else [f"postgresql+psycopg://{user}@127.0.0.1:5432/test" for user in ("postgres", "root")]
)


def _reachable() -> tuple[str | None, str]:
    errors = []
    for url in CANDIDATES:
        engine = create_engine(url, connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            return url, ""
        except Exception as e:
            errors.append(f"{url}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        finally:
            engine.dispose()
    return None, "; ".join(errors)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A URL whose connections work in a fresh schema; the schema is dropped afterwards."""
    base, why = _reachable()
    if base is None:
        message = f"PostgreSQL is not reachable on 127.0.0.1:5432 ({why})"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(message + "; CI needs it (CI=true)", pytrace=False)
        pytest.skip(message)
    schema = f"ls_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg(pg_url: str) -> Iterator[str]:
    """The URL, with the sandbox's tables emptied before each test."""
    lender = create_lender(h.settings_for(pg_url), wall=lambda: h.T0)
    from sandbox.services.control import reset

    reset(lender)
    lender.store.dispose()
    yield pg_url


def test_the_schema_is_private(pg: str) -> None:
    engine = create_engine(pg)
    try:
        with engine.connect() as conn:
            schema = conn.execute(text("select current_schema()")).scalar()
            tables = set(
                conn.execute(
                    text(
                        "select table_name from information_schema.tables where table_schema = :s"
                    ),
                    {"s": schema},
                ).scalars()
            )
    finally:
        engine.dispose()
    assert schema.startswith("ls_test_")
    assert {"orders", "due_events", "timeline", "callbacks", "partners"} <= tables


def test_a_whole_order_life_on_postgresql(pg: str) -> None:
    gen = h.make_sandbox(h.settings_for(pg))
    sb = next(gen)
    try:
        assert sb.control("GET", "/sandbox/health")["database"] == "postgresql"
        o = h.Loan(
            sb, h.person("pg-life", h.SUFFIX["overdue"]), "ORD-PG-LIFE-0001", amount=2_000_000
        )
        o.create()
        sb.err("/push-basic-info", {**h.basic_payload(o.p, o.order_no, amount=1_500_000)}, 11003)
        o.submit().bind().review()
        assert o.get("/get-approval-result")["interest_amount"] == 16_800
        o.confirm().payout()
        plan = o.get("/get-repay-plan")
        assert (plan["order_status"], plan["repay_amount"], plan["expiry_time"]) == (
            170,
            2_016_800,
            "2026-03-16 23:59:59",
        )
        ext = o.code(repay_type=2, delay_term=7)
        assert ext["repay_amount"] == 16_800 + 4200
        sb.pay(ext["repay_code"])
        sb.advance("25d")  # due 03-23, now 03-27: 4 days late
        plan = o.get("/get-repay-plan")
        # (2,000,000 + 8,400) x 0.1 % x 4 = 8,033.6 -> 8,034
        assert (plan["order_status"], plan["overdue_days"], plan["expiry_amount"]) == (180, 4, 8034)
        sb.pay(o.code()["repay_code"])
        assert o.status == 200
        d = sb.detail(o.order_no)
        assert [t["trigger"] for t in d["timeline"]] == [
            "create",
            "submit",
            "bind_card",
            "approve",
            "confirm",
            "disburse",
            "extend",
            "overdue",
            "settle",
        ]
        assert d["pending_events"] == []
        sb.err(
            "/get-loan-precheck",
            {
                "product_id": "1001",
                "user_mobile": "81299990000",
                "user_idcard": "3201010101900001",
                "user_name": "Budi 1",
            },
            10007,
        )
    finally:
        gen.close()


def test_two_processes_fire_each_event_exactly_once(
    pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = h.settings_for(pg)
    gen = h.make_sandbox(settings)
    sb = next(gen)
    n = 40
    try:
        for i in range(n):
            h.Loan(
                sb, h.person(f"pg-race-{i}", h.SUFFIX["approve"]), f"ORD-PG-RACE-{i:04d}"
            ).create().submit()
    finally:
        gen.close()
    monkeypatch.setattr(orders, "BATCH", 4)  # small batches: the workers interleave
    lenders = [create_lender(settings, wall=lambda: h.T0) for _ in range(2)]  # two "processes"
    until = h.T0 + 4 * 86400  # review after 2 min -> approve; 3 days later -> cancel
    fired: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(lender: object) -> None:
        try:
            start.wait()
            fired.append(orders.process_due(lender, "demo", until))  # type: ignore[arg-type]
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(lenders[k % 2],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        assert sum(fired) == 2 * n  # n reviews + n approval expiries
        with lenders[0].store.transaction() as s:
            per_trigger = Counter(s.scalars(select(TimelineRow.trigger)))
            per_order = Counter(s.execute(select(TimelineRow.order_id, TimelineRow.trigger)).all())
            statuses = Counter(s.scalars(select(Order.status)))
            states = Counter(s.execute(select(DueEvent.kind, DueEvent.state)).all())
            pending = s.scalar(
                select(func.count())
                .select_from(DueEvent)
                .where(DueEvent.state == "pending", DueEvent.due_at <= until)
            )
        assert per_trigger["approve"] == n and per_trigger["cancel"] == n
        assert set(per_order.values()) == {1}  # no (order, trigger) twice
        assert statuses == {161: n}
        assert states[("review", "done")] == n and states[("approval_expiry", "done")] == n
        assert pending == 0
        assert sum(1 for f in fired if f) >= 2  # the work was shared
        for lender in lenders:  # nothing left for anyone
            assert orders.process_due(lender, "demo", until) == 0
    finally:
        for lender in lenders:
            lender.store.dispose()


def test_an_event_claimed_elsewhere_does_not_block_a_transition(pg: str) -> None:
    """A borrower who pays on the due day has two events in the window: auto_repay, then
    overdue. While another process holds the overdue event (claimed, row locked), settling
    the order retires that event: it must skip the locked row, not wait for it (waiting could
    deadlock with that process waiting for the order). The other process then finds the event
    stale and drops it: settled once, never overdue."""
    settings = h.settings_for(pg)
    gen = h.make_sandbox(settings)
    sb = next(gen)
    try:
        o = h.Loan(
            sb, h.person("pg-pay", h.SUFFIX["settle_on_time"]), "ORD-PG-PAY-00001"
        ).disbursed()
    finally:
        gen.close()
    a, b = (create_lender(settings, wall=lambda: h.T0) for _ in range(2))
    until = h.T0 + 30 * 86400
    done = threading.Event()
    errors: list[BaseException] = []

    def settle_in_a() -> None:
        try:
            orders.process_due(a, "demo", until)
        except BaseException as e:
            errors.append(e)
        finally:
            done.set()

    try:
        with b.store.transaction() as s:  # process B claims the overdue event
            held = s.scalars(
                select(DueEvent)
                .where(DueEvent.kind == "overdue", DueEvent.state == "pending")
                .with_for_update()
            ).one()
            worker = threading.Thread(target=settle_in_a)
            worker.start()
            assert done.wait(15), "the settlement waited for the event another process holds"
            worker.join()
            assert errors == []
            assert held.state == "pending"
        assert orders.process_due(b, "demo", until) == 1  # B drops the stale event
        with a.store.transaction() as s:
            triggers = [t.trigger for t in s.scalars(select(TimelineRow).order_by(TimelineRow.id))]
            states = Counter(s.execute(select(DueEvent.kind, DueEvent.state)).all())
            status = s.scalar(select(Order.status).where(Order.order_no == o.order_no))
        assert triggers.count("settle") == 1 and "overdue" not in triggers and status == 200
        assert states[("auto_repay", "done")] == 1 and states[("overdue", "pending")] == 0
    finally:
        a.store.dispose()
        b.store.dispose()


def test_an_acceptance_run_mark_is_shared_by_every_process(pg: str) -> None:
    """The mark of POST .../conformance/reset lives in the database: another process (a second
    lender on the same schema) reports the same run."""
    from sandbox.services import conformance

    settings = h.settings_for(pg)
    gen = h.make_sandbox(settings)
    sb = next(gen)
    other = create_lender(settings, wall=lambda: h.T0 + 60)
    try:
        bank_list = {"product_id": "1001", "action_type": 1}
        sb.ok("/get-bank-list", bank_list, php=True)
        started = sb.control("POST", "/sandbox/partners/demo/conformance/reset")
        sb.ok("/get-bank-list", {**bank_list, "action_type": 2}, php=True)
        report = conformance.report(other, "demo")
        assert report["run"]["started_at"] == started["started_at"]
        assert report["run"]["requests"] == 1
        checks = {c["id"]: c["status"] for c in report["checks"]}
        assert checks["envelope.content_type"] == checks["envelope.php_json"] == "pass"
        again = conformance.reset(other, "demo")
        assert sb.control("GET", "/sandbox/partners/demo/conformance")["run"] == {
            "started_at": again["started_at"],
            "requests": 0,
            "callbacks": 0,
            "orders": 0,
            "truncated": False,
            "pruned": False,
        }
    finally:
        other.store.dispose()
        gen.close()


def test_two_processes_prune_at_once_and_delete_each_row_once(pg: str) -> None:
    """Retention on PostgreSQL: two pruners at the same moment (one advisory lock) delete the
    journal beyond the limit exactly once between them; health reads the database."""
    from sandbox.services import retention

    settings = h.settings_for(pg)
    gen = h.make_sandbox(settings)
    sb = next(gen)
    other = create_lender(settings, wall=lambda: h.T0)  # a second process on the database
    try:
        for action_type in (1, 2) * 10:
            sb.ok("/get-bank-list", {"product_id": "1001", "action_type": action_type})
        results: list[dict] = []
        barrier = threading.Barrier(2)

        def prune(lender) -> None:
            barrier.wait()
            results.append(retention.prune(lender, max_rows_per_partner=5, batch=2))

        threads = [threading.Thread(target=prune, args=(x,)) for x in (sb.lender, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sum(r["journal_deleted"] for r in results) == 15
        left = sb.control("GET", "/sandbox/journal?partner_token=demo")
        assert len(left) == 5
        health = sb.control("GET", "/sandbox/health")
        assert health["status"] == "ok" and health["database_check"]["ok"] is True
    finally:
        other.store.dispose()
        gen.close()


def _lock_waiters(engine: Any) -> int:
    """Sessions of this database waiting for a lock, a row's or an advisory one."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "select count(*) from pg_stat_activity "
                    "where datname = current_database() and wait_event_type = 'Lock'"
                )
            ).scalar()
        )


def test_two_codes_of_one_order_paid_at_once_take_turns(pg: str) -> None:
    """An order's extension code and its full code paid at the same moment through two
    processes: each payment locks the order before its code, so they take turns — one is paid,
    the other refused with 409 (the first voided its code) — where they used to each hold
    their own code and wait for the other's, which the transition voids: a deadlock, answered
    10099. The order stays locked here until both payments wait, so they truly meet."""
    from sandbox.core.errors import ControlError
    from sandbox.services import payments

    settings = h.settings_for(pg)
    gen = h.make_sandbox(settings)
    sb = next(gen)
    try:
        o = h.Loan(sb, h.person("pg-2codes", h.SUFFIX["approve"]), "ORD-PG-TWO-CODES").disbursed()
        codes = [o.code(repay_type=2, delay_term=7)["repay_code"], o.code()["repay_code"]]
    finally:
        gen.close()
    lenders = [create_lender(settings, wall=lambda: h.T0) for _ in range(2)]
    answers: list[Any] = []

    def pay(lender: Any, code: str) -> None:
        try:
            answers.append(payments.pay(lender, code)["repay_type"])
        except ControlError as e:
            answers.append((e.http_status, e.code))
        except Exception as e:  # the deadlock (OperationalError)
            answers.append(e)

    watcher = create_engine(pg)
    threads = [threading.Thread(target=pay, args=pair) for pair in zip(lenders, codes, strict=True)]
    try:
        with lenders[0].store.transaction() as s:  # hold the order while both payments start
            s.execute(select(Order).where(Order.order_no == o.order_no).with_for_update()).one()
            for t in threads:
                t.start()
            for _ in range(300):  # until both wait (fixed) or both ended (the deadlock)
                if _lock_waiters(watcher) >= 2 or not any(t.is_alive() for t in threads):
                    break
                threading.Event().wait(0.05)
            else:
                pytest.fail("the two payments neither waited for the order nor finished")
        for t in threads:
            t.join(30)
        paid = [a for a in answers if a in (1, 2)]
        assert len(answers) == 2 and len(paid) == 1, answers
        assert [a for a in answers if a not in paid] == [(409, 11010)], answers
        with lenders[0].store.transaction() as s:
            triggers = [
                t.trigger
                for t in s.scalars(
                    select(TimelineRow).join(Order).where(Order.order_no == o.order_no)
                )
            ]
        assert triggers.count("settle") + triggers.count("extend") == 1
    finally:
        watcher.dispose()
        for lender in lenders:
            lender.store.dispose()


def test_processes_starting_at_once_load_the_fixtures_in_turn(
    pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes seeding one empty database at the same moment: the second waits for the
    first (the schema lock, store.exclusive) and finds the partner there, where both used to
    insert it and one died at start-up on the duplicate key. The first is held inside its seed
    until the second is waiting, so they truly meet."""
    from sandbox.services.lender import Lender

    settings = h.settings_for(pg)
    watcher = create_engine(pg)
    with watcher.begin() as conn:  # an empty database, schema made
        for table in ("partner_credentials", "conformance_marks", "partners", "products"):
            conn.execute(text(f"delete from {table}"))
    inside = threading.Event()
    real = Lender.new_partner

    def held(self: Lender, *args: Any, **kw: Any) -> Any:
        if not inside.is_set():  # the first seeder: hold on until the other one waits
            inside.set()
            for _ in range(100):
                if _lock_waiters(watcher) >= 1:
                    break
                threading.Event().wait(0.05)
        return real(self, *args, **kw)

    monkeypatch.setattr(Lender, "new_partner", held)
    errors: list[BaseException] = []
    lenders: list[Any] = []

    def start() -> None:
        try:
            lenders.append(create_lender(settings, wall=lambda: h.T0))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(2)]
    try:
        threads[0].start()
        assert inside.wait(30)
        threads[1].start()
        for t in threads:
            t.join(60)
        assert errors == []
        with watcher.connect() as conn:
            assert conn.execute(text("select count(*) from partners")).scalar() == 1
    finally:
        watcher.dispose()
        for lender in lenders:
            lender.store.dispose()
