"""Callbacks delivered per second by the outbox worker to a real loopback receiver.

Run by hand: `python bench/bench_callbacks.py [orders] [--db URL]`. It enqueues ORDERS
orders' worth of outbox rows (3 callbacks each, like an approval: 19, 20, 19 — ordered, so
an order's callbacks go one after another), then times two ways of delivering them all with
the real `HttpxSender` (one pooled httpx client) to a `CallbackSink` on 127.0.0.1, the
encrypted envelope included. The sink runs in its own process, as an aggregator's receiver
would (sharing this process's GIL would measure the two fighting over it):
- `worker`: `worker.Worker`, what `lender-sandbox serve` runs (continuous, up to
  batch_size in flight);
- `flush`: `outbox.flush_until_idle`, rounds of one batch (what tests use).
The database defaults to a SQLite file in a temporary folder (the `serve` default); `--db`
takes a scratch database (e.g. PostgreSQL) that is wiped before each run. Bounded:
at most 5000 orders, and each run gives up after 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from sandbox.harness.sink import CallbackSink
from sandbox.services import outbox
from sandbox.services.config import load_settings
from sandbox.services.lender import Lender, create_lender
from sandbox.services.senders import HttpxSender
from sandbox.services.worker import Worker
from sandbox.store import Callback, CallbackAttempt, Store

KEY, IV = "BenchKey12345678", "BenchIv123456789"
LIMIT_SECONDS = 60.0


def make_lender(url: str, sink_url: str, batch: int = 50) -> Lender:
    settings = load_settings(
        overrides={
            "database": {"url": url},
            "clock": {"mode": "manual"},
            "callbacks": {"batch_size": batch},
        },
        env={},
    )
    store = Store(url)
    store.drop_all()  # a scratch database: every run starts empty
    lender = create_lender(settings, store=store)
    with lender.store.transaction() as s:
        s.add(lender.new_partner("bench", KEY, IV, callback_url=sink_url))
    return lender


def enqueue(lender: Lender, orders: int) -> int:
    now = lender.wall()
    with lender.store.transaction() as s:
        for i in range(orders):
            no = f"BENCH{i:08d}"
            for path, status in (
                ("/callback-order-status", 90),
                ("/callback-approval-result", 100),
                ("/callback-order-status", 100),
            ):
                s.add(
                    Callback(
                        partner_token="bench",
                        order_id=i + 1,  # the outbox orders an order's callbacks by it
                        order_no=no,
                        path=path,
                        body={"order_no": no, "order_status": status, "update_time": int(now)},
                        created_at=now,
                        state="pending",
                        attempts=0,
                        next_attempt_at=now,
                        lease_until=0.0,
                        last_error="",
                    )
                )
    return orders * 3


def delivered(lender: Lender) -> int:
    with lender.store.transaction() as s:
        return s.scalar(select(func.count()).where(Callback.state == "delivered")) or 0


async def until_delivered(lender: Lender, total: int) -> None:
    # Counted off the event loop: a query on the loop would stall the worker it measures.
    deadline = time.monotonic() + LIMIT_SECONDS
    while await asyncio.to_thread(delivered, lender) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def with_flush(lender: Lender, total: int) -> None:
    async with HttpxSender() as sender:
        deadline = time.monotonic() + LIMIT_SECONDS
        while await outbox.flush_until_idle(lender, sender) and time.monotonic() < deadline:
            pass


async def with_worker(lender: Lender, total: int) -> None:
    async with HttpxSender() as sender:
        worker = Worker(lender, sender)
        worker.start()
        await until_delivered(lender, total)
        await worker.stop()


def receiver(conn: Any) -> None:
    """The sink process: tell the URL, serve until asked, answer with what arrived."""
    with CallbackSink(KEY, IV) as sink:
        conn.send(sink.url)
        conn.recv()
        orders = [b["order_no"] for b in sink.received()]
        # per order: 19 (90), 20, 19 (100) in that order
        firsts = {no: i for i, no in reversed(list(enumerate(orders)))}
        in_order = all(sink.received()[firsts[no]]["order_status"] == 90 for no in firsts)
        conn.send((len(orders), in_order))


def run(mode: str, url: str, orders: int, batch: int) -> None:
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=receiver, args=(child,))
    proc.start()
    lender = make_lender(url, parent.recv(), batch)
    total = enqueue(lender, orders)
    start = time.perf_counter()
    asyncio.run(with_worker(lender, total) if mode == "worker" else with_flush(lender, total))
    seconds = time.perf_counter() - start
    done = delivered(lender)
    with lender.store.transaction() as s:
        latencies = list(s.scalars(select(CallbackAttempt.latency_ms)))
    lender.store.dispose()
    parent.send("stop")
    received, in_order = parent.recv()
    proc.join()
    print(
        f"{mode:>6}, batch {batch:3d}: {done}/{total} callbacks delivered in {seconds:.2f} s = "
        f"{done / seconds:,.0f} callbacks/s  (attempts {len(latencies)}, median send "
        f"{statistics.median(latencies):.1f} ms, receiver got {received}, first-per-order "
        f"is 19/90: {in_order})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("orders", type=int, nargs="?", default=500)
    parser.add_argument(
        "--batch",
        type=int,
        action="append",
        help="[callbacks] batch_size: deliveries in flight (repeatable; default 50)",
    )
    parser.add_argument(
        "--db",
        default="",
        help="a SCRATCH database URL, wiped before each run (default: a temporary SQLite file)",
    )
    args = parser.parse_args()
    orders = max(1, min(args.orders, 5000))
    with tempfile.TemporaryDirectory() as tmp:
        for batch in args.batch or [50]:
            for mode in ("worker", "flush"):
                url = args.db or f"sqlite:///{Path(tmp) / f'{mode}-{batch}.db'}"
                run(mode, url, orders, max(1, min(batch, 500)))


if __name__ == "__main__":
    main()
