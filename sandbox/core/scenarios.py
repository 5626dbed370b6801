"""Outcomes by rule, not dice: magic mobile suffixes, else a seeded RNG.

See docs/architecture.md "Outcomes".

`decide` is pure: the same (seed, partner, order_no, mobile) always gives the same Outcome,
which is stored on the order when it is created, so later config edits do not rewrite the
fate of orders already in flight.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, fields
from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScenarioRule(_Rule):
    name: str
    mobile_suffix: str
    description: str = ""
    precheck: Literal["allow", "reject"] = "allow"
    review: Literal["approve", "reject", "stuck"] | None = None
    approve_ratio: float | None = None
    payout: Literal["ok", "fail_once", "fail"] | None = None
    repay: Literal["none", "on_time"] | None = None
    reloan: bool = False
    reject_reason: str | None = None


class ScenarioDefault(_Rule):
    approve: float = 0.8
    approve_reduced: float = 0.1
    reject: float = 0.1
    payout_fail: float = 0.05
    repay_on_time: float = 0.0


def rng_for(*parts: object) -> random.Random:
    """A Random seeded from the parts (stable across runs and processes, unlike hash())."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class Outcome:
    rule: str  # the matched rule's name, or "default"
    review: str  # approve | reject | stuck
    approve_ratio: float  # 1.0 = the amount applied for
    payout: str  # ok | fail_once | fail
    repay: str  # none | on_time
    reloan: bool
    reject_reason: str | None = None

    def as_dict(self) -> dict:
        # Flat: dataclasses.asdict deep-copies every value, a tenth of a write's cost
        return {name: getattr(self, name) for name in OUTCOME_FIELDS}

    @classmethod
    def from_dict(cls, d: dict) -> Outcome:
        return cls(**d)


OUTCOME_FIELDS = tuple(f.name for f in fields(Outcome))


def match(rules: list[ScenarioRule], mobile: str) -> ScenarioRule | None:
    return next((r for r in rules if mobile.endswith(r.mobile_suffix)), None)


def precheck_rejects(rules: list[ScenarioRule], mobile: str) -> bool:
    rule = match(rules, mobile)
    return rule is not None and rule.precheck == "reject"


def is_magic_reloan(rules: list[ScenarioRule], mobile: str) -> bool:
    rule = match(rules, mobile)
    return rule is not None and rule.reloan


def decide(
    rules: list[ScenarioRule],
    default: ScenarioDefault,
    *,
    seed: str,
    partner: str,
    order_no: str,
    mobile: str,
) -> Outcome:
    rng = rng_for(seed, partner, order_no)
    rule = match(rules, mobile)
    review, ratio = _default_review(default, rng)
    payout = "fail_once" if rng.random() < default.payout_fail else "ok"
    repay = "on_time" if rng.random() < default.repay_on_time else "none"
    if rule is None:
        return Outcome("default", review, ratio, payout, repay, False)
    return Outcome(
        rule.name,
        rule.review or review,
        rule.approve_ratio if rule.approve_ratio is not None else (1.0 if rule.review else ratio),
        rule.payout or payout,
        rule.repay or repay,
        rule.reloan,
        rule.reject_reason,
    )


def _default_review(d: ScenarioDefault, rng: random.Random) -> tuple[str, float]:
    x = rng.random() * (d.approve + d.approve_reduced + d.reject or 1.0)
    if x < d.approve:
        return "approve", 1.0
    if x < d.approve + d.approve_reduced:
        return "approve", round(rng.uniform(0.5, 0.9), 2)
    return "reject", 1.0
