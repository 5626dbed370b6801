"""Grow a SQLite sandbox database from K real orders to N by cloning them, rows and journal.

Used by `bench_scale.py` (not a benchmark itself). The K template orders are made through the
real pipeline; each clone is a template order under a new order_no and a new person (NIK,
mobile with the same scenario suffix, name), with every row that belongs to the order copied:
rows that point at it (an `order_id` column or a foreign key to `orders`), rows that point at
those (foreign keys, e.g. callback attempts), rows naming its order_no, and rows of any other
table whose text names its order_no or NIK (the request journal). The tables are read from
the database itself (sqlite_master, PRAGMA table_info / foreign_key_list), so a column or a
table added later is cloned too; the tables it left alone are reported. In text columns
(JSON included) the template's order_no, NIK, mobile and name are replaced by the clone's, in
SQL (SQLite's replace()), so 100 000 orders take seconds. Integer keys are shifted per clone.
Not rewritten: a journal entry's raw request (it is the encrypted envelope as received).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ORDERS = "orders"
# The identity of an order: its number and its person. Replaced in this order in text columns.
IDENTITY = ("order_no", "user_idcard", "user_mobile", "user_name")
TOKEN = re.compile(r"[A-Za-z0-9_-]{8,}")


@dataclass(frozen=True)
class Identity:
    order_no: str
    nik: str
    mobile: str
    name: str


@dataclass
class Report:
    cloned: dict[str, int] = field(default_factory=dict)  # table -> rows added
    kept: list[str] = field(default_factory=list)  # tables with no row of any order


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Table:
    name: str
    columns: list[str]
    text_ok: list[str]  # columns whose text values get the identity replaced
    int_pk: str | None  # a single INTEGER primary key, shifted per clone
    fks: dict[str, str]  # column -> referenced table (declared, or `order_id` -> orders)


def _tables(conn: sqlite3.Connection) -> dict[str, Table]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    out = {}
    for name in names:
        info = conn.execute(f"PRAGMA table_info({_q(name)})").fetchall()
        cols = [r[1] for r in info]
        pks = [r for r in info if r[5]]
        int_pk = pks[0][1] if len(pks) == 1 and "INT" in (pks[0][2] or "").upper() else None
        fks = {r[3]: r[2] for r in conn.execute(f"PRAGMA foreign_key_list({_q(name)})")}
        if "order_id" in cols and name != ORDERS:
            fks.setdefault("order_id", ORDERS)
        text_ok = [c for c in cols if c != int_pk and c not in fks]
        out[name] = Table(name, cols, text_ok, int_pk, fks)
    if ORDERS not in out or not set(IDENTITY) <= set(out[ORDERS].columns):
        raise SystemExit(f"cloner: no `{ORDERS}` table with columns {IDENTITY}: adapt bench/")
    return out


def _owners(conn: sqlite3.Connection, tables: dict[str, Table]) -> dict[str, str]:
    """Fill TEMP own_<table>(rid, oid): which template order each row belongs to.

    Returns table -> how its owner was found."""
    how: dict[str, str] = {}
    _own(conn, how, ORDERS, f"SELECT rowid, id FROM {ORDERS}", "the order")
    _follow(conn, tables, how)
    for t in tables.values():
        if t.name not in how and "order_no" in t.columns:
            on = "t.order_no = r.order_no"
            if "partner_token" in t.columns:
                on += " AND t.partner_token = r.partner_token"
            select = f"SELECT t.rowid, r.id FROM {_q(t.name)} t JOIN {ORDERS} r ON {on}"
            _own(conn, how, t.name, select, "order_no")
    _follow(conn, tables, how)
    return how


def _own(conn: sqlite3.Connection, how: dict[str, str], name: str, select: str, why: str) -> None:
    conn.execute(f"CREATE TEMP TABLE {_q('own_' + name)} (rid INTEGER PRIMARY KEY, oid INT)")
    conn.execute(f"INSERT OR IGNORE INTO {_q('own_' + name)} {select}")
    how[name] = why


def _follow(conn: sqlite3.Connection, tables: dict[str, Table], how: dict[str, str]) -> None:
    """Own the rows that point at owned rows, until nothing new (foreign-key chains)."""
    progress = True
    while progress:
        progress = False
        for t in tables.values():
            ref = next((r for r in t.fks.values() if r in how), None) if t.name not in how else None
            if ref is None:
                continue
            col = next(c for c, r in t.fks.items() if r == ref)
            rt = tables[ref]
            key = "id" if "id" in rt.columns else (rt.int_pk or "rowid")
            select = (
                f"SELECT t.rowid, o.oid FROM {_q(t.name)} t JOIN {_q(ref)} r "
                f"ON t.{_q(col)} = r.{_q(key)} JOIN {_q('own_' + ref)} o ON o.rid = r.rowid"
            )
            _own(conn, how, t.name, select, f"{col} -> {ref}")
            progress = True


def _scan(conn: sqlite3.Connection, t: Table, by_token: dict[str, int]) -> int:
    """Rows of `t` whose text names exactly one template order (order_no or NIK)."""
    found = []
    cols = ", ".join(_q(c) for c in t.text_ok) or "NULL"
    for row in conn.execute(f"SELECT rowid, {cols} FROM {_q(t.name)}"):
        owners = {
            by_token[tok]
            for value in row[1:]
            if isinstance(value, str)
            for tok in TOKEN.findall(value)
            if tok in by_token
        }
        if len(owners) == 1:
            found.append((row[0], owners.pop()))
    if found:
        conn.execute(f"CREATE TEMP TABLE {_q('own_' + t.name)} (rid INTEGER PRIMARY KEY, oid INT)")
        conn.executemany(f"INSERT INTO {_q('own_' + t.name)} VALUES (?, ?)", found)
    return len(found)


def _replaced(col: str) -> str:
    expr = f"t.{_q(col)}"
    for i in range(len(IDENTITY)):
        expr = f"replace({expr}, m.old{i}, m.new{i})"
    return f"CASE WHEN typeof(t.{_q(col)}) = 'text' THEN {expr} ELSE t.{_q(col)} END"


def clone(
    db: Path,
    total: int,
    identity: Callable[[int, Identity], Identity],
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[Report, list[tuple[Identity, Identity]]]:
    """Grow `db` to `total` orders; `identity(k, template)` names clone number k (k counts
    from the number of templates). Returns the report and (template, clone) pairs."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        return _clone(conn, total, identity, progress)
    finally:
        conn.close()


