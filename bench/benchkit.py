"""Shared by the bench scripts: a lender on a scratch SQLite file, and orders walked through it.

Only the stable entry points are used (`create_lender`, `pipeline.handle`, `control.*`,
`sandbox.client.LenderClient`, `sandbox.testing.sample_order`), so the scripts keep working
while the request pipeline, the engine and the store access are rewritten underneath.
Not a benchmark itself: `bench_delivery.py` and `bench_scale.py` import it.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sandbox.client import LenderClient
from sandbox.services import control, pipeline
from sandbox.services.config import load_settings
from sandbox.services.lender import Lender, create_lender
from sandbox.testing import SampleOrder, sample_order

TOKEN = "demo"
HOUR, DAY = 3600, 86400


def settings_for(db: Path, **sections: dict[str, Any]) -> Any:
    """The packaged config on the SQLite file `db`, every clock manual, plus `sections`."""
    overrides: dict[str, dict[str, Any]] = {
        "database": {"url": f"sqlite:///{db}"},
        "clock": {"mode": "manual"},
    }
    for name, values in sections.items():
        overrides[name] = {**overrides.get(name, {}), **values}
    return load_settings(overrides=overrides, env={})


def open_lender(db: Path, **sections: dict[str, Any]) -> Lender:
    return create_lender(settings_for(db, **sections))


def copy_db(src: Path, dst: Path) -> None:
    """Copy a closed SQLite database (and its WAL files, if any are left)."""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")


class Aggregator:
    """An aggregator calling the lender in-process: envelopes through `pipeline.handle`
    (journal on, as over HTTP), control operations through `services.control`."""

    def __init__(self, lender: Lender, token: str = TOKEN):
        self.lender, self.token = lender, token
        creds = control.get_partner(lender, token, secrets=True)
        self.client = LenderClient("", token, creds["aes_key"], creds["aes_iv"], send=self._send)
        self.calls = 0

    def _send(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.calls += 1
        reply = pipeline.handle(self.lender, path, body)
        return reply.http_status, json.dumps(reply.body, ensure_ascii=False).encode()

    def call(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self.client.call(name, payload)

    def ok(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        doc = self.call(name, payload)
        if doc.get("code") != 0:
            raise RuntimeError(f"{name} answered {doc.get('code')}: {doc}")
        return doc

    def envelope(self, payload: dict[str, Any]) -> bytes:
        return json.dumps(self.client.envelope(payload)).encode()

    def advance(self, seconds: float) -> dict[str, Any]:
        return control.advance_clock(self.lender, self.token, seconds)

    def status(self, order_no: str) -> int:
        return int(control.order_detail(self.lender, self.token, order_no)["status"])


# How far an aggregator takes an order: the steps it calls, in order.
STAGES = ("basic", "supplement", "bind", "confirm")


@dataclass(frozen=True)
class Kind:
    """A share of the orders: its scenario (fixtures/scenarios.toml) and how far it gets."""

    weight: int
    scenario: str
    stage: str
    term: int = 14  # days (product 1001 offers 7 and 14)


# A loan marketplace's funnel: most orders are disbursed, the rest stop on the way. Orders
# walked in three waves a week apart, so some loans are past due (180, 200) by the end.
FUNNEL = (
    Kind(5, "approve", "confirm"),  # 170 repaying (180 once past due: 001 pays when told)
    Kind(1, "overdue", "confirm"),  # 180
    Kind(1, "settle_on_time", "confirm"),  # 200 on its due day
    Kind(1, "approve", "bind"),  # approved, never confirmed: 100, cancelled (161) after 3d
    Kind(1, "reject_review", "supplement"),  # 110
    Kind(1, "review_stuck", "supplement"),  # 90
    Kind(1, "approve", "basic"),  # 80, abandoned (161) after 7d
)
DISBURSE_ONLY = (Kind(1, "approve", "confirm"),)


def plan(n: int, funnel: Iterable[Kind]) -> list[Kind]:
    """`n` kinds in funnel proportions, interleaved (so any prefix has the same mix)."""
    wheel = [k for k in funnel for _ in range(k.weight)]
    return [wheel[i % len(wheel)] for i in range(n)]


@dataclass
class Walked:
    orders: list[SampleOrder]
    calls: int
    seconds: float

    def order_nos(self) -> list[str]:
        return [o.order_no for o in self.orders]


def walk(
    agg: Aggregator,
    n: int,
    *,
    funnel: Iterable[Kind] = FUNNEL,
    waves: int = 3,
    gap: float = 7 * DAY,
    polls: bool = True,
    prefix: str = "bench",
    progress: Callable[[str], None] = lambda _: None,
) -> Walked:
    """Create `n` orders through the pipeline as an aggregator would: 02, 05, 06, 08, the
    review, 11, the payout, then (`polls`) 12, 13 and 14 of each disbursed order; in `waves`
    waves, the partner's clock moved by `gap` seconds between two."""
    start, calls = time.perf_counter(), agg.calls
    kinds = plan(n, funnel)
    orders: list[SampleOrder] = []
    per_wave = -(-n // waves)
    for w in range(waves):
        if w:
            agg.advance(gap)
        today = _today(agg)
        batch = []
        for i in range(w * per_wave, min(n, (w + 1) * per_wave)):
            kind = kinds[i]
            o = sample_order(f"{prefix}-{i}", scenario=kind.scenario, term=kind.term, today=today)
            batch.append((o, kinds[i]))
        _walk_wave(agg, batch, polls)
        orders += [o for o, _ in batch]
        progress(f"wave {w + 1}/{waves}: {len(orders)}/{n} orders")
    return Walked(orders, agg.calls - calls, time.perf_counter() - start)


def _today(agg: Aggregator) -> date:
    return date.fromisoformat(control.get_clock(agg.lender, agg.token)["now"][:10])


def _walk_wave(agg: Aggregator, batch: list[tuple[SampleOrder, Kind]], polls: bool) -> None:
    for o, kind in batch:
        agg.ok("get-loan-precheck", o.precheck())
        agg.ok("push-basic-info", o.basic_info())
        depth = STAGES.index(kind.stage)
        if depth >= 1:
            agg.ok("push-supplement-info", o.supplement_info())
        if depth >= 2:
            agg.ok("push-bind-bank", o.bind_bank())
    agg.advance(HOUR)  # the reviews decide
    confirming = [o for o, kind in batch if kind.stage == "confirm"]
    for o in confirming:
        agg.ok("push-order-confirm", o.confirm())
    agg.advance(HOUR)  # the payouts
    for o in confirming if polls else []:  # an aggregator polls the loans it shows its users
        for name in ("get-order-status", "get-approval-result", "get-repay-plan"):
            agg.call(name, o.order())


def statuses(agg: Aggregator, order_nos: Iterable[str]) -> Counter[int]:
    return Counter(agg.status(no) for no in order_nos)


def fresh_identity(prefix: str) -> Callable[[int, Any], Any]:
    """For bench/cloner.py: clone number k is a new person with the template's scenario
    suffix (the last digits of the mobile choose the scenario) and a new order_no. Its mobile
    spells k (operator prefix, then k, then the suffix): a random one repeats within 100 000
    clones, and two open loans may not share a mobile (migration 0006)."""
    from cloner import Identity  # bench/cloner.py, beside this file

    def make(k: int, old: Identity) -> Identity:
        if not 0 <= k < 900_000:
            raise SystemExit(f"benchkit: clone {k}: mobiles are unique up to 900 000 clones")
        o = sample_order(f"{prefix}-{k}", suffix=old.mobile[-3:])
        subscriber = f"{1 + k // 100_000}{k % 100_000:05d}{old.mobile[-3:]}"  # 9 digits
        mobile = o.person.mobile[:3] + subscriber
        return Identity(o.order_no, o.person.nik, mobile, o.person.name)

    return make
