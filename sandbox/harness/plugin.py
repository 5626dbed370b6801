"""pytest plugin (entry point pytest11): fixtures wrapping the harness in `sandbox.testing`.

- `lender_sandbox` — a fresh in-process `Sandbox` per test (copied from a session template),
  serving your code's own HTTP client at the base URLs of `lender_sandbox_intercept`.
- `lender_sandbox_server` — the real server on a free loopback port plus a real callback
  receiver, reset for each test (the process is started once per session).

Option `--lender-sandbox-config FILE` (or ini `lender_sandbox_config`) picks the settings;
the default is the packaged config.toml. The in-process sandbox takes them over its test
overrides (in-memory store, manual clocks); the live server takes the whole file, [server],
[database] and [fixtures] included, but binds 127.0.0.1 on a free port and keeps a database
of its own unless the file names one (`LiveServer`). The harness is imported only when a fixture is
used, so merely having the package installed costs other projects' test runs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .sandbox import Sandbox, Template
    from .server import ServerSandbox


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lender-sandbox", "Lender Sandbox fixtures")
    group.addoption(
        "--lender-sandbox-config",
        default=None,
        metavar="FILE",
        help="config.toml for the lender_sandbox fixtures (default: the packaged one)",
    )
    parser.addini(
        "lender_sandbox_config", "config.toml for the lender_sandbox fixtures", default=""
    )
    parser.addini(
        "lender_sandbox_intercept",
        "base URLs (one a line) whose requests from httpx/requests every lender_sandbox "
        "serves in-process",
        type="linelist",
        default=[],
    )


def _config(pytestconfig: pytest.Config) -> Path | None:
    """The option (relative to the current folder), else the ini value (relative to the ini)."""
    given = pytestconfig.getoption("lender_sandbox_config")
    if given:
        return Path(given)
    ini = pytestconfig.getini("lender_sandbox_config")
    if not ini:
        return None
    base = pytestconfig.inipath.parent if pytestconfig.inipath else pytestconfig.rootpath
    return base / ini


@pytest.fixture(scope="session")
def lender_sandbox_template(pytestconfig: pytest.Config) -> Iterator[Template]:
    """Settings and a seeded store, built once per session; every `lender_sandbox` copies it.

    Override it in your conftest.py to change settings (or the clocks' start), e.g.
    `yield Template(overrides={"lifecycle": {"review_delay": "1h"}}, start="2026-01-05")`
    in a session-scoped fixture of this name.
    """
    from .sandbox import Template

    template = Template(_config(pytestconfig))
    yield template
    template.close()


@pytest.fixture
def lender_sandbox_intercept(pytestconfig: pytest.Config) -> list[str]:
    """Base URLs your code calls the lender at, served in-process by `lender_sandbox` (ini
    `lender_sandbox_intercept`). Override it in a conftest.py or test module to choose there:
    `return ["https://lender.example.id/api"]`. Needs the `intercept` extra."""
    return list(pytestconfig.getini("lender_sandbox_intercept"))


@pytest.fixture
def lender_sandbox(
    lender_sandbox_template: Template, lender_sandbox_intercept: list[str]
) -> Iterator[Sandbox]:
    """A fresh in-process sandbox for this test (a few milliseconds; no network).

    `.client(partner="demo")` calls the lender API in-process; `.clock.advance(days=1)` moves
    the demo partner's manual clock and fires what falls due; `.callbacks.received(path)` are
    the callbacks delivered so far (decrypted); `.journal` the requests received;
    `.transition/.pay/.order/.orders/.wait_for/.new_partner/.sample_order` as documented in
    `sandbox.testing.Sandbox`; `.intercept(url)` and `.callbacks.deliver_to(app)` connect your
    own code (docs/testing.md).
    """
    from .sandbox import Sandbox

    with ExitStack() as stack:
        sandbox = stack.enter_context(Sandbox(lender_sandbox_template))
        if lender_sandbox_intercept:
            stack.enter_context(sandbox.intercept(*lender_sandbox_intercept))
        yield sandbox


@pytest.fixture(scope="session")
def lender_sandbox_server_session(pytestconfig: pytest.Config) -> Iterator[ServerSandbox]:
    """The real server (`lender-sandbox serve` on a free loopback port, with the config file's
    settings) and a callback sink, started once per session. Tests normally use
    `lender_sandbox_server`, which resets it."""
    from .server import ServerSandbox

    with ServerSandbox(_config(pytestconfig)) as server:
        yield server


@pytest.fixture
def lender_sandbox_server(lender_sandbox_server_session: ServerSandbox) -> ServerSandbox:
    """The session's real server, reset for this test (POST /sandbox/reset, empty sink).

    `.base_url` for your aggregator code, `.partner` its credentials (token, key, iv),
    `.client()` a LenderClient over HTTP, `.control` the /sandbox API client,
    `.callbacks` the real receiver (`received`, `wait_for`, `fail_next`), `.clock.advance()`,
    `.wait_for(order_no, status=..., timeout=...)` (a long poll, no sleeps).
    """
    lender_sandbox_server_session.reset()
    return lender_sandbox_server_session
