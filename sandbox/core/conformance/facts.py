"""What the checks share (docs/conformance.md): a run with its indexes computed once, the
verdict a check returns, and the evidence that links to what shows it."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import quote

from ..crypto import decrypt
from .records import (
    MAX_EVIDENCE,
    PATH,
    STATUS_IN_MESSAGE,
    WRONG_STATE,
    Attempt,
    Call,
    Delivery,
    Limits,
    Run,
)

# ---- evidence ----


def call_evidence(c: Call, note: str) -> dict[str, Any]:
    return {"kind": "journal", "id": c.id, "link": f"/sandbox/journal/{c.id}", "note": note}


def attempt_evidence(d: Delivery, a: Attempt, note: str) -> dict[str, Any]:
    return {
        "kind": "attempt",
        "id": a.id,
        "delivery": d.id,
        "link": f"/sandbox/callbacks/{d.id}",
        "note": note,
    }


def order_evidence(token: str, order_no: str, note: str) -> dict[str, Any]:
    return {
        "kind": "order",
        "id": order_no,
        "note": note,
        "link": f"/sandbox/orders/{quote(order_no, safe='')}?partner_token={quote(token, safe='')}",
    }


@dataclass
class Verdict:
    status: str  # pass | fail | untested
    summary: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def passed(summary: str, evidence: Iterable[dict[str, Any]] = (), **details: Any) -> Verdict:
    return Verdict("pass", summary, list(evidence), details)


def failed(summary: str, evidence: Iterable[dict[str, Any]], **details: Any) -> Verdict:
    return Verdict("fail", summary, list(evidence), details)


def untested(summary: str, **details: Any) -> Verdict:
    return Verdict("untested", summary, [], details)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ---- what the checks share, computed once per run ----


class Facts:
    """A run with the indexes the checks need."""

    def __init__(self, run: Run, limits: Limits):
        self.run, self.limits = run, limits
        self.calls = sorted(run.calls, key=lambda c: c.id)
        self.orders = {o.order_no: o for o in run.orders}
        self.deliveries = sorted(run.deliveries, key=lambda d: d.id)

    def link(self, order_no: str, note: str) -> dict[str, Any]:
        return order_evidence(self.run.partner_token, order_no, note)

    def on(self, *numbers: str) -> list[Call]:
        paths = {PATH[n] for n in numbers}
        return [c for c in self.calls if c.path in paths]

    def answered(self, code: int, *numbers: str) -> list[Call]:
        return [c for c in (self.on(*numbers) if numbers else self.calls) if c.code == code]

    def status_when(self, c: Call) -> int | None:
        """The order's status when `c` was answered: named in a wrong_state answer, else read
        from the timeline at the call's virtual time."""
        m = STATUS_IN_MESSAGE.search(c.message)
        if m:
            return int(m.group(1))
        order = self.orders.get(c.order_no)
        if order is None or c.virtual_at is None:
            return None
        before = [s for s in order.timeline if s.at <= c.virtual_at]
        return before[-1].dest if before else None

    def stale(self, status: int, *numbers: str) -> list[Call]:
        """Calls refused with wrong_state because the order was already in `status` (not
        counted where an out-of-order callback explains them: callbacks.out_of_order)."""
        return [
            c
            for c in self.answered(WRONG_STATE, *numbers)
            if self.status_when(c) == status and c.id not in self.regressions
        ]

    @cached_property
    def approvals(self) -> dict[str, int]:
        """order_no -> the amount approved, from callback 20's body at approval."""
        out: dict[str, int] = {}
        for d in self.deliveries:
            if d.path == "/callback-approval-result" and d.body.get("approval_amount") is not None:
                out.setdefault(d.order_no, int(d.body["approval_amount"]))
        return out

    @cached_property
    def reorders(self) -> list[tuple[Delivery, Delivery]]:
        """(late, overtaking): a callback acknowledged after a newer one of its order that
        carried another order_status (a stale status arrived last)."""
        acked: dict[str, list[tuple[int, Delivery]]] = defaultdict(list)
        for d in self.deliveries:
            if d.first_ack is not None:
                acked[d.order_no].append((d.first_ack.id, d))
        pairs = []
        for ds in acked.values():
            for i, (old_ack, old) in enumerate(ds):
                status = old.body.get("order_status")
                newer = [
                    n
                    for ack, n in ds[i + 1 :]
                    if ack < old_ack and n.body.get("order_status") != status
                ]
                if newer:
                    pairs.append((old, newer[0]))
        return pairs

    @cached_property
    def regressions(self) -> dict[int, tuple[Delivery, Attempt, Call]]:
        """call id -> (late delivery, its acknowledged attempt, call): a wrong_state answer on
        an order after a stale callback of it arrived."""
        out: dict[int, tuple[Delivery, Attempt, Call]] = {}
        for late, _ in self.reorders:
            ack = late.first_ack
            for c in self.calls:
                if ack and c.order_no == late.order_no and c.code == WRONG_STATE and c.at >= ack.at:
                    out.setdefault(c.id, (late, ack, c))
        return out

    def plaintext(self, c: Call) -> str | None:
        """The request's payload as the partner encrypted it; None when it cannot be read
        again (cut in the journal, or the partner's key changed since)."""
        try:
            data = json.loads(c.raw)["encode_data"]
            if not isinstance(data, str):
                return None
            raw = decrypt(data, self.run.aes_key, self.run.aes_iv)
            return raw.decode("utf-8") if raw is not None else None
        except (ValueError, KeyError, TypeError, RecursionError):
            return None


def effective_gap(a: Call, b: Call) -> float:
    """How long after `a` the partner sent `b`: wall time, or the partner's clock if it moved
    more (a test that advances the clock between two calls did wait)."""
    if a.virtual_at is None or b.virtual_at is None:
        return b.at - a.at
    return max(b.at - a.at, b.virtual_at - a.virtual_at)


def capped(evidence: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    return evidence[:MAX_EVIDENCE], max(0, len(evidence) - MAX_EVIDENCE)


def answered(c: Call) -> str:
    return f"{c.label()} answered {c.code}: {c.message}"
