"""House rules that a test can hold (docs/architecture.md):

- time is an argument: no module of sandbox/ reads the wall clock except the clock itself,
  the lender that injects `wall()`, and the edges that really need wall time (delivery
  retries, servers, schedulers, fault latency, the harness, the demo and the CLI);
- docs/errors.md lists exactly the codes of sandbox.errors.CATALOG.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from sandbox.core.errors import CATALOG

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "sandbox"
# Package-relative paths of the modules that may read the wall clock: the lender that injects
# `wall()`, and edges that need wall time (servers, harness, demo, CLI).
WALL_TIME_ALLOWED = {
    "services/lender.py",
    "harness/sink.py",
    "harness/liveserver.py",
    "harness/sandbox.py",
    "harness/demo.py",
    "cli/listen.py",
    "cli/local.py",
    "cli/acceptance.py",  # check-lender: a real lender's today is the wall clock's
}


def wall_clock_reads(source: str) -> list[str]:
    """`time.time()`, `datetime.now()`, `date.today()` and friends, however imported."""
    tree = ast.parse(source)
    time_mods: set[str] = set()
    datetime_mods: set[str] = set()
    clock_funcs: set[str] = set()  # from time import time [as t]
    dt_classes: set[str] = set()  # from datetime import datetime/date [as x]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "time":
                    time_mods.add(a.asname or "time")
                if a.name == "datetime":
                    datetime_mods.add(a.asname or "datetime")
        elif isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime"):
            for a in node.names:
                if node.module == "time" and a.name in ("time", "time_ns"):
                    clock_funcs.add(a.asname or a.name)
                if node.module == "datetime" and a.name in ("datetime", "date"):
                    dt_classes.add(a.asname or a.name)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            base = node.value
            if (
                node.attr in ("time", "time_ns")
                and isinstance(base, ast.Name)
                and base.id in time_mods
            ):
                found.append(f"line {node.lineno}: {base.id}.{node.attr}")
            if node.attr in ("now", "utcnow", "today"):
                if isinstance(base, ast.Name) and base.id in dt_classes:
                    found.append(f"line {node.lineno}: {base.id}.{node.attr}")
                if (
                    isinstance(base, ast.Attribute)
                    and base.attr in ("datetime", "date")
                    and isinstance(base.value, ast.Name)
                    and base.value.id in datetime_mods
                ):
                    found.append(f"line {node.lineno}: datetime.{base.attr}.{node.attr}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in clock_funcs
        ):
            found.append(f"line {node.lineno}: {node.func.id}()")
    return found


@pytest.mark.parametrize(
    "snippet,hits",
    [
        ("import time\nx = time.time()", 1),
        ("import time as t\nx = t.time_ns()", 1),
        ("from time import time\nx = time()", 1),
        ("from time import time as now\nx = now()", 1),
        ("from datetime import datetime\nx = datetime.now()", 1),
        ("from datetime import datetime as dt\nx = dt.utcnow()", 1),
        ("from datetime import date\nx = date.today()", 1),
        ("import datetime\nx = datetime.datetime.now(); y = datetime.date.today()", 2),
        ("import time\nwall = time.time", 1),  # a reference reads it later
        ("from datetime import datetime, time\nx = time(23, 59); y = datetime.fromtimestamp(0)", 0),
        ("from datetime import date\nx = date.fromtimestamp(0)", 0),
        ("def f(now: float) -> float:\n    return now + 1", 0),
        ("import time\nx = time.monotonic()", 0),
    ],
)
def test_the_lint_itself(snippet: str, hits: int) -> None:
    assert len(wall_clock_reads(snippet)) == hits, wall_clock_reads(snippet)


def test_core_modules_take_time_as_an_argument() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).as_posix() in WALL_TIME_ALLOWED:
            continue
        found = wall_clock_reads(path.read_text("utf-8"))
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}, (
        "read the time from the partner's clock (Lender.now) or take it "
        f"as an argument: {offenders}"
    )


def test_the_allowed_list_names_real_modules_and_no_core_one() -> None:
    modules = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}
    assert WALL_TIME_ALLOWED <= modules
    assert not any(name.startswith(("core/", "store/")) for name in WALL_TIME_ALLOWED)


# ---- docs/errors.md ----

ROW = re.compile(
    r"^\|\s*(\d{5})\s*\|\s*`?([a-z_]+)`?\s*\|\s*(.+?)\s*\|\s*(.+?)\s*\|\s*(.+?)\s*\|\s*$"
)


def documented_errors() -> dict[int, tuple[str, str]]:
    rows = {}
    for line in (ROOT / "docs" / "errors.md").read_text("utf-8").splitlines():
        m = ROW.match(line)
        if m:
            code = int(m.group(1))
            assert code not in rows, f"{code} is listed twice"
            rows[code] = (m.group(2), m.group(3))
    return rows


def test_errors_doc_lists_exactly_the_catalog() -> None:
    rows = documented_errors()
    assert sorted(rows) == sorted(e.code for e in CATALOG)
    for e in CATALOG:
        name, message = rows[e.code]
        assert name == e.name, e.code
        assert message.strip("`") == e.message, e.code
