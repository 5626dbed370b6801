"""The package's layers, read from its source (docs/architecture.md "Layers").

Each folder of sandbox/ is a layer and imports only point down:
core <- store <- services <- web <- cli, and harness (the test harness and clients) sits on
services and web. Imports inside functions count; no module imports itself back through a
cycle; Starlette and Jinja2 are imported only in web/; core does no I/O (no database, HTTP,
web framework or scheduler library). No module is over 600 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sandbox"

# layer -> the layers it may import (itself included)
ALLOWED = {
    "core": {"core"},
    "store": {"core", "store"},
    "services": {"core", "store", "services"},
    "web": {"core", "services", "web"},
    "harness": {"core", "services", "web", "harness"},
    "cli": {"core", "services", "web", "harness", "cli"},
    "reexports": {"harness"},  # sandbox.testing, sandbox.client, sandbox.pytest_plugin
    "package": {"cli"},  # sandbox/__init__.py and __main__.py
}
TOP_LEVEL = {
    "cli": "cli",
    "testing": "reexports",
    "client": "reexports",
    "pytest_plugin": "reexports",
    "__init__": "package",
    "__main__": "package",
}
WEB_ONLY = ("starlette", "jinja2", "markupsafe", "uvicorn")
NOT_IN_CORE = ("sqlalchemy", "httpx", "apscheduler", "uvicorn", "starlette", "jinja2", "psycopg")


def modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 2:
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


MODULES = modules()


def layer(module: str) -> str:
    name = module.split(".")[1]
    return TOP_LEVEL.get(name, name)


def imports(module: str) -> list[tuple[str, int]]:
    """(imported module, line) of every import in `module`, function-level ones included,
    resolved to the package's modules (or the third-party top-level name)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text("utf-8"))
    package = module.split(".")[:-1]
    if path.name == "__init__.py" and not module.endswith("__init__"):
        package = module.split(".")  # a subpackage's __init__ is the package itself
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            found += [(f"{target}.{a.name}", node.lineno) for a in node.names]
    return found


def resolve(name: str) -> str | None:
    """The package module `name` refers to (a submodule, or the module an object is in)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def edges() -> dict[str, set[tuple[str, int]]]:
    out: dict[str, set[tuple[str, int]]] = {}
    for module in MODULES:
        targets = set()
        for name, line in imports(module):
            if name.split(".")[0] != "sandbox":
                continue
            target = resolve(name)
            if target and target != module:
                targets.add((target, line))
        out[module] = targets
    return out


EDGES = edges()


def test_the_package_has_its_layers():
    assert {layer(m) for m in MODULES} >= {"core", "store", "services", "web", "harness"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_point_down(module: str) -> None:
    mine = layer(module)
    wrong = sorted(
        f"line {line}: {target}"
        for target, line in EDGES[module]
        if target != "sandbox" and layer(target) not in ALLOWED[mine]
    )
    assert not wrong, f"{module} ({mine}) may import {sorted(ALLOWED[mine])} only: {wrong}"


def test_no_import_cycles() -> None:
    graph = {m: {t for t, _ in targets} for m, targets in EDGES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_third_party_imports_stay_in_their_layer(module: str) -> None:
    third = {name.split(".")[0] for name, _ in imports(module) if not name.startswith("sandbox")}
    if layer(module) != "web":
        assert not third & set(WEB_ONLY), f"{module} imports {third & set(WEB_ONLY)}: web/ only"
    if layer(module) == "core":
        assert not third & set(NOT_IN_CORE), f"{module} does I/O: {third & set(NOT_IN_CORE)}"


def test_the_checks_see_function_level_imports() -> None:
    source = "def f():\n    from ..web import app\n"
    tree = ast.parse(source)
    assert any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))  # ast.walk reaches them


MAX_LINES = 600  # a module past this owns more than one thing: split it (docs/architecture.md)


def test_no_module_is_over_600_lines() -> None:
    sizes = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.rglob("*.py")}
    big = sorted(f"{p.relative_to(PACKAGE)}: {n}" for p, n in sizes.items() if n > MAX_LINES)
    assert not big, f"modules over {MAX_LINES} lines: {big}"
