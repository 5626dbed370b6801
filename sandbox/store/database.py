"""The unit of work: engine, transactions, row claims and fast copies, on SQLite or PostgreSQL.

`Store.transaction()` is one commit or none. Only portable SQL: row claims use FOR UPDATE
SKIP LOCKED where the backend has it. The schema is versioned (`schema_meta`): an unknown
version refuses to start instead of silently misreading rows.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import ClauseElement
from sqlalchemy.util import LRUCache

from ..core import jsontext
from .fast import Fast
from .migrations import SchemaError, upgrade
from .tables import Base

SCHEMA_LOCK = 0x1E7DE75A  # the advisory lock key schema changes take on PostgreSQL
ADVISORY_HOLD = text("SELECT pg_advisory_xact_lock(hashtext(:name || ' ' || current_schema()))")


class StoreError(Exception):
    pass


# PostgreSQL's deadlock_detected and serialization_failure: the transaction was rolled back
# for another's sake, and running it again is the documented answer.
RETRYABLE = frozenset({"40P01", "40001"})


def transient(e: BaseException) -> bool:
    """Whether `e` (a SQLAlchemy DBAPIError) says: run the transaction again."""
    return getattr(getattr(e, "orig", None), "sqlstate", None) in RETRYABLE


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    # WAL + NORMAL: a commit writes the log without waiting for the disk. A crashed or killed
    # process loses nothing it committed (the log is in the OS's cache); only a power cut can
    # lose the last commits, which a sandbox can afford (the default FULL costs an fsync each).
    cur.execute("PRAGMA synchronous=NORMAL")
    # The WAL is moved into the database file by the store's checkpointer thread, not by the
    # commit that fills it (SQLite's default every 1000 pages): a write touches ~15 pages, so
    # every ~70th request paid a checkpoint and its two fsyncs (6 ms: a p99 of 10x the
    # others). Writers still checkpoint past 80 MB of log, should the thread fall behind; a
    # restarted log's file is cut back to 64 MB.
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_SAFETY_PAGES}")
    cur.execute(f"PRAGMA journal_size_limit={64 * 2**20}")
    cur.close()


WAL_SAFETY_PAGES = 20_000  # 80 MB
RESTART_FRAMES = 8000  # a log this long (32 MB) is restarted from its beginning (Checkpointer)
CHECKPOINT_IDLE, CHECKPOINT_BUSY = 0.2, 0.02  # seconds between checkpoints


class Checkpointer:
    """A thread that moves a file database's WAL into the database, off the request path.

    A PASSIVE checkpoint on its own connection copies the log's pages and syncs the files
    while the store's transactions go on. Under steady writes it never quite catches up with
    the last commit, and SQLite restarts the log only once a checkpoint has (the file would
    grow without end). So when the log is long, it asks the store (`finish`) to run one more
    checkpoint right after its next commit, on its own connection under its lock: only the
    pages of the last few commits are left to copy (~2 ms, once every ~1000 writes), and the
    write after it starts the log from its beginning again."""

    def __init__(self, path: str):
        self.path = path
        self.finish = False  # set here, cleared by the store once it has checkpointed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, check_same_thread=False)
        frames = 0  # in the log at the last checkpoint: while writes pour in, look more often
        try:
            while not self._stop.wait(CHECKPOINT_BUSY if frames > 200 else CHECKPOINT_IDLE):
                try:
                    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:  # the file went away (a test's tmp dir): try again later
                    frames = 0
                self.finish = frames >= RESTART_FRAMES
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


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
        self._held: Connection | None = None  # SQLite: the connection `begin` uses
        self._checkpointer: Checkpointer | None = None
        self._fast: dict[int, tuple[Any, Fast]] = {}  # id(statement) -> (statement, compiled)
        self._copies_cache: LRUCache[Any, Any] | None = None  # shared by copy()'s stores

    @staticmethod
    def _make_engine(url: str) -> Engine:
        # JSON columns through orjson (core.jsontext): the stdlib's values, a fraction of its cost
        common: dict[str, Any] = {
            "json_serializer": jsontext.dumps,
            "json_deserializer": jsontext.loads,
        }
        if url in ("sqlite://", "sqlite:///:memory:"):
            engine = create_engine(
                "sqlite://",
                poolclass=StaticPool,
                connect_args={"check_same_thread": False},
                **common,
            )
        elif url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False}, **common)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, **common)
        if url.startswith("sqlite"):
            event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    def create_schema(self) -> None:
        """Create or upgrade the schema (migrations), under a database lock: several processes
        starting at once on one database take turns, and each finds it done (safe on restart)."""
        if self.url in ("sqlite://", "sqlite:///:memory:"):  # private and new: just create it
            Base.metadata.create_all(self.engine)
            return
        with self.engine.connect() as conn:
            if self.is_sqlite:
                # BEGIN IMMEDIATE takes SQLite's write lock now, not at the first write.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.begin()
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK})
            try:
                upgrade(conn)
            except SchemaError as e:
                conn.rollback()
                raise StoreError(str(e)) from None
            conn.commit()
        if self.is_sqlite:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction on a Core connection: the hot paths (requests, due events, the
        outbox) use statements, not ORM sessions, whose bookkeeping cost more than the SQL."""
        if self._lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._lock:
            # SQLite: the lock makes one transaction at a time, so one connection held for
            # them all saves a pool checkout and return per transaction (a fifth of a read).
            if self._held is None or self._held.invalidated or self._held.closed:
                self._held = self.engine.connect()
                self._start_checkpointer()
            with self._held.begin():
                yield self._held
            if self._checkpointer is not None and self._checkpointer.finish:
                self._checkpointer.finish = False
                self._held.connection.dbapi_connection.execute(  # type: ignore[union-attr]
                    "PRAGMA wal_checkpoint(PASSIVE)"
                ).fetchone()

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

    @contextmanager
    def exclusive(self) -> Iterator[Session]:
        """`transaction()` holding the schema lock from its start (PostgreSQL): processes
        starting at once on one database load the fixtures in turn. Without it two could both
        read "product 1001 / partner demo missing" before either committed, both insert it, and
        the later one died at start-up on the duplicate key (found by
        tests/postgres/test_three_processes.py). In READ COMMITTED each statement after the lock
        sees what the holder before committed, so the next process updates instead."""
        with self.transaction() as s:
            if not self.is_sqlite:
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK})
            yield s

    def claim(self, stmt: Any) -> Any:
        """A SELECT that claims rows: FOR UPDATE SKIP LOCKED on PostgreSQL, plain on SQLite."""
        return stmt if self.is_sqlite else stmt.with_for_update(skip_locked=True)

    def lock_row(self, stmt: Any) -> Any:
        return stmt if self.is_sqlite else stmt.with_for_update()

    def share_row(self, stmt: Any, *, of: Any = None, skip_locked: bool = False) -> Any:
        """FOR KEY SHARE on PostgreSQL (plain on SQLite): the row cannot be deleted (nor taken
        FOR UPDATE) until this transaction ends, yet others may share it and update its
        non-key columns (services.locks)."""
        if self.is_sqlite:
            return stmt
        return stmt.with_for_update(read=True, key_share=True, of=of, skip_locked=skip_locked)

    def hold(self, conn: Connection, name: str) -> None:
        """PostgreSQL: wait for the advisory lock `name` of the current schema (other schemas'
        sandboxes on the server keep theirs), held until the transaction ends. SQLite runs one
        transaction at a time (the store's lock): nothing to do."""
        if not self.is_sqlite:
            conn.execute(ADVISORY_HOLD, {"name": name})

    def prepared(self, build: Callable[[Store], Any]) -> Any:
        """`build(self)`, built once per store: a statement with bind parameters for a hot path
        (building one costs more than running it; claims and locks differ by backend)."""
        stmt = self._prepared.get(build)
        if stmt is None:
            stmt = self._prepared[build] = build(self)
        return stmt

    def fast(self, stmt: Any) -> Fast:
        """`stmt` compiled once for this backend, to run on the DBAPI cursor (`store.fast`);
        a function building it per backend (as `prepared` takes) works too."""
        if not isinstance(stmt, ClauseElement):
            stmt = self.prepared(stmt)
        found = self._fast.get(id(stmt))
        if found is None:  # the statement is kept with it, so its id cannot be reused
            found = self._fast[id(stmt)] = (stmt, Fast(stmt, self.engine.dialect))
        return found[1]

    def drop_all(self) -> None:
        Base.metadata.drop_all(self.engine)

    def _start_checkpointer(self) -> None:
        path = self.engine.url.database
        if (
            self._checkpointer is None
            and path
            and path != ":memory:"
            and "mode=memory" not in self.url
        ):
            self._checkpointer = Checkpointer(path)

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._held is not None:
            self._held.close()
            self._held = None
        self.engine.dispose()

    # ---- fast copies for the pytest fixtures: build a schema once, copy it per test ----

    def raw_sqlite(self) -> sqlite3.Connection:
        conn = self.engine.raw_connection()
        return conn.driver_connection  # type: ignore[return-value]

    def copy(self) -> Store:
        """A new in-memory store holding a copy of this SQLite store (the backup API, ~0.1 ms).

        Every copy's engine shares this store's initialised dialect and one compiled-statement
        cache kept here, so a copy's first queries are neither compiled again nor preceded by
        dialect set-up (most of a cold first call)."""
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        self.raw_sqlite().backup(conn)
        # Per connection (no pool "connect" event fires for it); of _sqlite_pragmas only what
        # a private in-memory database heeds: the journal and lock settings are for files.
        conn.execute("PRAGMA foreign_keys=ON")
        if self._copies_cache is None:
            self._copies_cache = LRUCache(1000)
        dialect = self.engine.dialect
        engine = Engine(
            StaticPool(lambda: conn, dialect=dialect),  # type: ignore[arg-type]
            dialect,
            self.engine.url,
            query_cache_size=0,
            execution_options={"compiled_cache": self._copies_cache},
        )
        copy = Store("sqlite://", engine=engine)
        copy._prepared = self._prepared  # the same backend: the same statements
        copy._fast = self._fast
        return copy
