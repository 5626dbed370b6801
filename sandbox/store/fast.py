"""Hot statements, compiled once and run straight on the DBAPI cursor.

A request costs a few SQL statements; SQLAlchemy's execution machinery (execution context,
result proxy, parameter processing per call) cost several times what SQLite spends on them.
`Fast` keeps what SQLAlchemy decides — the SQL it compiles for the dialect, the order of the
parameters, the bind and result processors of each column type (JSON, booleans) — and skips
the rest: the statements are still defined once, as Core, in the modules that own them.
Used inside a `Store.begin()` transaction through `run`, `rows`, `first`, `many`.

Only SQLite runs this way: it is the embedded default, where SQLAlchemy's share of a request is
largest, and its DBAPI type handling is simple. PostgreSQL's drivers decide result types from
the cursor, and its network round trip dwarfs the saving, so there the same calls go through
`Connection.execute` unchanged.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class Fast:
    """One Core statement compiled for one dialect (`Store.fast` caches them)."""

    def __init__(self, stmt: ClauseElement, dialect: Dialect):
        self.stmt = stmt
        self.native = dialect.name == "sqlite"
        if not self.native:
            return
        compiled = stmt.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        columns = compiled._result_columns or []
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        names = list(compiled.positiontup or ()) if self.positional else list(compiled.binds)
        self.names = names
        # Values the statement carries itself (`state = 'pending'`) and the runtime ones.
        self.fixed = {
            n: b.value
            for n, b in compiled.binds.items()
            if not b.required and b.callable is None and n in names
        }
        procs: dict[str, Any] = dict(compiled._bind_processors or {})  # tuples only for IN lists
        # The runtime values in one C call; the statement's own values and the processors
        # (JSON columns, booleans) placed after. A value the caller names for a statement's
        # own (anonymous) bind is not expected, so it is not looked for.
        runtime = [n for n in names if n not in self.fixed]
        self.take = itemgetter(*runtime) if len(runtime) > 1 else None
        self.one = runtime[0] if len(runtime) == 1 else None
        self.fill = [(i, self.fixed[n]) for i, n in enumerate(names) if n in self.fixed]
        self.convert = [(i, procs[n]) for i, n in enumerate(names) if procs.get(n) is not None]
        self.result: list[Callable[[Any], Any] | None] = [
            e.type._cached_result_processor(dialect, None)  # what a Row would apply
            for e in columns
        ]
        self.any_result = any(self.result)
        keys = [e.keyname for e in columns]
        # Rows with attributes, like SQLAlchemy's (a named tuple is as cheap as a tuple).
        self.row_type: Any = namedtuple("Row", keys, rename=True) if keys else None

    def params(self, values: Mapping[str, Any]) -> Any:
        if self.take is not None:
            out = list(self.take(values))
        else:
            out = [values[self.one]] if self.one is not None else []
        for i, value in self.fill:
            out.insert(i, value)
        for i, proc in self.convert:
            if out[i] is not None:
                out[i] = proc(out[i])
        return out if self.positional else dict(zip(self.names, out, strict=True))

    def _row(self, row: Sequence[Any]) -> Any:
        assert self.row_type is not None, "the statement returns no rows"
        if not self.any_result:
            return self.row_type._make(row)
        return self.row_type._make(
            p(v) if p is not None else v for p, v in zip(self.result, row, strict=True)
        )


def _cursor(conn: Connection) -> Any:
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def _execute(conn: Connection, fast: Fast, values: Mapping[str, Any]) -> Any:
    cur = _cursor(conn)
    params = fast.params(values)
    try:
        cur.execute(fast.sql, params)
    except sqlite3.Error as e:  # raised as SQLAlchemy would: IntegrityError is IntegrityError
        raise _wrapped(fast, params, e) from e
    return cur


def _wrapped(fast: Fast, params: Any, e: Exception) -> Exception:
    return exc.DBAPIError.instance(fast.sql, params, e, sqlite3.Error)


def run(conn: Connection, fast: Fast, values: Mapping[str, Any] = {}) -> None:
    """Execute once, for its effect."""
    if fast.native:
        _execute(conn, fast, values)
    else:
        conn.execute(fast.stmt, dict(values))  # type: ignore[call-overload]


def insert(conn: Connection, fast: Fast, values: Mapping[str, Any]) -> int:
    """Insert one row; its new id."""
    if not fast.native:
        result = conn.execute(fast.stmt, dict(values))  # type: ignore[call-overload]
        return int(result.inserted_primary_key[0])
    return int(_execute(conn, fast, values).lastrowid)


def rows(conn: Connection, fast: Fast, values: Mapping[str, Any] = {}) -> list[Any]:
    """Every row, each with attributes named after the columns."""
    if not fast.native:
        return list(conn.execute(fast.stmt, dict(values)))  # type: ignore[call-overload]
    return [fast._row(r) for r in _execute(conn, fast, values).fetchall()]


def first(conn: Connection, fast: Fast, values: Mapping[str, Any] = {}) -> Any:
    """The first row, or None."""
    if not fast.native:
        return conn.execute(fast.stmt, dict(values)).first()  # type: ignore[call-overload]
    row = _execute(conn, fast, values).fetchone()
    return fast._row(row) if row is not None else None


def many(conn: Connection, fast: Fast, values: Iterable[Mapping[str, Any]]) -> None:
    """Execute once per set of values (one executemany)."""
    if not fast.native:
        conn.execute(fast.stmt, [dict(v) for v in values])  # type: ignore[call-overload]
        return
    params = [fast.params(v) for v in values]
    try:
        _cursor(conn).executemany(fast.sql, params)
    except sqlite3.Error as e:
        raise _wrapped(fast, params, e) from e
