"""The store: SQLAlchemy 2 tables and the unit-of-work, on SQLite (default) or PostgreSQL.

Everything the sandbox knows lives here — partners, products, orders, timelines, due events,
payment codes, the callback outbox and its attempts, the request journal, fault rules — so
nothing is lost on a crash or restart and several processes can share one PostgreSQL
database. Only portable SQL: row claims use FOR UPDATE SKIP LOCKED where the backend has it.
The schema is versioned (`schema_meta`): an unknown version refuses to start instead of
silently misreading rows.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, create_engine, event)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.util import LRUCache

SCHEMA_VERSION = 2  # 2: orders.extension_paid


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class SchemaMeta(Base):
    __tablename__ = "schema_meta"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int]


class Partner(Base):
    __tablename__ = "partners"
    partner_token: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    aes_key: Mapped[str] = mapped_column(String(200))
    aes_iv: Mapped[str] = mapped_column(String(200))
    callback_url: Mapped[str] = mapped_column(String(500), default="")
    encrypt_callbacks: Mapped[bool] = mapped_column(Boolean, default=True)
    callbacks_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    chaos: Mapped[dict[str, Any]] = mapped_column(default=dict)        # callback chaos settings
    clock_mode: Mapped[str] = mapped_column(String(10))
    clock_rate: Mapped[float] = mapped_column(Float, default=1.0)
    clock_anchor_wall: Mapped[float] = mapped_column(Float)
    clock_anchor_virtual: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)                   # wall


class ProductRow(Base):
    __tablename__ = "products"
    product_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict[str, Any]]                                       # the fixture, as JSON


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("partner_token", "order_no"),
                      Index("ix_orders_person", "partner_token", "user_idcard"),
                      Index("ix_orders_mobile", "partner_token", "user_mobile"))
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    partner_token: Mapped[str] = mapped_column(String(64), ForeignKey("partners.partner_token"))
    order_no: Mapped[str] = mapped_column(String(32))
    product_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer, index=True)
    user_mobile: Mapped[str] = mapped_column(String(20))
    user_idcard: Mapped[str] = mapped_column(String(20))
    user_name: Mapped[str] = mapped_column(String(100))
    is_reloan: Mapped[int] = mapped_column(Integer, default=0)
    application_amount: Mapped[int]
    application_term: Mapped[int]
    term_unit: Mapped[int]
    payload_hash: Mapped[str] = mapped_column(String(64))             # 05 idempotency
    basic_info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    supplement_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    device_ip: Mapped[str] = mapped_column(String(64), default="")
    scenario: Mapped[dict[str, Any]] = mapped_column(default=dict)    # the decided outcome
    # figures fixed at approval
    approved_amount: Mapped[int | None] = mapped_column(Integer, nullable=True)
    approved_term: Mapped[int | None] = mapped_column(Integer, nullable=True)
    interest_amount: Mapped[int | None] = mapped_column(Integer, nullable=True)
    admin_amount: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remark: Mapped[str] = mapped_column(Text, default="")
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    payout_attempts: Mapped[int] = mapped_column(Integer, default=0)
    payout_error: Mapped[str] = mapped_column(String(200), default="")
    # loan (virtual epoch seconds)
    approval_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    loan_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    due_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    interest_due: Mapped[int] = mapped_column(Integer, default=0)      # interest of the current period
    extensions: Mapped[int] = mapped_column(Integer, default=0)
    settled_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    paid_amount: Mapped[int] = mapped_column(Integer, default=0)
    extension_paid: Mapped[int] = mapped_column(Integer, default=0)    # counts to the 100 % cap
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class BankCard(Base):
    __tablename__ = "bank_cards"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    bank_code: Mapped[str] = mapped_column(String(32))
    bank_card: Mapped[str] = mapped_column(String(32))
    user_name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float)


class TimelineRow(Base):
    __tablename__ = "timeline"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    from_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_status: Mapped[int]
    trigger: Mapped[str] = mapped_column(String(32))
    at: Mapped[float] = mapped_column(Float)                           # virtual
    cause: Mapped[str] = mapped_column(String(200))


class DueEvent(Base):
    __tablename__ = "due_events"
    __table_args__ = (Index("ix_due_pending", "partner_token", "state", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    partner_token: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[float] = mapped_column(Float)                       # virtual
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | done | void
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RepayCode(Base):
    __tablename__ = "repay_codes"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    partner_token: Mapped[str] = mapped_column(String(64))
    repay_type: Mapped[int]                                            # 1 repay, 2 extension
    delay_term: Mapped[int | None] = mapped_column(Integer, nullable=True)
    amount: Mapped[int]
    repay_method: Mapped[int]
    bank_code: Mapped[str] = mapped_column(String(32))
    method_code: Mapped[str] = mapped_column(String(16))
    merchant_name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(10), default="open")     # open | paid | void
    paid_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ExtensionRow(Base):
    __tablename__ = "extensions"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    loan_amount: Mapped[int]
    delay_amount: Mapped[int]
    delay_term: Mapped[int]
    term_unit: Mapped[int]
    delay_time: Mapped[float] = mapped_column(Float)                   # paid at (virtual)
    start_time: Mapped[float] = mapped_column(Float)                   # old due
    expiry_time: Mapped[float] = mapped_column(Float)                  # new due
    repay_code: Mapped[str] = mapped_column(String(40))


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    repay_code: Mapped[str] = mapped_column(String(40))
    repay_type: Mapped[int]
    amount: Mapped[int]
    at: Mapped[float] = mapped_column(Float)                           # virtual
    source: Mapped[str] = mapped_column(String(32))                    # api | page | scenario


class Callback(Base):
    """The outbox: one row per callback to deliver (protocol.md §5)."""
    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_due", "state", "next_attempt_at"),
                      Index("ix_callbacks_order", "partner_token", "order_no"))
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    partner_token: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    order_no: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]]
    created_at: Mapped[float] = mapped_column(Float)                   # virtual
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0) # wall
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)     # wall: claimed by a worker
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class CallbackAttempt(Base):
    __tablename__ = "callback_attempts"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    callback_id: Mapped[int] = mapped_column(ForeignKey("callbacks.id"), index=True)
    at: Mapped[float] = mapped_column(Float)                           # wall
    url: Mapped[str] = mapped_column(String(500))
    request_body: Mapped[str] = mapped_column(Text)                    # as sent
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[str] = mapped_column(Text, default="")
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str] = mapped_column(Text, default="")


class JournalEntry(Base):
    __tablename__ = "journal"
    __table_args__ = (Index("ix_journal_partner", "partner_token", "path"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    partner_token: Mapped[str] = mapped_column(String(64), default="")
    path: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)                           # wall
    virtual_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    request_raw: Mapped[str] = mapped_column(Text)
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # decrypted
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    http_status: Mapped[int] = mapped_column(Integer, default=200)
    code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fault: Mapped[str] = mapped_column(String(200), default="")


class FaultRule(Base):
    __tablename__ = "faults"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    partner_token: Mapped[str] = mapped_column(String(64), default="")  # "" = every partner
    path: Mapped[str] = mapped_column(String(64), default="")           # "" = every path
    rule: Mapped[dict[str, Any]]
    remaining: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class StoreError(Exception):
    pass


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Store:
    """Engine + sessions. `transaction()` is the unit of work: one commit or none."""

    def __init__(self, url: str, *, engine: Engine | None = None):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = engine or self._make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer anyway; serializing units of work in-process avoids
        # "database is locked" under the server's thread pool. PostgreSQL needs no lock.
        self._lock: threading.RLock | None = threading.RLock() if self.is_sqlite else None
        self._prepared: dict[Callable[[Store], Any], Any] = {}
        self._copies_cache: LRUCache[Any, Any] | None = None  # shared by copy()'s stores

    @staticmethod
    def _make_engine(url: str) -> Engine:
        if url in ("sqlite://", "sqlite:///:memory:"):
            engine = create_engine("sqlite://", poolclass=StaticPool,
                                   connect_args={"check_same_thread": False})
        elif url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False})
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
        if url.startswith("sqlite"):
            event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    def create_schema(self) -> None:
        """Create missing tables and check the schema version (idempotent, safe on restart)."""
        Base.metadata.create_all(self.engine)
        with self.transaction() as s:
            meta = s.get(SchemaMeta, 1)
            if meta is None:
                s.add(SchemaMeta(id=1, version=SCHEMA_VERSION))
            elif meta.version != SCHEMA_VERSION:
                raise StoreError(f"database schema version {meta.version}, this sandbox needs "
                                 f"{SCHEMA_VERSION}: use a fresh database or migrate")
        if self.is_sqlite and ":memory:" not in self.url and self.url != "sqlite://":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        if self._lock is not None:
            self._lock.acquire()
        try:
            with self._sessions() as session, session.begin():
                yield session
        finally:
            if self._lock is not None:
                self._lock.release()

    def claim(self, stmt: Any) -> Any:
        """A SELECT that claims rows: FOR UPDATE SKIP LOCKED on PostgreSQL, plain on SQLite."""
        return stmt if self.is_sqlite else stmt.with_for_update(skip_locked=True)

    def lock_row(self, stmt: Any) -> Any:
        return stmt if self.is_sqlite else stmt.with_for_update()

    def prepared(self, build: Callable[[Store], Any]) -> Any:
        """`build(self)`, built once per store: a statement with bind parameters for a hot path
        (building one costs more than running it; claims and locks differ by backend)."""
        stmt = self._prepared.get(build)
        if stmt is None:
            stmt = self._prepared[build] = build(self)
        return stmt

    def drop_all(self) -> None:
        Base.metadata.drop_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    # ---- fast copies for the pytest fixtures: build a schema once, copy it per test ----

    def raw_sqlite(self) -> sqlite3.Connection:
        conn = self.engine.raw_connection()
        return conn.driver_connection  # type: ignore[return-value]

    def copy(self) -> "Store":
        """A new in-memory store holding a copy of this SQLite store (the backup API, ~0.1 ms).

        Every copy's engine shares this store's initialised dialect and one compiled-statement
        cache kept here, so a copy's first queries are neither compiled again nor preceded by
        dialect set-up (most of a cold first call)."""
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        self.raw_sqlite().backup(conn)
        _sqlite_pragmas(conn, None)  # per connection; no pool "connect" event fires for it
        if self._copies_cache is None:
            self._copies_cache = LRUCache(1000)
        dialect = self.engine.dialect
        engine = Engine(StaticPool(lambda: conn, dialect=dialect), dialect, self.engine.url,
                        query_cache_size=0,
                        execution_options={"compiled_cache": self._copies_cache})
        copy = Store("sqlite://", engine=engine)
        copy._prepared = self._prepared  # the same backend: the same statements
        return copy
