"""Restart: everything lives in the database (docs/architecture.md "Time", "Staging").

An app on a SQLite file creates orders, due events and payment codes; it is disposed; a new
app on the same file sees the same orders, timelines, pending events and codes, and advancing
its clock fires each pending event exactly once.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import SUFFIX, T0, Loan, Sandbox, make_sandbox, person, settings_for
from sqlalchemy import func, select, text

from sandbox.services.due import process_due
from sandbox.services.lender import create_lender
from sandbox.store import Base, DueEvent, TimelineRow


def open_app(db: Path, wall: float) -> Iterator[Sandbox]:
    return make_sandbox(settings_for(f"sqlite:///{db}"), wall=lambda: wall)


def triggers(sb: Sandbox, order_no: str) -> list[str]:
    return [t["trigger"] for t in sb.detail(order_no)["timeline"]]


def event_states(sb: Sandbox) -> Counter:
    with sb.lender.store.transaction() as s:
        return Counter(
            (kind, state) for kind, state in s.execute(select(DueEvent.kind, DueEvent.state))
        )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sandbox.db"


def test_orders_events_and_codes_survive_a_restart(db: Path) -> None:
    gen = open_app(db, T0)
    sb = next(gen)
    new = Loan(sb, person("p-new"), "ORD-PERSIST-NEW01").create()  # abandon in 7d
    active = Loan(sb, person("p-act", SUFFIX["overdue"]), "ORD-PERSIST-ACT01").disbursed()
    review = Loan(sb, person("p-rev", SUFFIX["approve"]), "ORD-PERSIST-REV01").create().submit()
    code = active.code()
    clock_before = sb.control("GET", "/sandbox/partners/demo/clock")
    before = {o.order_no: sb.detail(o.order_no) for o in (new, review, active)}
    assert before[review.order_no]["pending_events"][0]["kind"] == "review"
    gen.close()  # the process goes away

    gen = open_app(db, T0 + 3600)  # a new process, an hour of wall time later
    sb = next(gen)
    try:
        # a manual clock does not move while the sandbox is down
        clock = sb.control("GET", "/sandbox/partners/demo/clock")
        assert clock["now"] == clock_before["now"] and clock["mode"] == "manual"
        for order_no, was in before.items():
            now = sb.detail(order_no)
            for key in (
                "status",
                "timeline",
                "pending_events",
                "repay_codes",
                "bank_cards",
                "approval",
                "repay_plan",
                "callbacks",
            ):
                assert now[key] == was[key], key
        assert sb.ok("/get-repay-plan", active.q())["repay_amount"] == 1_008_400
        fired = sb.advance("3m")["events_fired"]
        assert fired == 1  # the review
        assert Loan(sb, review.p, review.order_no).status == 100
        assert triggers(sb, review.order_no).count("approve") == 1
        # the payment code issued before the restart still pays
        assert sb.pay(code["repay_code"])["order_status"] == 200
        sb.advance("8d")
        assert Loan(sb, new.p, new.order_no).status == 161
        assert triggers(sb, new.order_no) == ["create", "cancel"]
    finally:
        gen.close()


def test_pending_events_fire_exactly_once_across_restarts(db: Path) -> None:
    gen = open_app(db, T0)
    sb = next(gen)
    loans = [
        Loan(sb, person(f"once-{i}", SUFFIX["overdue"]), f"ORD-ONCE-{i:07d}").disbursed()
        for i in range(3)
    ]
    gen.close()

    for restart in range(3):  # advance a little in each new process
        gen = open_app(db, T0 + restart)
        sb = next(gen)
        sb.advance("6d")
        gen.close()

    gen = open_app(db, T0 + 10)
    sb = next(gen)
    try:
        for o in loans:
            assert Loan(sb, o.p, o.order_no).status == 180
            assert triggers(sb, o.order_no).count("overdue") == 1
        sb.advance("30d")
        states = event_states(sb)
        assert states[("overdue", "done")] == 3
        assert states[("overdue", "pending")] == 0
        assert states[("review", "done")] == 3 and states[("payout", "done")] == 3
        with sb.lender.store.transaction() as s:
            per_order = Counter(
                s.scalars(select(TimelineRow.order_id).where(TimelineRow.trigger == "overdue"))
            )
        assert sorted(per_order.values()) == [1, 1, 1]
    finally:
        gen.close()


def test_two_processes_on_one_file_do_not_double_fire(db: Path) -> None:
    gen = open_app(db, T0)
    sb = next(gen)
    loans = [
        Loan(sb, person(f"two-{i}", SUFFIX["approve"]), f"ORD-TWO-{i:08d}").create().submit()
        for i in range(4)
    ]
    settings = settings_for(f"sqlite:///{db}")
    other = create_lender(settings, wall=lambda: T0)  # a second "process" on the same file
    try:
        target = T0 + 600
        assert process_due(other, "demo", target) == 4
        assert process_due(sb.lender, "demo", target) == 0
        assert process_due(other, "demo", target) == 0
        with sb.lender.store.transaction() as s:
            approvals = s.scalar(
                select(func.count())
                .select_from(TimelineRow)
                .where(TimelineRow.trigger == "approve")
            )
        assert approvals == 4
        for o in loans:
            assert o.status == 100
    finally:
        other.store.dispose()
        gen.close()


def test_a_database_from_a_newer_sandbox_is_refused_untouched(db: Path) -> None:
    gen = open_app(db, T0)
    sb = next(gen)
    try:
        with sb.lender.store.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        gen.close()
    from sandbox.store import StoreError

    with pytest.raises(StoreError, match="revision '9999' is newer than this sandbox"):
        create_lender(settings_for(f"sqlite:///{db}"), wall=lambda: T0)
    with sqlite3.connect(db) as conn:  # nothing was changed
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("9999",)]


def test_a_database_made_before_migrations_is_upgraded_in_place(db: Path) -> None:
    """Version 3 databases (schema_meta, no alembic_version) keep their orders and gain the
    new columns and tables."""
    gen = open_app(db, T0)
    sb = next(gen)
    try:
        order = Loan(sb, person("p-v3"), "ORD-PERSIST-V3001").create()
    finally:
        gen.close()
    with sqlite3.connect(db) as conn:  # back to how version 3 left it
        conn.execute("DROP TABLE alembic_version")
        conn.execute("ALTER TABLE callbacks DROP COLUMN retry_at")
        conn.execute("DROP TABLE retention_marks")
        for name in (
            "ix_orders_partner_id",
            "ix_orders_partner_status",
            "ix_orders_status_id",
            "ix_journal_partner_id",
            "ix_journal_partner_path",
            "ix_callbacks_partner_id",
            "ix_callbacks_partner_state",
            "ix_callbacks_order_id",
            "ux_orders_open_nik",
            "ux_orders_open_mobile",
        ):
            conn.execute(f"DROP INDEX {name}")
        conn.execute("CREATE INDEX ix_orders_status ON orders (status)")
        conn.execute("CREATE INDEX ix_journal_partner ON journal (partner_token, path)")
        conn.execute("DROP TABLE partner_credentials")
        conn.execute("CREATE TABLE schema_meta (id INTEGER PRIMARY KEY, version INTEGER)")
        conn.execute("INSERT INTO schema_meta VALUES (1, 3)")
    lender = create_lender(settings_for(f"sqlite:///{db}"), wall=lambda: T0)
    try:
        with lender.store.begin() as conn:
            assert conn.execute(text("SELECT order_no FROM orders")).scalars().all() == [
                order.order_no
            ]
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            # the upgraded schema is exactly the one a fresh database gets
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert diff == []
            assert conn.execute(text("SELECT count(*) FROM partner_credentials")).scalar() == 0
    finally:
        lender.store.dispose()
