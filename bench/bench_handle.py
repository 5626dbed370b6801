"""What one lender request costs in-process: `pipeline.handle` for 12 get-order-status.

Run by hand: `python bench/bench_handle.py [calls] [--fault] [--profile]`. A fresh in-process
`Sandbox` gets one order (created, submitted, bound, approved, confirmed, disbursed); then
`calls` get-order-status requests go straight to `pipeline.handle` (no HTTP, journal on), each
timed on its own. Also counted: transactions (COMMITs) and SQL statements per call.
`--fault` first adds a fault rule for this path that never fires here (it names another
order), so the rule lookups cannot be skipped.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import time

from sqlalchemy import event

from sandbox.core.crypto import Codec
from sandbox.services import faults
from sandbox.services import pipeline as api
from sandbox.testing import Sandbox, Template


def disbursed_order(sb: Sandbox) -> str:
    order = sb.sample_order("bench-handle")
    client = sb.client()
    for path, payload in (
        ("push-basic-info", order.basic_info()),
        ("push-supplement-info", order.supplement_info()),
        ("push-bind-bank", order.bind_bank()),
    ):
        assert client.call(path, payload)["code"] == 0
    sb.clock.advance(hours=1)
    assert client.call("push-order-confirm", order.confirm())["code"] == 0
    sb.clock.advance(hours=1)
    assert sb.order(order.order_no)["status"] == 170
    return order.order_no


def envelope(sb: Sandbox, payload: dict) -> bytes:
    c = sb.partner
    data = Codec(c.aes_key, c.aes_iv).encrypt_text(json.dumps(payload))
    return json.dumps({"partner_token": c.partner_token, "encode_data": data}).encode()


class Counter:
    def __init__(self, sb: Sandbox):
        self.commits = self.statements = 0
        event.listen(sb.lender.store.engine, "commit", self._commit)
        event.listen(sb.lender.store.engine, "before_cursor_execute", self._statement)

    def _commit(self, *_: object) -> None:
        self.commits += 1

    def _statement(self, *_: object) -> None:
        self.statements += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("calls", nargs="?", type=int, default=2000)
    ap.add_argument("--fault", action="store_true", help="with a fault rule for another order")
    ap.add_argument("--profile", action="store_true", help="cProfile the loop")
    args = ap.parse_args()
    with Sandbox(Template()) as sb:
        order_no = disbursed_order(sb)
        if args.fault:
            faults.put_rules(
                sb.lender,
                {
                    "kind": "business_error",
                    "path": "/get-order-status",
                    "order_no": "SOME-OTHER-ORDER",
                },
            )
        body = envelope(sb, {"order_no": order_no, "product_id": "1001"})
        for _ in range(100):  # warm up
            api.handle(sb.lender, "/get-order-status", body)
        counter = Counter(sb)
        prof = cProfile.Profile() if args.profile else None
        times, cpu = [], []
        if prof:
            prof.enable()
        for _ in range(args.calls):
            t, c = time.perf_counter(), time.thread_time()
            reply = api.handle(sb.lender, "/get-order-status", body)
            times.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)
            assert reply.code == 0, reply.body
        if prof:
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    print(
        f"api.handle get-order-status, {args.calls} calls"
        f"{' (a fault rule targets the path)' if args.fault else ''}: "
        f"{counter.commits / args.calls:.1f} transactions, "
        f"{counter.statements / args.calls:.1f} SQL statements per call"
    )
    print("  " + summary("wall", times))
    # CPU time of the thread: what the work costs when other processes compete for the CPU
    print("  " + summary("cpu ", cpu))


def summary(label: str, seconds: list[float]) -> str:
    us = sorted(s * 1e6 for s in seconds)
    return (
        f"{label}: median {statistics.median(us):.0f} us, "
        f"p95 {us[int(len(us) * 0.95) - 1]:.0f} us, mean {statistics.fmean(us):.0f} us"
    )


if __name__ == "__main__":
    main()
