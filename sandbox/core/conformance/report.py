"""Reading an acceptance report (the JSON of `evaluate`): the checklist text the CLI prints and
the `Report` the harness returns to assert on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .catalog import BY_ID, SECTIONS, STATUSES
from .facts import plural

# ---- reading a report: the harness, the CLI and a dashboard page ----


def sections(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The report's checks grouped as a checklist shows them (SECTIONS), in catalogue order,
    each group with its counts of pass, fail and untested."""
    out = []
    for section in SECTIONS:
        checks = [c for c in report["checks"] if section.has(c["id"])]
        out.append(
            {
                "id": section.id,
                "title": section.title,
                "title_zh": section.title_zh,
                "counts": {s: sum(1 for c in checks if c["status"] == s) for s in STATUSES},
                "checks": checks,
            }
        )
    return out


MARK = {"pass": "PASS", "fail": "FAIL", "untested": "UNTESTED"}


def format_text(report: Mapping[str, Any], base_url: str = "") -> str:
    """The report as a checklist for a terminal: each failure with its evidence (links under
    `base_url`), each untested check with how to test it."""
    s, run = report["summary"], report["run"]
    since = (
        f"since {run['started_at']}" if run.get("started_at") else "since the partner was created"
    )
    counts = ", ".join(plural(run[k], k[:-1]) for k in ("requests", "callbacks", "orders"))
    lines = [
        f"Acceptance report for partner {report['partner_token']} ({since}: {counts})",
        f"{s['status'].upper()}: {s['pass']} pass, {s['fail']} fail, {s['untested']} untested"
        f" of {s['total']}",
        "",
    ]
    if run.get("truncated"):
        lines.insert(1, "(only the oldest records of this run were read: start a new run)")
    if run.get("pruned"):
        lines.insert(1, "(retention deleted the oldest records of this run: judged on the rest)")
    for c in report["checks"]:
        lines.append(f"{MARK[c['status']]:<9}{c['id']:<29} {c['title']}")
        lines.append(f"{'':<9}{c['summary']}")
        if c["status"] == "fail":
            lines += [f"{'':<11}- {e['note']}  {base_url}{e['link']}" for e in c["evidence"]]
            more = c.get("details", {}).get("more_evidence")
            if more:
                lines.append(f"{'':<11}  ... and {more} more")
        elif c["status"] == "untested":
            lines.append(f"{'':<9}how to test: {c['how_to_test']}")
    return "\n".join(lines)


class Report:
    """An acceptance report (the JSON of GET /sandbox/partners/{token}/conformance) to assert
    on: `report.ok`, `report.failed`, `report.check("callbacks.duplicates")`, `str(report)`."""

    def __init__(self, doc: Mapping[str, Any], base_url: str = ""):
        self.doc, self.base_url = dict(doc), base_url

    @property
    def status(self) -> str:
        """pass (every check passed), fail (one failed) or incomplete (some untested)."""
        return str(self.doc["summary"]["status"])

    @property
    def checks(self) -> list[dict[str, Any]]:
        return list(self.doc["checks"])

    def ids(self, status: str) -> list[str]:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        return [c["id"] for c in self.checks if c["status"] == status]

    @property
    def failed(self) -> list[str]:
        return self.ids("fail")

    @property
    def untested(self) -> list[str]:
        return self.ids("untested")

    @property
    def ok(self) -> bool:
        """No check failed (untested ones do not count; `complete` says whether all passed)."""
        return not self.failed

    @property
    def complete(self) -> bool:
        return self.status == "pass"

    def check(self, check_id: str) -> dict[str, Any]:
        for c in self.checks:
            if c["id"] == check_id:
                return c
        raise KeyError(f"no check {check_id!r}; checks: {', '.join(BY_ID)}")

    def assert_ok(self, *, strict: bool = False) -> None:
        """AssertionError with the checklist when a check failed (or, `strict`, is untested)."""
        if self.failed or (strict and self.untested):
            raise AssertionError(str(self))

    def __str__(self) -> str:
        return format_text(self.doc, self.base_url)

    def __repr__(self) -> str:
        s = self.doc["summary"]
        return (
            f"<Report {self.doc['partner_token']}: {s['status']}, {s['pass']} pass, "
            f"{s['fail']} fail, {s['untested']} untested>"
        )
