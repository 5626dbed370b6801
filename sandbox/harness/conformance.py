"""`lender-sandbox conformance`: a partner's acceptance report fetched from a running sandbox,
printed as a checklist, with an exit status a CI job can gate on (docs/conformance.md)."""

from __future__ import annotations

import json

import httpx

from ..core.conformance import Report
from .client import ControlAPIError, SandboxControl

PASSED, FAILED, UNREACHABLE = 0, 1, 2


class FetchError(Exception):
    """The report could not be had: no sandbox there, or it refused (the message says why)."""


def fetch(control: SandboxControl, partner: str, *, reset: bool = False) -> Report | dict:
    """The partner's report (or, with `reset`, the answer of starting a new run)."""
    try:
        if reset:
            return control.reset_conformance(partner)
        return Report(control.conformance(partner), base_url=control.base_url)
    except httpx.TransportError as e:
        raise FetchError(
            f"no sandbox answers at {control.base_url} ({type(e).__name__}): start one with "
            f"`lender-sandbox serve`"
        ) from None
    except ControlAPIError as e:
        raise FetchError(str(e)) from None


def exit_status(report: Report, *, strict: bool = False) -> int:
    """0 while no check fails (with `strict`, and none is untested); else 1."""
    return FAILED if report.failed or (strict and report.untested) else PASSED


def render(report: Report, *, as_json: bool = False) -> str:
    return json.dumps(report.doc, indent=2, ensure_ascii=False) if as_json else str(report)
