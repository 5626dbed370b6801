"""`sandbox.callbacks.deliver_to(app)` (sandbox/harness/delivery.py): callbacks into the
aggregator's own app — ASGI, WSGI or an httpx client — whose answer is the acknowledgement.

The apps here are what a team writes: a callback route that decrypts the envelope with the
partner's key, keeps what it learnt, and answers `code` 0 (or refuses).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from sandbox.core.crypto import Codec
from sandbox.services.deliveries import list_deliveries
from sandbox.testing import Sandbox, Template

ACK = {"code": 0, "message": "success", "data": {}}
BASE = "https://lender.example.id"


class Receiver:
    """What the team's handler does, shared by the ASGI and WSGI apps below: decrypt, keep,
    answer. `refuse` answers code 1 that many times first; `crash` raises that many times."""

    def __init__(self, sb: Sandbox):
        c = sb.partner
        self.codec = Codec(c.aes_key, c.aes_iv)
        self.seen: list[tuple[str, dict]] = []
        self.loops: list[asyncio.AbstractEventLoop | None] = []
        self.threads: list[int] = []
        self.refuse = self.crash = 0

    def handle(self, path: str, raw: bytes) -> dict:
        doc = json.loads(raw)
        body = self.codec.decrypt_json(doc["encode_data"])
        self.seen.append((path, body))
        self.threads.append(threading.get_ident())
        if self.crash:
            self.crash -= 1
            raise RuntimeError("the database is locked")
        if self.refuse:
            self.refuse -= 1
            return {"code": 1, "message": "try again", "data": {}}
        return ACK

    def statuses(self, name: str = "callback-order-status") -> list[int]:
        return [b["order_status"] for p, b in self.seen if p.endswith(name)]


def asgi_app(receiver: Receiver) -> Starlette:
    async def hook(request: Request) -> JSONResponse:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        receiver.loops.append(loop)
        return JSONResponse(receiver.handle(request.url.path, await request.body()))

    return Starlette(routes=[Route("/lender/{name}", hook, methods=["POST"])])


def wsgi_app(receiver: Receiver) -> Callable[..., Any]:
    def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        out = json.dumps(receiver.handle(environ["PATH_INFO"], raw)).encode()  # may raise
        start_response("200 OK", [("Content-Type", "application/json")])
        return [out]

    return app


def apply(sb: Sandbox, scenario: str = "approve"):
    loan = sb.sample_order(scenario=scenario)
    api = sb.client()
    api.data("push-basic-info", loan.basic_info())
    api.data("push-supplement-info", loan.supplement_info())  # callback 19: 90
    return loan


def deliveries(sb: Sandbox, order_no: str) -> list[tuple[str, str, int]]:
    return [(c["path"], c["state"], c["attempts"]) for c in sb.order(order_no)["callbacks"]]


def attempts(sb: Sandbox, order_no: str) -> list[tuple[int | None, str]]:
    """(HTTP status, why it was not an acknowledgement) of each attempt of the first delivery."""
    first = list_deliveries(sb.lender, "demo", order_no)[0]
    return [(a["status_code"], a["error"]) for a in first["attempt_log"]]


@pytest.fixture
def receiver(sb) -> Receiver:
    return Receiver(sb)


# ---- the app's answer is the acknowledgement ----


@pytest.mark.parametrize("kind", ["asgi", "wsgi", "testclient"])
def test_the_app_receives_every_callback_decrypted(sb, receiver, kind):
    target: Any = {"asgi": asgi_app, "wsgi": wsgi_app}.get(kind, asgi_app)(receiver)
    if kind == "testclient":
        target = TestClient(target)
    sb.callbacks.deliver_to(target, prefix="/lender")
    loan = apply(sb)
    sb.clock.advance(minutes=5)  # approved: 19 (100) and 20
    assert receiver.statuses() == [90, 100]
    approval = [b for p, b in receiver.seen if p == "/lender/callback-approval-result"]
    assert approval[0]["approval_amount"] == loan.amount
    assert all(state == "delivered" for _, state, _ in deliveries(sb, loan.order_no))
    # the sink still tells what the lender pushed, and what the app made of it
    assert sb.callbacks.received("callback-order-status") == [
        b for p, b in receiver.seen if p.endswith("order-status")
    ]
    assert {r.path for r in sb.callbacks.records()} == {
        "/lender/callback-order-status",
        "/lender/callback-approval-result",
    }


@pytest.mark.parametrize("make", [asgi_app, wsgi_app])
def test_a_refusal_is_retried_on_the_delivery_schedule(sb, receiver, make):
    """The app refuses once; after a minute on the partner's clock it has the callback twice
    and the delivery is delivered (whether the retry came at once or with the clock)."""
    sb.callbacks.deliver_to(make(receiver), prefix="/lender")
    receiver.refuse = 1
    loan = apply(sb)
    sb.clock.advance(minutes=1)
    assert receiver.statuses() == [90, 90]
    assert deliveries(sb, loan.order_no) == [("/callback-order-status", "delivered", 2)]
    outcomes = [r.outcome for r in sb.callbacks.records("callback-order-status")]
    assert outcomes == ["failed", "ok"]
    assert attempts(sb, loan.order_no) == [(200, "code 1: try again"), (200, "")]


@pytest.mark.parametrize("make", [asgi_app, wsgi_app])
def test_an_app_that_raises_answers_500_and_is_retried(sb, receiver, make, caplog):
    sb.callbacks.deliver_to(make(receiver), prefix="/lender")
    receiver.crash = 1
    with caplog.at_level(logging.ERROR, logger="sandbox.delivery"):
        loan = apply(sb)
        sb.clock.advance(minutes=1)
    assert receiver.statuses() == [90, 90]
    assert deliveries(sb, loan.order_no) == [("/callback-order-status", "delivered", 2)]
    assert [r.status for r in sb.callbacks.records()] == [500, 200]
    assert attempts(sb, loan.order_no) == [(500, "HTTP 500"), (200, "")]
    # the traceback is in the log, as a server would write it
    assert "RuntimeError: the database is locked" in caplog.text


def test_fail_next_refuses_in_front_of_the_app(sb, receiver):
    sb.callbacks.deliver_to(asgi_app(receiver), prefix="/lender")
    sb.callbacks.fail_next(1)
    loan = apply(sb)
    sb.clock.advance(minutes=1)
    assert receiver.statuses() == [90]  # the refused attempt never reached the app
    assert deliveries(sb, loan.order_no) == [("/callback-order-status", "delivered", 2)]


def test_a_hanging_sink_times_out_without_calling_the_app(sb, receiver):
    sb.callbacks.deliver_to(asgi_app(receiver), prefix="/lender")
    sb.callbacks.hang()
    loan = apply(sb)
    assert receiver.seen == []
    assert {r.outcome for r in sb.callbacks.records()} == {"hung"}
    assert attempts(sb, loan.order_no)[0] == (
        None,
        "TimeoutError: no answer within 5.0s (the sink is hanging)",
    )


def test_an_app_that_never_answers_is_a_timed_out_attempt(receiver):
    template = Template(overrides={"callbacks": {"timeout": 0.2, "max_attempts": 1}})
    with Sandbox(template) as sb:

        async def stuck(request: Request) -> JSONResponse:
            await asyncio.sleep(5)
            return JSONResponse(ACK)

        sb.callbacks.deliver_to(
            Starlette(routes=[Route("/lender/{n}", stuck, methods=["POST"])]), prefix="/lender"
        )
        loan = apply(sb)
        (delivery,) = list_deliveries(sb.lender, "demo", loan.order_no)
    template.close()
    assert delivery["state"] == "dead" and delivery["last_error"].startswith("TimeoutError")


def test_wsgi_apps_run_on_the_tests_thread(sb, receiver):
    """A sync test's thread-local state (Django's database connection) is the app's too."""
    sb.callbacks.deliver_to(wsgi_app(receiver), prefix="/lender")
    apply(sb)
    assert receiver.threads == [threading.get_ident()]


