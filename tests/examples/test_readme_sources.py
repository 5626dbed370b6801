"""The README's pytest examples are real files, shown verbatim: each file's whole text is one
of the README's python blocks, so the README cannot drift from what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOWN = [
    "tests/examples/test_readme_example.py",
    "examples/fastapi_httpx/tests/conftest.py",
    "examples/fastapi_httpx/tests/test_settlement.py",
]


def python_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text("utf-8")
    return [block.strip() for block in re.findall(r"```python\n(.*?)```", readme, re.S)]


@pytest.mark.parametrize("path", SHOWN)
def test_the_readme_shows_the_file_verbatim(path: str) -> None:
    assert (ROOT / path).read_text("utf-8").strip() in python_blocks()


def test_every_control_api_curl_with_a_body_sends_json() -> None:
    """The control API refuses bodies not sent as JSON (415): the README's examples send it."""
    readme = (ROOT / "README.md").read_text("utf-8").replace("\\\n", " ")
    calls = [line for line in readme.splitlines() if "curl" in line and "/sandbox/" in line]
    with_body = [line for line in calls if " -d " in line]
    assert len(with_body) >= 6
    for line in with_body:
        assert "Content-Type: application/json" in line, line
