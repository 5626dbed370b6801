"""What advancing a clock costs: it must grow with transitions, not with days x orders.

Run by hand: `python bench/bench_clock.py [orders] [--templates 500] [--profile]` (SQLite files
in a temp folder; default 10 000 orders).

Setup (not measured): `--templates` orders of the demo partner walked through the real
pipeline (bench/benchkit.py: 02, 05, 06, 08, the review, 11, the payout), in 6 waves a day
apart, on product 1001's 7- and 14-day terms; 10 % of the borrowers follow the "settle on
time" scenario (mobile suffix 007), the rest never pay (006). They are then cloned up to N
(and, apart, N/2) orders by bench/cloner.py — every row of an order, its due events included,
under a new order_no and person. No loan is due yet, so every order makes one more transition
when its due day comes: 170 -> 200 or 170 -> 180.

Measured: `control.advance_clock` — the call behind POST /sandbox/partners/{token}/clock/advance
— on a copy of the same database each time:
  A  N orders,   +90 days
  B  N orders,   +900 days    (10x the days: about the same cost once every event has fired)
  C  N/2 orders, +90 days     (half the orders: about half the cost)
For each: wall time, CPU time of this process, due events fired, transitions recorded (rows
added to the timeline), wall and CPU per transition. The performance issue's goal: <= 0.3 ms
CPU per transition (10 000 disbursed orders +90 days <= 3 s).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import benchkit as bk
import cloner

from sandbox.services import control

DAY = bk.DAY
# Disbursed loans only: 90 % never pay (-> 180 overdue), 10 % pay on the due day (-> 200).
LOANS = (
    bk.Kind(9, "overdue", "confirm", 7),
    bk.Kind(9, "overdue", "confirm", 14),
    bk.Kind(1, "settle_on_time", "confirm", 7),
    bk.Kind(1, "settle_on_time", "confirm", 14),
)


def build(tmp: Path, counts: list[int], templates: int) -> dict[int, Path]:
    """A database per count, grown from the same walked templates; returns count -> file."""
    start = time.perf_counter()
    base = tmp / "templates.db"
    agg = bk.Aggregator(bk.open_lender(base))
    # 6 waves a day apart: no loan falls due (nor repays, 15 h before) before the last wave.
    walked = bk.walk(agg, templates, funnel=LOANS, waves=6, gap=DAY, polls=False, prefix="clock")
    found = bk.statuses(agg, walked.order_nos())
    agg.lender.store.dispose()
    print(
        f"setup: {templates} loans walked in {walked.seconds:.1f} s, statuses {dict(found)}",
        flush=True,
    )
    out = {}
    for count in counts:
        db = tmp / f"orders-{count}.db"
        bk.copy_db(base, db)
        cloner.clone(db, count, bk.fresh_identity(f"clock-{count}"))
        out[count] = db
    print(
        f"setup: cloned to {', '.join(map(str, counts))} orders; "
        f"{time.perf_counter() - start:.1f} s in all",
        flush=True,
    )
    return out


def counts(db: Path) -> tuple[int, dict[int, int]]:
    """(timeline rows, orders per status), read from the closed database file."""
    with sqlite3.connect(db) as conn:
        timeline = conn.execute("SELECT count(*) FROM timeline").fetchone()[0]
        statuses = dict(conn.execute("SELECT status, count(*) FROM orders GROUP BY status"))
    return timeline, statuses


def measure(db: Path, days: int, profile: bool = False) -> dict:
    before, _ = counts(db)
    lender = bk.open_lender(db)
    prof = cProfile.Profile() if profile else None
    start, cpu = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    out = control.advance_clock(lender, bk.TOKEN, days * DAY)
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    lender.store.dispose()
    after, statuses = counts(db)
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    return {
        "wall": wall,
        "cpu": cpu,
        "fired": out["events_fired"],
        "transitions": after - before,
        "statuses": statuses,
    }


def report(label: str, orders: int, days: int, r: dict) -> str:
    n = r["transitions"]
    per = r["wall"] / n * 1e6 if n else float("nan")
    cpu_per = r["cpu"] / n * 1e6 if n else float("nan")
    return (
        f"{label}  {orders:>6} orders  +{days:>3}d  {r['wall']:6.2f} s wall  "
        f"{r['cpu']:6.2f} s CPU  {r['fired']:>6} events  {n:>6} transitions  "
        f"{per:5.0f} us wall, {cpu_per:5.0f} us CPU "
        f"per transition  statuses {dict(sorted(r['statuses'].items()))}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("orders", nargs="?", type=int, default=10_000)
    ap.add_argument("--templates", type=int, default=500, help="loans walked before cloning")
    ap.add_argument("--profile", action="store_true", help="cProfile run A")
    args = ap.parse_args()
    n, half = args.orders, args.orders // 2
    if half < 1:
        ap.error("orders must be at least 2")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-clock-") as scratch:
        tmp = Path(scratch)
        dbs = build(tmp, [n, half], min(args.templates, half))
        lines = []
        for label, count, days in (("A", n, 90), ("B", n, 900), ("C", half, 90)):
            copy = tmp / f"run-{label}.db"
            bk.copy_db(dbs[count], copy)
            r = measure(copy, days, profile=args.profile and label == "A")
            lines.append(report(label, count, days, r))
            print(lines[-1], flush=True)
        print()
        print("\n".join(lines))
        print(f"load average at end: {os.getloadavg()[0]:.2f}; goal: <= 300 us CPU per transition")


if __name__ == "__main__":
    sys.exit(main())
