"""What one lender request costs in-process: `pipeline.handle` for 12 get-order-status (or 05).

Run by hand: `python bench/bench_handle.py [calls] [--write] [--fault] [--profile]`. A fresh
in-process `Sandbox` gets one order (created, submitted, bound, approved, confirmed,
disbursed); then `calls` get-order-status requests go straight to `pipeline.handle` (no HTTP,
journal on), each timed on its own. `--write` sends 05 push-basic-info instead, a new order of
a new person each call (the write of `vs_ceilings`). Also counted: transactions (COMMITs) and
SQL statements per call, as SQLite sees them (its trace callback: statements run on the DBAPI
cursor count too).
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
    """Statements and COMMITs as SQLite runs them (the in-process sandbox has one connection)."""

    def __init__(self, sb: Sandbox):
        self.commits = self.statements = 0
        with sb.lender.store.engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            dbapi.set_trace_callback(self._statement)  # type: ignore[attr-defined]

    def _statement(self, sql: str) -> None:
        if sql == "COMMIT":
            self.commits += 1
        elif sql not in ("BEGIN", "BEGIN ", "ROLLBACK"):
            self.statements += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("calls", nargs="?", type=int, default=2000)
    ap.add_argument("--write", action="store_true", help="05 push-basic-info, a new order each")
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
        path = "/push-basic-info" if args.write else "/get-order-status"
        if args.write:  # the bodies are made first: making them is not the sandbox's work
            bodies = [envelope(sb, sb.sample_order().basic_info()) for _ in range(args.calls + 100)]
        else:
            bodies = [envelope(sb, {"order_no": order_no, "product_id": "1001"})]
        requests = iter(bodies) if args.write else iter(lambda: bodies[0], None)
        for _ in range(100):  # warm up
            api.handle(sb.lender, path, next(requests))
        counter = Counter(sb)
        prof = cProfile.Profile() if args.profile else None
        times, cpu = [], []
        if prof:
            prof.enable()
        for _ in range(args.calls):
            t, c = time.perf_counter(), time.thread_time()
            reply = api.handle(sb.lender, path, next(requests))
            times.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)
            assert reply.code == 0, reply.body
        if prof:
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    print(
        f"api.handle {path.strip('/')}, {args.calls} calls"
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
