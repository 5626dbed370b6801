"""The races of a shared staging instance, played out: one partner's traffic in flight (orders
walked through the lender API, clock moves, payments, forced transitions) while that partner
is reset (`POST /sandbox/reset`) and its acceptance run restarted, another partner too, and
now and then everything, while the outbox delivers and callbacks are redelivered.

Used by tests/http/test_races.py (SQLite: threads of one process) and
tests/postgres/test_postgres_races.py (several lenders on one database: processes' worth of
engines). No answer may be a 5xx or code 10099, and afterwards the store must be consistent;
each partner reset must leave the partner clean: no order or callback it could see survives it.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import func, select
from starlette.testclient import TestClient

from sandbox.core.crypto import Codec
from sandbox.harness.sink import MemorySink
from sandbox.services import outbox
from sandbox.services.lender import Lender
from sandbox.store import Callback, Order, TimelineRow
from sandbox.testing import sample_order

TOKEN = "demo"
OTHER = "team-b"  # another partner, reset while the demo partner's traffic runs
KEY, IV = "Loan@apis#123456@", "loan#654321@apis"  # the demo partner's pair
CODEC = Codec(KEY, IV)
INTERNAL = 10099
CALLBACK_URL = "http://127.0.0.1:9/cb"  # never called: the MemorySink answers in-process


@dataclass
class Race:
    """One run: its clients (one per lender), what went wrong, what was done."""

    clients: list[TestClient]
    lenders: list[Lender]
    failures: list[str] = field(default_factory=list)
    done: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, label: str, r: httpx.Response, *, must: tuple[int, ...] = ()) -> Any:
        """The answer's JSON; a 5xx, a code 10099 or a status outside `must` is a failure."""
        try:
            doc = r.json()
        except ValueError:
            doc = None
        code = doc.get("code") if isinstance(doc, dict) else None
        bad = r.status_code >= 500 or code == INTERNAL or (must and r.status_code not in must)
        with self.lock:
            self.done[label] += 1
            if bad:
                self.failures.append(f"{label}: HTTP {r.status_code} {r.text[:300]}")
        return doc

    def lender_call(self, client: TestClient, path: str, payload: dict) -> dict:
        body = {"partner_token": TOKEN, "encode_data": CODEC.encrypt_json(payload)}
        doc = self.check(path, client.post(path, json=body))
        return doc if isinstance(doc, dict) else {}

    def guarded(self, name: str, work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as e:  # a raised error is a failure too, and stops nothing
                with self.lock:
                    self.failures.append(f"{name} raised {type(e).__name__}: {e}")

        return run


def traffic(race: Race, worker: int, orders: int) -> None:
    """`orders` orders of the demo partner, each walked towards repayment (created, reviewed,
    confirmed, paid out, paid) with random other steps between; a reset may wipe it midway."""
    rng = random.Random(worker)
    for k in range(orders):
        client = race.clients[(worker + k) % len(race.clients)]
        o = sample_order(f"race-{worker}-{k}", scenario=rng.choice(["approve", "approve", None]))
        for path, payload in (
            ("/push-basic-info", o.basic_info()),
            ("/push-supplement-info", o.supplement_info()),
            ("/push-bind-bank", o.bind_bank()),
        ):
            race.lender_call(client, path, payload)
        for step in (_advance, _confirm, _advance, _pay):
            step(race, client, o)
            if rng.random() < 0.5:
                _aside(race, client, rng, o)


def _advance(race: Race, client: TestClient, o: Any) -> None:
    r = client.post(f"/sandbox/partners/{TOKEN}/clock/advance", json={"seconds": 3600})
    race.check("clock advance", r)


def _confirm(race: Race, client: TestClient, o: Any) -> None:
    race.lender_call(client, "/push-order-confirm", o.confirm())


def _pay(race: Race, client: TestClient, o: Any) -> None:
    code = race.lender_call(client, "/get-repay-detail", o.repay_detail())
    data = code.get("data")
    if code.get("code") == 0 and isinstance(data, dict) and data.get("repay_code"):
        race.check("pay", client.post("/sandbox/payments", json={"repay_code": data["repay_code"]}))


def _aside(race: Race, client: TestClient, rng: random.Random, o: Any) -> None:
    """A forced transition or a read of the order."""
    if rng.random() < 0.3:
        body = {"partner_token": TOKEN, "trigger": rng.choice(["approve", "reject", "cancel"])}
        race.check("transition", client.post(f"/sandbox/orders/{o.order_no}/transition", json=body))
    else:
        path = rng.choice(["/get-order-status", "/get-approval-result", "/get-repay-plan"])
        race.lender_call(client, path, o.order())


def highest(lender: Lender, column: Any) -> int:
    with lender.store.transaction() as s:
        return int(s.scalar(select(func.max(column))) or 0)


def orders_of(lender: Lender) -> set[str]:
    with lender.store.transaction() as s:
        return set(s.scalars(select(Order.order_no).where(Order.partner_token == TOKEN)))


def survivors(lender: Lender, seen: set[str]) -> tuple[int, int]:
    """How many of the orders `seen`, and of their callbacks, are still there. (By order
    number: SQLite numbers a new row from the highest id left, so ids come back after a
    reset; the traffic creates each order number once.)"""
    with lender.store.transaction() as s:
        orders = s.scalar(
            select(func.count(Order.id)).where(
                Order.partner_token == TOKEN, Order.order_no.in_(seen)
            )
        )
        callbacks = s.scalar(
            select(func.count(Callback.id)).where(
                Callback.partner_token == TOKEN, Callback.order_no.in_(seen)
            )
        )
    return int(orders or 0), int(callbacks or 0)


def resets(race: Race, token: str, everything: int) -> None:
    """Reset partner `token` over and over (every `everything`-th time everything) while the
    demo partner's traffic runs; the partner's acceptance run restarts between. What a reset
    of the demo partner (or of everything) could see of it must be gone when it answers."""
    rng, n = random.Random(token), 0
    while not race.stop.is_set():
        client = race.clients[n % len(race.clients)]
        lender = race.lenders[n % len(race.lenders)]
        if token != TOKEN:  # made again after a global reset (409: it is there)
            body = {"partner_token": token, "name": "another team"}
            race.check(
                "create partner", client.post("/sandbox/partners", json=body), must=(200, 409)
            )
        seen = orders_of(lender)
        body = {"all": True} if n % everything == everything - 1 else {"partner_token": token}
        race.check("reset", client.post("/sandbox/reset", json=body), must=(200,))
        left = survivors(lender, seen)
        if (body.get("all") or token == TOKEN) and left != (0, 0):
            race.failures.append(f"reset {body} left {left} (orders, callbacks) it had seen")
        if rng.random() < 0.7 and not body.get("all"):  # (another partner is gone then)
            r = client.post(f"/sandbox/partners/{token}/conformance/reset")
            race.check("conformance reset", r, must=(200,))
        n += 1
        race.stop.wait(rng.uniform(0.05, 0.4))


def deliveries(race: Race, lender: Lender, client: TestClient) -> None:
    """The outbox's worker and a redelivering operator: claim, send, record, redeliver."""
    sink = MemorySink()
    sink.add_partner(TOKEN, KEY, IV)
    rng = random.Random(id(lender))
    while not race.stop.is_set():
        r = client.patch(f"/sandbox/partners/{TOKEN}", json={"callback_url": CALLBACK_URL})
        race.check("patch partner", r, must=(200, 404))  # 404: between a global reset and seed
        outbox.deliver_now(lender, sink, max_rounds=3)
        top = highest(lender, Callback.id)
        for callback_id in (rng.randint(max(1, top - 20), top + 1) for _ in range(3)):
            r = client.post(f"/sandbox/callbacks/{callback_id}/redeliver")
            race.check("redeliver", r, must=(200, 404))


def run(
    clients: list[TestClient],
    lenders: list[Lender],
    *,
    workers: int,
    orders: int,
) -> Race:
    race = Race(clients, lenders)
    busy = [
        threading.Thread(target=race.guarded("traffic", lambda w=w: traffic(race, w, orders)))
        for w in range(workers)
    ]
    background = [
        # the demo partner's resets; another partner's, every fourth time everything's
        threading.Thread(target=race.guarded("resets", lambda: resets(race, TOKEN, 10**9))),
        threading.Thread(target=race.guarded("resets", lambda: resets(race, OTHER, 4))),
    ] + [
        threading.Thread(
            target=race.guarded("deliveries", lambda k=k: deliveries(race, lenders[k], clients[k]))
        )
        for k in range(len(lenders))
    ]
    for t in busy + background:
        t.start()
    for t in busy:
        t.join(120)
    race.stop.set()
    for t in background:
        t.join(120)
    return race


def inconsistencies(lender: Lender) -> list[str]:
    """What a consistent store never holds: a callback of an order that is gone (callbacks
    carry no foreign key), an order whose status is not where its timeline ends."""
    found = []
    with lender.store.transaction() as s:
        orphans = s.scalars(
            select(Callback.id).where(
                Callback.order_id.is_not(None), ~Callback.order_id.in_(select(Order.id))
            )
        ).all()
        if orphans:
            found.append(f"callbacks of deleted orders: {orphans[:10]}")
        last = (
            select(TimelineRow.order_id, func.max(TimelineRow.id).label("last"))
            .group_by(TimelineRow.order_id)
            .subquery()
        )
        rows = s.execute(
            select(Order.order_no, Order.status, TimelineRow.to_status)
            .join(last, last.c.order_id == Order.id)
            .join(TimelineRow, TimelineRow.id == last.c.last)
            .where(Order.status != TimelineRow.to_status)
        ).all()
        if rows:
            found.append(f"orders off their timeline: {rows[:10]}")
    return found


def json_bytes(doc: Any) -> bytes:
    return json.dumps(doc).encode()
