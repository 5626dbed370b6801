"""Callback delivery end to end, side by side with bare HTTP clients POSTing the same bodies.

Run by hand (about a minute): `python bench/bench_delivery.py [--orders 1000] [--sender httpx]
[--batch 50] [--requests 3000] [--inflight 1,10,50] [--rounds 1] [--loop auto|asyncio|uvloop]`.
aiohttp (the sandbox's sender) and a fast receiver (uvloop + httptools, which
uvicorn[standard] brings) come with the package.

The receiver: a minimal ASGI app under uvicorn in its own process (as an aggregator's would
be), answering every POST `{"code":0,"message":"success","data":{}}`; uvloop and httptools
when installed. It keeps the first bodies it receives: those are the bare loops' bodies.

Setup (not measured): `--orders` orders of the demo partner walked through the real pipeline
(02, 05, 06, 08, the review, 11, the payout): each enqueues five callbacks (19 at 90, 19 and 20
at the approval, 19 and 21 at the payout), ordered per order. The database (a SQLite file) is
copied for every run; the demo partner's callback_url is pointed at the receiver.

Measured, each round (`--rounds`):
- the sandbox's own delivery of every queued callback — claim from the outbox, encrypt, POST,
  record the attempt — with `worker.Worker` (what `serve` runs; up to [callbacks] batch_size
  in flight) and with `outbox.flush_until_idle` (rounds of one batch, what tests use), through
  the `--sender` of sandbox.services.senders (repeatable; default aiohttp, what the server uses);
- bare loops: the same encrypted bodies POSTed with httpx.AsyncClient and with aiohttp,
  `--requests` each, at each `--inflight`, answers parsed as the outbox judges them.
Printed per row: requests/s, CPU per request of this process (the client side: for the
sandbox, claiming, encrypting, sending and recording) and of the receiver, and the load average.
The goal of the performance issue: >= 2 000 deliveries/s to a fast loopback receiver.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing
import os
import socket
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchkit as bk
import httpx

from sandbox.services import control, outbox, senders
from sandbox.services.lender import Lender
from sandbox.services.worker import Worker

ACK = b'{"code":0,"message":"success","data":{}}'
JSON_TYPE = "application/json;charset=utf-8"
KEEP_BODIES = 2000
LIMIT_SECONDS = 120.0
# --sender name -> the class in sandbox.services.senders that would implement it
SENDERS = {"httpx": "HttpxSender", "aiohttp": "AiohttpSender"}


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# ---------------------------------------------------------------------------- the receiver


def receiver_main(port: int, received: Any, ready: Any) -> None:
    """The receiver process: uvicorn on 127.0.0.1:`port` until terminated."""
    import uvicorn

    kept: list[tuple[str, str]] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                    ready.set()
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body, more = b"", True
        while more:
            msg = await receive()
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
        answer = ACK
        if scope["method"] == "GET":  # the bodies kept, for the bare loops
            answer = json.dumps(kept).encode()
        else:
            received.value += 1
            if len(kept) < KEEP_BODIES:
                kept.append((scope["path"], body.decode()))
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop" if has("uvloop") else "asyncio",
        http="httptools" if has("httptools") else "h11",
        log_level="warning",
        access_log=False,
    )


@dataclass
class Receiver:
    url: str
    pid: int
    received: Any  # multiprocessing.Value: POSTs answered so far (shared memory, free to read)
    _bodies: list[tuple[str, bytes]] = field(default_factory=list)

    def cpu(self) -> float:
        """CPU seconds the receiver has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def bodies(self) -> list[tuple[str, bytes]]:
        """The first bodies the receiver kept (the sandbox's, when asked after its first run)."""
        if not self._bodies:
            with urllib.request.urlopen(self.url + "/bodies", timeout=10) as r:
                self._bodies = [(path, body.encode()) for path, body in json.loads(r.read())]
        return self._bodies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- setup


def build(db: Path, orders: int) -> tuple[list[str], int]:
    """Walk `orders` orders to disbursed; returns their numbers and the callbacks queued."""
    agg = bk.Aggregator(bk.open_lender(db))
    walked = bk.walk(agg, orders, funnel=bk.DISBURSE_ONLY, waves=1, prefix="delivery")
    queued = sum(
        c["state"] == "pending"
        for no in walked.order_nos()
        for c in control.order_detail(agg.lender, bk.TOKEN, no)["callbacks"]
    )
    agg.lender.store.dispose()
    print(
        f"setup: {orders} orders walked in {walked.seconds:.1f} s ({walked.calls} requests), "
        f"{queued} callbacks queued",
        flush=True,
    )
    return walked.order_nos(), queued


