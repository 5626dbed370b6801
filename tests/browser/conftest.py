"""Browser tests: the dashboard driven in a real headless Chromium (Debian's `chromium`,
through Playwright from PyPI; never Playwright's own browser download).

Without Playwright or Chromium they are skipped with one line saying what is missing —
unless CI=true, where they fail instead. Each test saves a screenshot into
screenshots/browser/ (git-ignored; CI keeps them as artefacts).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "screenshots" / "browser"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str | None:
    """LENDER_SANDBOX_CHROMIUM, else `chromium` on the PATH (Debian's package)."""
    given = os.environ.get("LENDER_SANDBOX_CHROMIUM")
    return given if given and Path(given).is_file() else shutil.which("chromium")


def _missing() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[browser]')"
    if chromium() is None:
        return "no chromium on the PATH (apt-get install chromium, or set LENDER_SANDBOX_CHROMIUM)"
    return ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = _missing()
    if not missing or os.environ.get("CI") == "true":
        return  # in CI the `browser` fixture fails instead: these tests must run there
    skip = pytest.mark.skip(reason=f"browser tests: {missing}")
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not longer: Playwright's sync API keeps an asyncio loop
    running in this thread while it is open, which the tests after it (asyncio.run) cannot
    share."""
    missing = _missing()
    if missing:  # only reached under CI=true
        pytest.fail(f"browser tests must run in CI (CI=true): {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=ARGS)  # a fresh profile
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new browser page; its screenshot is saved when the test ends (passed or not)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(15_000)
    p = context.new_page()
    yield p
    SHOTS.mkdir(parents=True, exist_ok=True)
    p.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()