def test_a_full_url_prefix_and_closing(sb, receiver):
    with sb.callbacks.deliver_to(asgi_app(receiver), prefix="http://aggregator.test/lender/"):
        apply(sb)
    assert receiver.statuses() == [90]
    sb.clock.advance(minutes=5)  # after the block the sink records, the app hears nothing
    assert receiver.statuses() == [90]
    assert [b["order_status"] for b in sb.callbacks.received("callback-order-status")] == [90, 100]


# ---- which event loop runs an ASGI app ----


def test_async_tests_run_the_app_on_their_own_loop(sb, receiver):
    """Caused on the test's loop (the app's own async client) or from a thread: the app runs
    on the test's loop. A sync call that blocks the loop still delivers, on a helper loop."""
    app = asgi_app(receiver)
    c = sb.partner
    codec = Codec(c.aes_key, c.aes_iv)

    def env(payload: dict) -> dict:
        return {"partner_token": c.partner_token, "encode_data": codec.encrypt_json(payload)}

    async def test() -> list[tuple[int, bool]]:
        home = asyncio.get_running_loop()
        sb.callbacks.deliver_to(app, prefix="/lender")
        loan = sb.sample_order(scenario="approve")
        with sb.intercept(BASE):
            async with httpx.AsyncClient(base_url=BASE) as client:
                await client.post("/push-basic-info", json=env(loan.basic_info()))
                await client.post("/push-supplement-info", json=env(loan.supplement_info()))
        await asyncio.to_thread(sb.clock.advance, minutes=5)  # 19 (100) and 20, from a thread
        sb.transition(loan.order_no, "cancel")  # 19 (161): a sync call, blocking the loop
        return [
            (b["order_status"], loop is home)
            for (p, b), loop in zip(receiver.seen, receiver.loops, strict=True)
            if p.endswith("status")
        ]

    assert asyncio.run(test()) == [(90, True), (100, True), (161, False)]
    assert receiver.loops[0] is not None


