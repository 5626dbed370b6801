"""What each lender request costs in SQL: statements and transactions, as SQLite runs them.

The request path's speed comes from doing little: one transaction, a few indexed statements.
A change that adds a query per request (an ORM lazy load, a lookup in a loop, a second
transaction) slows every aggregator's test suite and the server; this catches it where it is
made. The budgets are today's counts: lower them when a change saves a statement.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from sandbox.core.crypto import Codec
from sandbox.services import control, pipeline
from sandbox.testing import Sandbox

# endpoint -> (statements, transactions) for one successful call in a steady state (no due
# event pending, no fault rule). A read of an order is three: the arrival (partner, next due
# event, fault rules aimed at it, in one query), the order, the journal row. An executemany
# counts once per row (SQLite runs it so).
BUDGET: dict[str, tuple[int, int]] = {
    "/get-loan-precheck": (3, 1),
    "/get-loan-amount": (3, 1),
    "/get-loan-interest": (3, 1),
    "/push-basic-info": (6, 1),
    "/push-supplement-info": (9, 1),  # a transition: timeline, due event, callback rows
    "/get-bank-list": (2, 1),
    "/push-bind-bank": (7, 1),  # the bound accounts read first: an identical replay is 0
    "/get-bind-bank": (4, 1),
    "/get-loan-contract": (3, 1),
    "/push-order-confirm": (7, 1),
    "/get-order-status": (3, 1),
    "/get-approval-result": (3, 1),
    "/get-repay-plan": (4, 1),
    "/get-repay-detail": (8, 1),  # issues a payment code
    "/get-delay-list": (4, 1),
    "/get-delay-interest": (3, 1),
    "/get-delay-detail": (4, 1),
}


class Trace:
    """Counts what SQLite runs on the sandbox's connection (its trace callback sees every
    statement, whichever way it was executed)."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.commits = 0

    def __call__(self, sql: str) -> None:
        if sql == "COMMIT":
            self.commits += 1
        elif not sql.startswith(("BEGIN", "ROLLBACK")):
            self.statements.append(sql)


@contextmanager
def traced(sb: Sandbox) -> Iterator[Trace]:
    trace = Trace()
    with sb.lender.store.engine.connect() as conn:  # the in-process store has one connection
        dbapi: Any = conn.connection.dbapi_connection
        dbapi.set_trace_callback(trace)
        try:
            yield trace
        finally:
            dbapi.set_trace_callback(None)


def envelope(sb: Sandbox, payload: dict) -> bytes:
    c = sb.partner
    data = Codec(c.aes_key, c.aes_iv).encrypt_text(json.dumps(payload))
    return json.dumps({"partner_token": c.partner_token, "encode_data": data}).encode()


@pytest.fixture(scope="module")
def measured() -> dict[str, Trace]:
    """Walk one order through every endpoint, tracing each request as the pipeline handles
    it (the harness's delivery of the callbacks it enqueued is not the request's cost)."""
    out: dict[str, Trace] = {}
    with Sandbox() as sb:
        order = sb.sample_order()
        payloads = order.payloads()

        def call(path: str) -> None:
            body = envelope(sb, payloads[path])
            with traced(sb) as trace:
                reply = pipeline.handle(sb.lender, path, body)
            assert reply.code == 0, (path, reply.body)
            out[path] = trace

        for path in ("/get-loan-precheck", "/get-loan-amount", "/get-loan-interest"):
            call(path)
        for path in ("/push-basic-info", "/push-supplement-info", "/get-bank-list"):
            call(path)
        call("/push-bind-bank")
        call("/get-bind-bank")
        sb.clock.advance(hours=1)  # the review approves
        call("/get-loan-contract")
        call("/get-approval-result")
        call("/push-order-confirm")
        sb.clock.advance(hours=1)  # the payout
        assert sb.order(order.order_no)["status"] == 170
        for path in ("/get-order-status", "/get-repay-plan", "/get-repay-detail"):
            call(path)
        for path in ("/get-delay-list", "/get-delay-interest", "/get-delay-detail"):
            call(path)
    return out


@pytest.mark.parametrize("path", sorted(BUDGET))
def test_a_request_stays_within_its_sql_budget(measured: dict[str, Trace], path: str) -> None:
    statements, transactions = BUDGET[path]
    trace = measured[path]
    listing = "\n".join(s[:160] for s in trace.statements)
    assert trace.commits <= transactions, f"{path}: {trace.commits} transactions"
    assert len(trace.statements) <= statements, (
        f"{path}: {len(trace.statements)} statements (budget {statements}):\n{listing}"
    )


def test_a_clock_advance_reads_per_batch_not_per_order() -> None:
    """Ten loans paid out by one advance need the reads one does: the due events fire in one
    batch, which reads what they need (orders, accounts, codes) for all its orders at once.
    Writes are a row each, batched per table by the unit."""
    reads = []
    for loans in (1, 10):
        with Sandbox() as sb:
            client = sb.client()
            orders = [sb.sample_order() for _ in range(loans)]
            for order in orders:
                for path in ("/push-basic-info", "/push-supplement-info", "/push-bind-bank"):
                    assert client.call(path.strip("/"), order.payloads()[path])["code"] == 0
            sb.clock.advance(hours=1)  # every review approves
            for order in orders:
                assert client.call("push-order-confirm", order.confirm())["code"] == 0
            with traced(sb) as trace:  # the advance itself, without delivering its callbacks
                control.advance_clock(sb.lender, "demo", 3600)
            assert {sb.order(o.order_no)["status"] for o in orders} == {170}
            reads.append([s for s in trace.statements if s.startswith("SELECT")])
    one, ten = reads
    assert len(ten) == len(one), "\n".join(ten)
