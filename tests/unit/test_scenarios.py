"""sandbox.scenarios: magic mobile suffixes, the seeded default distribution, determinism."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from sandbox.core import scenarios
from sandbox.core.scenarios import (
    Outcome,
    ScenarioDefault,
    ScenarioRule,
    decide,
    is_magic_reloan,
    match,
    precheck_rejects,
    rng_for,
)
from sandbox.services.config import load_settings

SETTINGS = load_settings(env={})
RULES, DEFAULT = SETTINGS.data.rules, SETTINGS.data.default
SEED = SETTINGS.scenarios.seed


def fate(
    mobile: str,
    order_no: str = "ORD-SCENARIO-1",
    seed: str = SEED,
    default: ScenarioDefault = DEFAULT,
) -> Outcome:
    return decide(RULES, default, seed=seed, partner="demo", order_no=order_no, mobile=mobile)


# suffix -> (rule, review, approve_ratio, payout, repay, reloan) per fixtures/scenarios.toml
MAGIC = {
    "001": ("approve", "approve", 1.0, "ok", None, False),
    "002": ("approve_reduced", "approve", 0.5, "ok", None, False),
    "003": ("reject_review", "reject", 1.0, None, None, False),
    "005": ("payout_fail_once", "approve", 1.0, "fail_once", None, False),
    "006": ("overdue", "approve", 1.0, "ok", "none", False),
    "007": ("settle_on_time", "approve", 1.0, "ok", "on_time", False),
    "008": ("reloan", "approve", 1.0, "ok", None, True),
    "009": ("review_stuck", "stuck", 1.0, None, None, False),
    "010": ("payout_fail", "approve", 1.0, "fail", None, False),
}


@pytest.mark.parametrize("suffix", sorted(MAGIC))
def test_each_magic_suffix(suffix: str) -> None:
    rule, review, ratio, payout, repay, reloan = MAGIC[suffix]
    for order_no in ("ORD-A-00000001", "ORD-B-00000002", "ORD-C-00000003"):
        o = fate("81234567" + suffix, order_no)
        assert (o.rule, o.review, o.approve_ratio, o.reloan) == (rule, review, ratio, reloan)
        if payout:
            assert o.payout == payout
        if repay:
            assert o.repay == repay
    assert not precheck_rejects(RULES, "81234567" + suffix)
    assert is_magic_reloan(RULES, "81234567" + suffix) == reloan


def test_reject_reason_of_the_rule() -> None:
    assert fate("81234567003").reject_reason == "Skor kredit tidak memenuhi syarat"
    assert fate("81234567001").reject_reason is None


def test_precheck_reject_suffix() -> None:
    assert precheck_rejects(RULES, "81234567004")
    assert match(RULES, "81234567004").name == "reject_precheck"  # type: ignore[union-attr]
    assert not precheck_rejects(RULES, "81234567040")


def test_suffix_is_the_end_of_the_mobile() -> None:
    assert match(RULES, "81200100551") is None  # "001" inside, not at the end
    assert match(RULES, "8123456001").name == "approve"  # type: ignore[union-attr]
    assert fate("81234567551").rule == "default"
    assert not is_magic_reloan(RULES, "81234567551")


def test_first_matching_rule_wins() -> None:
    rules = [
        ScenarioRule(name="long", mobile_suffix="1001", review="reject"),
        ScenarioRule(name="short", mobile_suffix="001", review="approve"),
    ]
    assert match(rules, "8123451001").name == "long"  # type: ignore[union-attr]
    assert match(rules, "8123452001").name == "short"  # type: ignore[union-attr]


def test_rule_without_review_takes_the_default_draw() -> None:
    rules = [ScenarioRule(name="loaner", mobile_suffix="777", reloan=True)]
    plain = decide(
        [], DEFAULT, seed=SEED, partner="demo", order_no="ORD-X-000001", mobile="81234567777"
    )
    ruled = decide(
        rules, DEFAULT, seed=SEED, partner="demo", order_no="ORD-X-000001", mobile="81234567777"
    )
    assert (ruled.review, ruled.approve_ratio, ruled.payout) == (
        plain.review,
        plain.approve_ratio,
        plain.payout,
    )
    assert ruled.reloan and ruled.rule == "loaner" and plain.rule == "default"


def test_default_distribution_follows_the_settings() -> None:
    n = 4000
    outcomes = [fate("81234567551", f"ORD-DIST-{i:08d}") for i in range(n)]
    reviews = Counter(
        "reduced" if o.review == "approve" and o.approve_ratio < 1 else o.review for o in outcomes
    )
    assert reviews["approve"] / n == pytest.approx(DEFAULT.approve, abs=0.03)
    assert reviews["reduced"] / n == pytest.approx(DEFAULT.approve_reduced, abs=0.02)
    assert reviews["reject"] / n == pytest.approx(DEFAULT.reject, abs=0.02)
    assert set(reviews) == {"approve", "reduced", "reject"}
    fails = sum(o.payout == "fail_once" for o in outcomes)
    assert fails / n == pytest.approx(DEFAULT.payout_fail, abs=0.015)
    assert {o.repay for o in outcomes} == {"none"}  # repay_on_time = 0
    ratios = [o.approve_ratio for o in outcomes if o.approve_ratio < 1]
    assert min(ratios) >= 0.5 and max(ratios) <= 0.9
    assert all(o.rule == "default" and not o.reloan for o in outcomes)


def test_other_default_weights() -> None:
    skewed = ScenarioDefault(
        approve=0.0, approve_reduced=0.0, reject=1.0, payout_fail=1.0, repay_on_time=1.0
    )
    outcomes = [fate("81234567551", f"ORD-SKEW-{i:08d}", default=skewed) for i in range(200)]
    assert {o.review for o in outcomes} == {"reject"}
    assert {o.payout for o in outcomes} == {"fail_once"}
    assert {o.repay for o in outcomes} == {"on_time"}
    halves = ScenarioDefault(approve=1, approve_reduced=0, reject=1)  # weights, not fractions
    n = 2000
    rejected = sum(
        fate("81234567551", f"ORD-HALF-{i:08d}", default=halves).review == "reject"
        for i in range(n)
    )
    assert rejected / n == pytest.approx(0.5, abs=0.04)


def test_deterministic() -> None:
    a = [fate("81234567551", f"ORD-DET-{i:08d}") for i in range(200)]
    b = [fate("81234567551", f"ORD-DET-{i:08d}") for i in range(200)]
    assert a == b
    other = [fate("81234567551", f"ORD-DET-{i:08d}", seed="another") for i in range(200)]
    assert a != other
    # the partner is part of the key too
    c = [
        decide(
            RULES,
            DEFAULT,
            seed=SEED,
            partner="p2",
            order_no=f"ORD-DET-{i:08d}",
            mobile="81234567551",
        )
        for i in range(200)
    ]
    assert a != c


def test_rng_is_stable_across_processes() -> None:
    here = [rng_for("seed", "demo", "ORD-1", 3).random() for _ in range(1)]
    code = (
        "from sandbox.core.scenarios import rng_for; "
        "print(repr(rng_for('seed', 'demo', 'ORD-1', 3).random()))"
    )
    there = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert float(there.stdout) == here[0]
    assert rng_for("a", "b").random() != rng_for("ab").random()


def test_outcome_round_trip() -> None:
    o = fate("81234567003")
    assert Outcome.from_dict(o.as_dict()) == o
    assert set(o.as_dict()) == {
        "rule",
        "review",
        "approve_ratio",
        "payout",
        "repay",
        "reloan",
        "reject_reason",
    }


def test_module_is_pure() -> None:
    assert not hasattr(scenarios, "random_state")
    assert decide.__module__ == "sandbox.core.scenarios"
