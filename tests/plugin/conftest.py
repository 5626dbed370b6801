"""Shared fixtures of the harness tests: one template per module, a fresh Sandbox per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.testing import Sandbox, Template


@pytest.fixture(scope="module")
def template() -> Iterator[Template]:
    """Override in a module to start the clock elsewhere (test_harness.py does)."""
    t = Template()
    yield t
    t.close()


@pytest.fixture
def sb(template: Template) -> Iterator[Sandbox]:
    with Sandbox(template) as sandbox:
        yield sandbox