def test_a_home_loop_blocked_unannounced_does_not_deadlock(sb, receiver, monkeypatch):
    """The test's loop waits, synchronously, for a thread whose delivery wants that loop: the
    handoff gives up after HANDOFF_SECONDS and the thread's own loop runs the app."""
    monkeypatch.setattr("sandbox.harness.delivery.HANDOFF_SECONDS", 0.05)
    app = asgi_app(receiver)

    async def test() -> float:
        sb.callbacks.deliver_to(app, prefix="/lender")
        worker = threading.Thread(target=apply, args=(sb,))
        started = time.perf_counter()
        worker.start()
        worker.join(10)  # blocks the loop without telling the sandbox
        return time.perf_counter() - started

    assert asyncio.run(test()) < 5  # not a deadlock broken by join's timeout
    assert receiver.statuses() == [90]
    assert receiver.threads != [threading.get_ident()]


# ---- bad input ----


def test_deliver_to_needs_an_app(sb):
    with pytest.raises(TypeError, match=r"ASGI app .* WSGI app"):
        sb.callbacks.deliver_to("http://aggregator.test")


@pytest.mark.parametrize("prefix", ["lender", "ftp://x/lender"])
def test_a_prefix_is_a_path_or_a_url(sb, receiver, prefix):
    with pytest.raises(ValueError, match="prefix is a path"):
        sb.callbacks.deliver_to(asgi_app(receiver), prefix=prefix)


def test_a_client_without_base_url_needs_a_full_prefix(sb):
    with httpx.Client() as client, pytest.raises(ValueError, match="no base_url"):
        sb.callbacks.deliver_to(client, prefix="/lender")
