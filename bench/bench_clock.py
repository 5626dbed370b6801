"""What advancing a clock costs: it must grow with transitions, not with days x orders.

Run by hand: `python bench/bench_clock.py [orders] [--profile]` (SQLite files in a temp folder).

Setup (not measured): N orders of the demo partner are created approved and confirmed in
bulk, then disbursed through the real lifecycle engine (`orders.apply(..., "disburse")`),
which computes each due date and schedules its due events exactly as a payout would. The
disbursements are spread over the last 13 days, on product 1001's 7- and 14-day terms, and
10 % of the borrowers follow the "settle on time" scenario (mobile suffix 007), the rest
never pay — so every order makes one more transition when its due day comes: 170 -> 200 or
170 -> 180.

Measured: `control.advance_clock` — the call behind POST /sandbox/partners/{token}/clock/advance
— by 90 days, on a copy of the same database each time:
  A  N orders,   +90 days
  B  N orders,   +900 days    (10x the days: about the same cost once every event has fired)
  C  N/2 orders, +90 days     (half the orders: about half the cost)
For each: wall time, due events fired, transitions recorded, time per transition.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert, select

from sandbox.core import pricing, scenarios
from sandbox.core.lifecycle import Status
from sandbox.core.people import REGIONS, make_mobile, make_nik
from sandbox.services import control
from sandbox.services.config import load_settings
from sandbox.services.endpoints import NEW_ORDER_FIGURES
from sandbox.services.engine import Ctx, apply
from sandbox.services.lender import Lender, create_lender
from sandbox.services.unit import ORDER_COLUMNS, ORDERS, Unit
from sandbox.store import Order, TimelineRow
from sandbox.store.records import OrderRec

T0 = 1_772_420_400.0  # 2026-03-02 10:00 WIB: the wall time, fixed
DAY = 86400
TOKEN = "demo"


def settings_for(url: str):
    return load_settings(overrides={"database": {"url": url}, "clock": {"mode": "manual"}}, env={})


def build(url: str, n: int, chunk: int = 1000) -> float:
    """Create `n` disbursed orders; returns the setup time (seconds)."""
    start = time.perf_counter()
    settings = settings_for(url)
    lender = create_lender(settings, wall=lambda: T0)
    product = lender.product("1001")
    rules, default = settings.data.rules, settings.data.default
    rng = scenarios.rng_for("bench", n)
    for first in range(0, n, chunk):
        with lender.store.begin() as conn:
            unit = Unit(lender, conn)
            batch = []
            for i in range(first, min(n, first + chunk)):
                order_no = f"BENCH-{i:08d}"
                mobile = make_mobile(rng)[:-3] + ("007" if i % 10 == 0 else "006")
                fate = scenarios.decide(
                    rules,
                    default,
                    seed=settings.scenarios.seed,
                    partner=TOKEN,
                    order_no=order_no,
                    mobile=mobile,
                )
                term = (7, 14)[i % 2]
                amount = 500_000 + 100_000 * (i % 16)
                q = pricing.quote(product, amount, term)
                born = T0 - (i % 13) * DAY - 3600
                row = dict(
                    NEW_ORDER_FIGURES,
                    partner_token=TOKEN,
                    order_no=order_no,
                    product_id="1001",
                    status=int(Status.APPROVED),
                    user_mobile=mobile,
                    user_idcard=make_nik(rng, region=REGIONS[i % len(REGIONS)]),
                    user_name="Budi Santoso",
                    is_reloan=0,
                    application_amount=amount,
                    application_term=term,
                    term_unit=1,
                    payload_hash="bench",
                    basic_info={},
                    supplement_info={},
                    device_ip="",
                    scenario=fate.as_dict(),
                    approved_amount=amount,
                    approved_term=term,
                    interest_amount=q.interest,
                    admin_amount=q.admin,
                    confirmed=True,
                    approval_time=born,
                    created_at=born,
                    updated_at=born,
                )
                order_id = conn.execute(insert(ORDERS), row).inserted_primary_key[0]
                read = select(*ORDER_COLUMNS).where(ORDERS.c.id == order_id)
                o = unit.track(OrderRec.load(conn.execute(read).one()))
                batch.append((o, born + 600))
            for o, paid_out in batch:
                apply(Ctx(unit, paid_out, "bench: payout"), o, "disburse")
            unit.flush()
    lender.store.dispose()
    return time.perf_counter() - start


def transitions(lender: Lender) -> int:
    with lender.store.transaction() as s:
        return s.scalar(select(func.count()).select_from(TimelineRow)) or 0


def measure(url: str, days: int, profile: bool = False) -> dict:
    lender = create_lender(settings_for(url), wall=lambda: T0)
    before = transitions(lender)
    prof = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if prof:
        prof.enable()
    out = control.advance_clock(lender, TOKEN, days * DAY)
    if prof:
        prof.disable()
    wall = time.perf_counter() - start
    made = transitions(lender) - before
    with lender.store.transaction() as s:
        statuses = dict(s.execute(select(Order.status, func.count()).group_by(Order.status)).all())
    lender.store.dispose()
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    return {"wall": wall, "fired": out["events_fired"], "transitions": made, "statuses": statuses}


def report(label: str, orders: int, days: int, r: dict) -> str:
    per = r["wall"] / r["transitions"] * 1e6 if r["transitions"] else float("nan")
    return (
        f"{label}  {orders:>6} orders  +{days:>3}d  {r['wall']:7.2f} s  "
        f"{r['fired']:>6} events  {r['transitions']:>6} transitions  {per:7.0f} us/transition  "
        f"statuses {dict(sorted(r['statuses'].items()))}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("orders", nargs="?", type=int, default=10_000)
    ap.add_argument("--profile", action="store_true", help="cProfile run A")
    args = ap.parse_args()
    n, half = args.orders, args.orders // 2
    with tempfile.TemporaryDirectory(prefix="bench-clock-") as tmp:
        base = Path(tmp)
        lines = []
        for count in (n, half):
            db = base / f"orders-{count}.db"
            setup = build(f"sqlite:///{db}", count)
            print(
                f"setup: {count} disbursed orders in {setup:.1f} s ({db.stat().st_size >> 20} MiB)",
                flush=True,
            )
        runs = [("A", n, 90), ("B", n, 900), ("C", half, 90)]
        for label, count, days in runs:
            copy = base / f"run-{label}.db"
            shutil.copy(base / f"orders-{count}.db", copy)
            url = f"sqlite:///{copy}"
            r = measure(url, days, profile=args.profile and label == "A")
            lines.append(report(label, count, days, r))
            print(lines[-1], flush=True)
        print()
        print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