def fresh_copy(src: Path, tmp: Path, label: str, url: str, batch: int | None) -> Lender:
    db = tmp / f"{label}.db"
    bk.copy_db(src, db)
    lender = bk.open_lender(db, callbacks={"batch_size": batch} if batch else {})
    control.update_partner(lender, bk.TOKEN, {"callback_url": url})
    return lender


def undelivered(lender: Lender, order_nos: list[str]) -> int:
    return sum(
        c["state"] != "delivered"
        for no in order_nos
        for c in control.order_detail(lender, bk.TOKEN, no)["callbacks"]
    )


# ---------------------------------------------------------------------------- measuring


@dataclass
class Row:
    label: str
    inflight: str
    done: int
    seconds: float
    cpu: float  # this process
    receiver_cpu: float
    note: str = ""

    def line(self) -> str:
        rate = self.done / self.seconds if self.seconds else 0.0
        per = self.cpu / self.done * 1e6 if self.done else 0.0
        rper = self.receiver_cpu / self.done * 1e6 if self.done else 0.0
        return (
            f"  {self.label:<34}{self.inflight:>9}{rate:>10,.0f}{per:>12,.0f}{rper:>12,.0f}"
            f"{os.getloadavg()[0]:>7.1f}  {self.note}"
        )


HEAD = (
    f"  {'':<34}{'in flight':>9}{'req/s':>10}{'CPU us/req':>12}{'receiver':>12}{'load':>7}\n"
    f"  {'':<34}{'':>9}{'':>10}{'(client)':>12}{'us/req':>12}"
)


async def timed(rx: Receiver, label: str, inflight: str, work: Callable[[], Awaitable[int]]) -> Row:
    r0, c0, t0 = rx.cpu(), time.process_time(), time.perf_counter()
    done = await work()
    seconds = time.perf_counter() - t0
    return Row(label, inflight, done, seconds, time.process_time() - c0, rx.cpu() - r0)


async def lanes(n: int, inflight: int, one: Callable[[int], Awaitable[None]]) -> int:
    """`n` calls of `one(i)`, `inflight` at a time."""
    counter = iter(range(n))

    async def lane() -> None:
        for i in counter:
            await one(i)

    await asyncio.gather(*(lane() for _ in range(inflight)))
    return n


def acknowledged(content: bytes) -> None:
    if json.loads(content).get("code") != 0:  # as the outbox judges an answer
        raise RuntimeError(f"the receiver refused: {content[:200]!r}")


async def bare_httpx(rx: Receiver, bodies: list, n: int, inflight: int) -> Row:
    # Configured as the sandbox's HttpxSender: no proxy from the env, keep-alive for all.
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(trust_env=False, limits=limits) as client:

        async def one(i: int) -> None:
            path, body = bodies[i % len(bodies)]
            r = await client.post(rx.url + path, content=body, headers={"content-type": JSON_TYPE})
            acknowledged(r.content)

        await lanes(inflight * 2, inflight, one)  # warm-up: connections open
        return await timed(
            rx, "bare httpx.AsyncClient", str(inflight), lambda: lanes(n, inflight, one)
        )


async def bare_aiohttp(rx: Receiver, bodies: list, n: int, inflight: int) -> Row:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:

        async def one(i: int) -> None:
            path, body = bodies[i % len(bodies)]
            headers = {"content-type": JSON_TYPE}
            async with session.post(rx.url + path, data=body, headers=headers) as r:
                acknowledged(await r.read())

        await lanes(inflight * 2, inflight, one)
        return await timed(rx, "bare aiohttp", str(inflight), lambda: lanes(n, inflight, one))


async def make_sender(name: str, stack: AsyncExitStack) -> Any:
    sender = getattr(senders, SENDERS[name])()
    if hasattr(sender, "__aenter__"):
        return await stack.enter_async_context(sender)
    if hasattr(sender, "aclose"):
        stack.push_async_callback(sender.aclose)
    return sender


async def with_worker(rx: Receiver, lender: Lender, name: str, total: int) -> Row:
    async with AsyncExitStack() as stack:
        sender = await make_sender(name, stack)
        target = rx.received.value + total

        async def work() -> int:
            worker = Worker(lender, sender)
            worker.start()
            deadline = time.monotonic() + LIMIT_SECONDS
            while rx.received.value < target and time.monotonic() < deadline:
                await asyncio.sleep(0.002)
            await worker.stop()  # records every finished send: the attempts are in the store
            return total - max(0, target - rx.received.value)

        limit = lender.settings.callbacks.batch_size
        return await timed(rx, f"sandbox Worker ({name})", f"<={limit}", work)