def _clone(
    conn: sqlite3.Connection,
    total: int,
    identity: Callable[[int, Identity], Identity],
    progress: Callable[[str], None],
) -> tuple[Report, list[tuple[Identity, Identity]]]:
    tables = _tables(conn)
    cols = ", ".join(IDENTITY)
    templates = conn.execute(f"SELECT id, {cols} FROM {ORDERS} ORDER BY id").fetchall()
    k_count = len(templates)
    if total <= k_count:
        return Report(), []
    how = _owners(conn, tables)
    by_token = {tok: oid for oid, no, nik, *_ in templates for tok in (no, nik)}
    for t in tables.values():
        if t.name not in how and _scan(conn, t, by_token):
            how[t.name] = "names the order in its text"
    _follow(conn, tables, how)  # rows pointing at those (e.g. at journal entries)
    strides = {
        name: (
            conn.execute(f"SELECT max({_q(tables[name].int_pk)}) FROM {_q(name)}").fetchone()[0]
            or 0
        )
        + 1
        for name in how
        if tables[name].int_pk
    }
    pairs, rows = [], []
    for k in range(k_count, total):
        oid, *ident = templates[k % k_count]
        old = Identity(*ident)
        new = identity(k, old)
        pairs.append((old, new))
        rows.append((k // k_count, oid, *_flat(old, new)))
    olds = ", ".join(f"old{i}, new{i}" for i in range(len(IDENTITY)))
    conn.execute(f"CREATE TEMP TABLE cmap (c INT, oid INT, {olds})")
    marks = ", ".join("?" * (2 + 2 * len(IDENTITY)))
    conn.executemany(f"INSERT INTO cmap VALUES ({marks})", rows)
    conn.execute("CREATE INDEX temp.cmap_oid ON cmap (oid)")
    report = Report(kept=sorted(set(tables) - set(how)))
    conn.execute("BEGIN")
    for name in _parents_first(tables, how):
        report.cloned[name] = _copy(conn, tables[name], strides)
        progress(f"  {name}: +{report.cloned[name]} rows (owner: {how[name]})")
    conn.execute("COMMIT")
    return report, pairs


def _flat(old: Identity, new: Identity) -> list[str]:
    out = []
    for a, b in zip(
        (old.order_no, old.nik, old.mobile, old.name),
        (new.order_no, new.nik, new.mobile, new.name),
        strict=True,
    ):
        out += [a, b]
    return out


def _parents_first(tables: dict[str, Table], how: dict[str, str]) -> list[str]:
    done: list[str] = []
    while len(done) < len(how):
        ready = [
            name
            for name in how
            if name not in done
            and {r for r in tables[name].fks.values() if r in how and r != name} <= set(done)
        ]
        done += ready or [n for n in how if n not in done]  # a cycle: any order will do
    return done


def _copy(conn: sqlite3.Connection, t: Table, strides: dict[str, int]) -> int:
    exprs: list[str] = []
    for col in t.columns:
        if col == t.int_pk:
            exprs.append(f"t.{_q(col)} + m.c * {strides[t.name]}")
        elif col in t.fks and t.fks[col] in strides:
            exprs.append(f"t.{_q(col)} + m.c * {strides[t.fks[col]]}")
        elif col in t.text_ok:
            exprs.append(_replaced(col))
        else:
            exprs.append(f"t.{_q(col)}")
    cols = ", ".join(_q(c) for c in t.columns)
    try:
        cur = conn.execute(
            f"INSERT INTO {_q(t.name)} ({cols}) SELECT {', '.join(exprs)} FROM {_q(t.name)} t "
            f"JOIN {_q('own_' + t.name)} o ON o.rid = t.rowid JOIN cmap m ON m.oid = o.oid "
            "ORDER BY m.c, t.rowid"
        )
    except sqlite3.IntegrityError as e:
        raise SystemExit(
            f"cloner: copying {t.name} breaks a constraint ({e}): a column that must be unique "
            "is not part of an order's identity; extend bench/cloner.py"
        ) from None
    return cur.rowcount
