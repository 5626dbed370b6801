"""The sandbox at 100 000 orders with their journal: memory, read latency, list and page times.

Run by hand (a few minutes): `python bench/bench_scale.py [--orders 100000] [--seed-orders 1000]
[--build clone|pipeline] [--reads 400] [--keep DIR] [--reuse DIR] [--no-serve]`. SQLite files
in a temp folder; `--keep DIR` builds them in DIR and leaves them there, `--reuse DIR` measures
the stores an earlier `--keep DIR` left (no build, no check; the reads add to their journal)
— seconds instead of minutes when you measure a change again.

Build (timed, not measured):
- small: `--small` (100) orders walked through the real pipeline (benchkit.walk: 02, 05, 06,
  08, the review, 11, the payout, polls of 12/13/14; three waves a week apart, so the store
  holds every status of a marketplace funnel);
- large: `--seed-orders` orders walked the same way, then cloned up to `--orders` by SQL
  (bench/cloner.py: every row of an order and its journal entries, under a new order_no and
  a new person). `--build pipeline` walks all of them instead (slow: ~7 ms per request).
- then the large store is checked through the API: a sample of clones answers 12 with its
  template's status, GET /sandbox/orders/{no} shows the same timeline, the dashboard shows it,
  the newest orders head GET /sandbox/orders, and a new 05 on the large store succeeds.

Measured, in this one process (same store kind, a SQLite file):
- reads: 12, 13 and 14 through `pipeline.handle` (journal on) on disbursed orders spread over
  the store, small and large interleaved in blocks: wall median and p95 and CPU median per
  store, and large/small;
- pages: GET /sandbox/orders?partner_token=demo, /dashboard?partner=demo,
  /dashboard/orders/{no}?partner=demo and /sandbox/orders/{no}?partner_token=demo through the
  ASGI app (httpx.ASGITransport, no network), at the small and at the large store: wall
  median and max, CPU median (up to 20 GETs each, fewer when one takes seconds);
- memory: this process's RSS (it built the stores, so it is an upper bound) and, unless
  `--no-serve`, the RSS of a fresh `lender-sandbox serve` on the large store after it served
  the same pages and 200 reads over HTTP (the figure that counts for a server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import benchkit as bk
import cloner
import httpx

from sandbox.client import LenderClient
from sandbox.services import control, pipeline
from sandbox.services.lender import Lender
from sandbox.testing import sample_order
from sandbox.web.app import create_app

READS = ("get-order-status", "get-approval-result", "get-repay-plan")  # 12, 13, 14
DISBURSED = 170


def say(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------------- build


class Built:
    """A built database: its file, the lender on it, and disbursed orders to read."""

    def __init__(self, label: str, db: Path, orders: int, disbursed: list[str], built: float):
        self.label, self.db, self.orders, self.disbursed, self.built = (
            label,
            db,
            orders,
            disbursed,
            built,
        )
        self.lender: Lender = bk.open_lender(db)
        self.agg = bk.Aggregator(self.lender)

    def size_mib(self) -> float:
        return sum(p.stat().st_size for p in self.db.parent.glob(self.db.name + "*")) / 2**20


def build_small(tmp: Path, n: int) -> Built:
    start = time.perf_counter()
    db = tmp / "small.db"
    agg = bk.Aggregator(bk.open_lender(db))
    walked = bk.walk(agg, n, prefix="small")
    found = bk.statuses(agg, walked.order_nos())
    disbursed = [no for no in walked.order_nos() if agg.status(no) == DISBURSED]
    agg.lender.store.dispose()
    say(
        f"small: {n} orders walked in {walked.seconds:.1f} s, "
        f"statuses {dict(sorted(found.items()))}"
    )
    return Built("small", db, n, disbursed, time.perf_counter() - start)


def reuse(tmp: Path) -> list[Built]:
    """The small and large stores an earlier `--keep` left in `tmp`, as built (their
    disbursed orders read back from the store: the large one's shuffled as built)."""
    stores = []
    for label in ("small", "large"):
        db = tmp / f"{label}.db"
        if not db.exists():
            raise SystemExit(f"--reuse: no {db}; build it first with --keep {tmp}")
        with sqlite3.connect(db) as conn:
            count = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
            disbursed = [
                no
                for (no,) in conn.execute(
                    "SELECT order_no FROM orders WHERE status = ? ORDER BY id", (DISBURSED,)
                )
            ]
        if label == "large":
            random.Random(7).shuffle(disbursed)
        stores.append(Built(label, db, count, disbursed, 0.0))
        say(f"{label}: reused {db} ({count} orders, {len(disbursed)} disbursed)")
    return stores


def build_large(tmp: Path, n: int, seed: int, how: str) -> tuple[Built, dict[str, Any]]:
    start = time.perf_counter()
    db = tmp / "large.db"
    agg = bk.Aggregator(bk.open_lender(db))
    k = n if how == "pipeline" else min(n, seed)
    walked = bk.walk(agg, k, prefix="large", progress=lambda m: say(f"large: {m}"))
    status_of = {no: agg.status(no) for no in walked.order_nos()}
    agg.lender.store.dispose()
    say(
        f"large: {k} orders walked in {walked.seconds:.1f} s ({walked.calls} requests, "
        f"{walked.seconds / max(walked.calls, 1) * 1000:.1f} ms each with the clock moves); "
        f"statuses {dict(sorted(Counter(status_of.values()).items()))}"
    )
    clones: dict[str, str] = {}  # clone order_no -> template order_no
    if n > k:
        t0 = time.perf_counter()
        report, pairs = cloner.clone(db, n, bk.fresh_identity("scale"), progress=say)
        clones = {new.order_no: old.order_no for old, new in pairs}
        say(
            f"large: cloned to {n} orders in {time.perf_counter() - t0:.1f} s; tables left as "
            f"they were: {', '.join(report.kept) or '-'}"
        )
    status_of.update({no: status_of[tmpl] for no, tmpl in clones.items()})
    # Disbursed orders spread over the whole store (not just the newest), in a fixed order.
    disbursed = [no for no, st in status_of.items() if st == DISBURSED]
    random.Random(7).shuffle(disbursed)
    store = Built("large", db, n, disbursed, time.perf_counter() - start)
    return store, {"status_of": status_of, "clones": clones}


# ---------------------------------------------------------------------------- check


def check(store: Built, facts: dict[str, Any], app: Any) -> None:
    """The cloned data holds up through the API (SystemExit naming the first thing wrong)."""
    clones: dict[str, str] = facts["clones"]
    status_of: dict[str, int] = facts["status_of"]
    sample = random.Random(3).sample(sorted(clones), min(30, len(clones)))
    with sqlite3.connect(store.db) as conn:
        count = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    if count != store.orders:
        raise SystemExit(f"check: {count} orders in the store, expected {store.orders}")
    for no in sample:
        tmpl = clones[no]
        doc = store.agg.call("get-order-status", {"order_no": no, "product_id": "1001"})
        if doc["code"] != 0 or doc["data"]["order_status"] != status_of[no]:
            raise SystemExit(f"check: 12 of clone {no} answered {doc}, expected {status_of[no]}")
        mine = control.order_detail(store.lender, bk.TOKEN, no)
        theirs = control.order_detail(store.lender, bk.TOKEN, tmpl)
        steps = [(t["from"], t["to"], t["trigger"]) for t in mine["timeline"]]
        if steps != [(t["from"], t["to"], t["trigger"]) for t in theirs["timeline"]]:
            raise SystemExit(f"check: clone {no} has another timeline than {tmpl}")
        if len(mine["callbacks"]) != len(theirs["callbacks"]):
            raise SystemExit(f"check: clone {no} has another number of callbacks than {tmpl}")
    pages = asyncio.run(_fetch(app, [f"/dashboard/orders/{sample[0]}?partner=demo"]))
    if sample[0] not in pages[0]:
        raise SystemExit(f"check: the dashboard page of {sample[0]} does not show it")
    newest = control.list_orders(store.lender, bk.TOKEN, limit=5)
    if newest[0]["order_no"] not in clones:
        raise SystemExit(f"check: the newest order {newest[0]['order_no']} is not a clone")
    o = sample_order("scale-check-new", scenario="approve")
    if store.agg.call("push-basic-info", o.basic_info())["code"] != 0:
        raise SystemExit("check: a new 05 on the large store failed")
    say(f"check: {len(sample)} clones answer 12 and show their template's timeline; writes work")


async def _fetch(app: Any, paths: list[str]) -> list[str]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        out = []
        for p in paths:
            r = await client.get(p)
            if r.status_code != 200:
                raise SystemExit(f"GET {p} answered HTTP {r.status_code}: {r.text[:200]}")
            out.append(r.text)
        return out


# ---------------------------------------------------------------------------- measure


def stats(seconds: list[float]) -> tuple[float, float]:
    """(median, p95) in ms."""
    ms = sorted(s * 1000 for s in seconds)
    return statistics.median(ms), ms[max(0, int(len(ms) * 0.95) - 1)]


def header(stores: list[Built], first: str, width: int) -> str:
    cells = "".join(f"{f'{s.label} ({s.orders})':>28}" for s in stores)
    return f"  {first:<{width}}{cells}"


def measure_reads(stores: list[Built], reads: int, block: int = 50) -> None:
    say(
        f"\nreads through pipeline.handle (journal on), {reads} per endpoint and store; "
        "ms: median / p95 wall, median CPU of this process"
    )
    say(header(stores, "endpoint", 20) + "   large/small (wall, CPU)")
    for name in READS:
        wall: dict[str, list[float]] = {s.label: [] for s in stores}
        cpu: dict[str, list[float]] = {s.label: [] for s in stores}
        bodies = {
            s.label: [
                s.agg.envelope({"order_no": no, "product_id": "1001"}) for no in s.disbursed[:50]
            ]
            for s in stores
        }
        for s in stores:  # warm up: statements compiled, pages cached
            for b in bodies[s.label]:
                _read(s, name, b)
        done = 0
        while done < reads:  # interleaved blocks: a load change hits both stores alike
            for s in stores:
                bs = bodies[s.label]
                for i in range(done, done + block):
                    w, c = _read(s, name, bs[i % len(bs)])
                    wall[s.label].append(w)
                    cpu[s.label].append(c)
            done += block
        cells = [(*stats(wall[s.label]), stats(cpu[s.label])[0]) for s in stores]
        say(
            f"  {name:<20}"
            + "".join(f"{f'{m:.2f} / {p:.2f}  cpu {c:.2f}':>28}" for m, p, c in cells)
            + f"   {cells[-1][0] / cells[0][0]:.2f}, {cells[-1][2] / cells[0][2]:.2f}"
            + "  (goal <= 1.20)"
        )


def _read(store: Built, name: str, body: bytes) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    reply = pipeline.handle(store.lender, "/" + name, body)
    took = time.perf_counter() - t, time.process_time() - c
    if reply.body.get("code") != 0:
        raise SystemExit(f"{name} answered {reply.body}")
    return took


def page_paths(store: Built) -> list[str]:
    no = store.disbursed[0]
    return [
        "/sandbox/orders?partner_token=demo",
        "/dashboard?partner=demo",
        f"/dashboard/orders/{no}?partner=demo",
        f"/sandbox/orders/{no}?partner_token=demo",
    ]


def _generic(store: Built) -> list[str]:
    return [p.replace(store.disbursed[0], "{no}") for p in page_paths(store)]


def measure_pages(stores: list[Built], apps: list[Any], reps: int = 20) -> None:
    say(
        f"\npages through the ASGI app (httpx.ASGITransport), up to {reps} GETs each "
        "(fewer past 10 s); ms: median / max wall, median CPU"
    )
    say(header(stores, "GET", 40) + "   goal")
    rows: dict[str, str] = {}
    for store, app in zip(stores, apps, strict=True):
        for generic, path in zip(_generic(store), page_paths(store), strict=True):
            wall, cpu = asyncio.run(_timed(app, path, reps))
            cell = (
                f"{statistics.median(wall):.1f} / {max(wall):.1f}  cpu {statistics.median(cpu):.1f}"
            )
            rows[generic] = rows.get(generic, "") + f"{cell:>28}"
    for generic, cells in rows.items():
        say(f"  {generic:<40}{cells}   <= 50 ms")


async def _timed(app: Any, path: str, reps: int) -> tuple[list[float], list[float]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        wall, cpu = [], []
        deadline = time.monotonic() + 10
        for i in range(reps + 2):
            t, c = time.perf_counter(), time.process_time()
            r = await client.get(path)
            took, used = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
            if r.status_code != 200:
                raise SystemExit(f"GET {path} answered HTTP {r.status_code}: {r.text[:200]}")
            if i >= 2:  # two warm-ups
                wall.append(took)
                cpu.append(used)
            if len(wall) >= 3 and time.monotonic() > deadline:
                break
        return wall, cpu


# ---------------------------------------------------------------------------- memory


def rss_mib(pid: int | str = "self") -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_rss(store: Built, tmp: Path) -> None:
    """A fresh `lender-sandbox serve` on the large store: its RSS after pages and reads."""
    port = free_port()
    cfg = tmp / "serve.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{store.db}"\n[clock]\nmode = "manual"\n')
    log = (tmp / "serve.log").open("w")
    cmd = [sys.executable, "-m", "sandbox", "serve", "--config", str(cfg), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc, tmp / "serve.log")
        started = rss_mib(proc.pid)
        creds = control.get_partner(store.lender, bk.TOKEN, secrets=True)
        times: dict[str, list[float]] = {}
        with httpx.Client(base_url=base, timeout=30, trust_env=False) as http:
            client = LenderClient(base, bk.TOKEN, creds["aes_key"], creds["aes_iv"], http=http)
            for _ in range(3):
                for generic, path in zip(_generic(store), page_paths(store), strict=True):
                    t = time.perf_counter()
                    http.get(path).raise_for_status()
                    times.setdefault(generic, []).append((time.perf_counter() - t) * 1000)
            for no in store.disbursed[:200]:
                client.call("get-order-status", {"order_no": no, "product_id": "1001"})
        after = rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    say(
        f"\n`lender-sandbox serve` on the large store ({store.orders} orders): RSS "
        f"{started[0]:.0f} MiB after start, {after[0]:.0f} MiB after the pages and 200 reads "
        f"over HTTP (peak {after[1]:.0f} MiB; goal <= 200 MB)"
    )
    say(
        "  its page times over HTTP (3 GETs each, median ms): "
        + ", ".join(f"{g} {statistics.median(t):.0f}" for g, t in times.items())
    )


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(base + "/sandbox/health", timeout=1, trust_env=False).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"serve did not answer in 60 s: {log.read_text()[-2000:]}")


# ---------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=100_000, help="orders in the large store")
    ap.add_argument("--small", type=int, default=100, help="orders in the small store")
    ap.add_argument(
        "--seed-orders", type=int, default=1000, help="orders walked before cloning (clone)"
    )
    ap.add_argument("--build", choices=("clone", "pipeline"), default="clone")
    ap.add_argument("--reads", type=int, default=400, help="reads per endpoint and store")
    ap.add_argument("--keep", type=Path, help="build in this folder and keep the databases")
    ap.add_argument("--reuse", type=Path, help="measure the databases --keep left in this folder")
    ap.add_argument("--no-serve", action="store_true", help="skip the `serve` RSS measurement")
    args = ap.parse_args()
    if args.orders < 1 or args.small < 1 or args.seed_orders < 1:
        ap.error("--orders, --small and --seed-orders must be at least 1")
    if args.keep and args.reuse:
        ap.error("--keep builds, --reuse measures what it built: one or the other")
    say(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.reuse:
        run(args, args.reuse, reuse(args.reuse))
        return
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        tmp = args.keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        for old in tmp.glob("*.db*"):
            old.unlink()
        run(args, tmp)
        if args.keep:
            say(f"databases kept in {tmp}")


def run(args: argparse.Namespace, tmp: Path, reused: list[Built] | None = None) -> None:
    if reused is None:
        small = build_small(tmp, args.small)
        large, facts = build_large(tmp, args.orders, args.seed_orders, args.build)
        say(
            f"built: small {small.built:.0f} s ({small.size_mib():.0f} MiB), "
            f"large {large.built:.0f} s ({large.size_mib():.0f} MiB, "
            f"{len(large.disbursed)} disbursed)"
        )
    else:
        small, large = reused
        facts = {"clones": {}}
    stores = [small, large]
    apps = [create_app(s.lender.settings, lender=s.lender) for s in stores]
    if facts["clones"]:
        check(large, facts, apps[1])
    measure_reads(stores, args.reads)
    measure_pages(stores, apps)
    rss, peak = rss_mib()
    say(
        f"\nthis process: RSS {rss:.0f} MiB (peak {peak:.0f} MiB; it built both stores, "
        f"ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)"
    )
    for s in stores:
        s.lender.store.dispose()
    if not args.no_serve:
        serve_rss(large, tmp)
    say(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
