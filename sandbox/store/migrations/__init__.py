"""The schema's versions: Alembic migrations, applied at start under a database lock.

`upgrade(conn)` brings any database to the current schema inside the caller's transaction:
a fresh one gets every table (`create_all`) and is stamped at the newest revision; one made
before migrations existed (a `schema_meta` row saying version 3) is stamped at the baseline
and upgraded; any other is upgraded from its revision. A database stamped with a revision this
sandbox does not know (made by a newer version) is refused, never touched.

A new schema change is a new file in `versions/` (`alembic revision` with this folder as the
script location, or by hand following the others) and the same change in `store/tables.py`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from ..tables import Base

HERE = Path(__file__).parent
BASELINE = "0003"  # the schema of the last version without migrations (schema_meta 3)


class SchemaError(Exception):
    """The database's schema is not one this sandbox can use or upgrade."""


def _config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    """The newest revision."""
    rev = ScriptDirectory(str(HERE)).get_current_head()
    assert rev is not None
    return rev


def current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(conn: Connection) -> None:
    """Bring the database on `conn` to the newest revision (the caller holds the lock)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per step otherwise
    cfg = _config(conn)
    tables = set(inspect(conn).get_table_names())
    if "orders" not in tables:
        Base.metadata.create_all(conn)
        command.stamp(cfg, "head")
        return
    if "alembic_version" not in tables:
        version = _old_version(conn, tables)
        if version != 3:
            raise SchemaError(
                f"database schema version {version}, made by an early development version "
                "of the sandbox: use a fresh database"
            )
        command.stamp(cfg, BASELINE)
    revision = current(conn)
    known = {s.revision for s in ScriptDirectory(str(HERE)).walk_revisions()}
    if revision not in known:
        raise SchemaError(
            f"database schema revision {revision!r} is newer than this sandbox (newest "
            f"{head()!r}): upgrade lender-sandbox, or use another database"
        )
    command.upgrade(cfg, "head")


def _old_version(conn: Connection, tables: set[str]) -> int | None:
    if "schema_meta" not in tables:
        return None
    return conn.execute(text("SELECT version FROM schema_meta WHERE id = 1")).scalar()