async def with_flush(rx: Receiver, lender: Lender, name: str, total: int) -> Row:
    async with AsyncExitStack() as stack:
        sender = await make_sender(name, stack)

        async def work() -> int:
            done, deadline = 0, time.monotonic() + LIMIT_SECONDS
            while time.monotonic() < deadline:
                n = await outbox.flush_until_idle(lender, sender)
                if not n:
                    break
                done += n
            return done

        limit = lender.settings.callbacks.batch_size
        return await timed(rx, f"sandbox flush_until_idle ({name})", f"<={limit}", work)


# ---------------------------------------------------------------------------- main


def run_loop(coro: Awaitable[Any], loop: str) -> Any:
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)  # type: ignore[arg-type]
    return asyncio.run(coro)  # type: ignore[arg-type]


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=1000, help="orders walked (5 callbacks each)")
    ap.add_argument(
        "--sender",
        action="append",
        choices=sorted(SENDERS),
        help="the sandbox's sender (repeatable; default aiohttp, what the server uses)",
    )
    ap.add_argument("--batch", type=int, help="[callbacks] batch_size (default: the config's)")
    ap.add_argument("--requests", type=int, default=3000, help="POSTs per bare loop")
    ap.add_argument("--inflight", default="1,10,50", help="bare loops' requests in flight")
    ap.add_argument("--rounds", type=int, default=1, help="repeat every measurement")
    ap.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="this process's event loop; auto: uvloop when installed, as uvicorn picks for serve",
    )
    args = ap.parse_args()
    args.sender = args.sender or ["aiohttp"]
    for name in args.sender:
        if not hasattr(senders, SENDERS[name]):
            ap.error(f"sandbox.services.senders has no {SENDERS[name]} (yet): --sender httpx")
    if args.loop == "auto":
        args.loop = "uvloop" if has("uvloop") else "asyncio"
    elif args.loop == "uvloop" and not has("uvloop"):
        ap.error("uvloop is not installed: pip install uvloop")
    args.inflight = [int(x) for x in args.inflight.split(",") if x.strip()]
    if args.orders < 1 or args.requests < 1 or not args.inflight or min(args.inflight) < 1:
        ap.error("--orders, --requests and every --inflight must be at least 1")
    return args


def start_receiver() -> tuple[Receiver, Any]:
    ctx = multiprocessing.get_context("spawn")
    received, ready = ctx.Value("q", 0, lock=False), ctx.Event()
    port = free_port()
    proc = ctx.Process(target=receiver_main, args=(port, received, ready), daemon=True)
    proc.start()
    if not ready.wait(30):
        proc.terminate()
        raise SystemExit("the receiver did not start in 30 s")
    deadline = time.monotonic() + 10  # uvicorn binds just after the lifespan start-up
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    return Receiver(f"http://127.0.0.1:{port}", proc.pid, received), proc


def main() -> None:
    args = parse()
    stack = (
        f"uvicorn + {'uvloop' if has('uvloop') else 'asyncio'} + "
        f"{'httptools' if has('httptools') else 'h11'}"
    )
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; receiver: {stack}; "
        f"this process: {args.loop}; python {sys.version.split()[0]}",
        flush=True,
    )
    rx, proc = start_receiver()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-delivery-") as scratch:
            tmp = Path(scratch)
            src = tmp / "outbox.db"
            order_nos, queued = build(src, args.orders)
            for r in range(args.rounds):
                print(f"\nround {r + 1}/{args.rounds}\n{HEAD}", flush=True)
                measure_round(args, rx, src, tmp, order_nos, queued)
    finally:
        proc.terminate()
        proc.join(10)
    print("\ngoal: the sandbox >= 2,000 deliveries/s end to end (claim, encrypt, POST, record)")


def measure_round(
    args: argparse.Namespace,
    rx: Receiver,
    src: Path,
    tmp: Path,
    order_nos: list[str],
    queued: int,
) -> None:
    for name in args.sender:
        for label, how in (("worker", with_worker), ("flush", with_flush)):
            lender = fresh_copy(src, tmp, f"{label}-{name}", rx.url, args.batch)
            row = run_loop(how(rx, lender, name, queued), args.loop)
            left = undelivered(lender, order_nos)
            row.note = f"{queued - left}/{queued} delivered" + ("" if not left else f", {left} NOT")
            lender.store.dispose()
            print(row.line(), flush=True)
    bodies = rx.bodies()
    clients: list[tuple[str, Any]] = [("httpx", bare_httpx)]
    if has("aiohttp"):
        clients.append(("aiohttp", bare_aiohttp))
    else:
        print("  bare aiohttp: skipped, not installed (pip install aiohttp)")
    for _, loop_fn in clients:
        for inflight in args.inflight:
            row = run_loop(loop_fn(rx, bodies, args.requests, inflight), args.loop)
            row.note = f"{len(bodies)} bodies as the sandbox sent them"
            print(row.line(), flush=True)


if __name__ == "__main__":
    main()
