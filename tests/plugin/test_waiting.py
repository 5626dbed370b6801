"""GET /sandbox/orders/{order_no}/wait (sandbox.waiting): a long poll that never blocks the loop.

Requests go through the real ASGI app with `httpx.ASGITransport`, concurrently in one event
loop: while a wait is pending, other requests (a forced transition, a callback flush) are
served, which is what proves the wait does not block.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from sandbox.core.control_models import MAX_WAIT, WaitQuery
from sandbox.core.control_parsing import parse
from sandbox.services import control, outbox
from sandbox.web.app import create_app

WAIT = "/sandbox/orders/{}/wait"


def submitted(sb, scenario="approve"):
    """An order under review (90); the in-process sandbox delivered its callback."""
    loan = sb.sample_order(scenario=scenario)
    sb.client().data("push-basic-info", loan.basic_info())
    sb.client().data("push-supplement-info", loan.supplement_info())
    return loan.order_no


def run(sb, *requests):
    """Send (method, path, params/json) requests concurrently; (seconds, response) each."""

    async def one(client, method, path, extra):
        start = time.perf_counter()
        key = "params" if method == "GET" else "json"
        r = await client.request(method, path, **{key: extra})
        return time.perf_counter() - start, r

    async def main():
        transport = httpx.ASGITransport(app=create_app(lender=sb.lender, background=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await asyncio.gather(*(one(client, *r) for r in requests))

    return asyncio.run(main())


def test_returns_at_once_when_reached(sb):
    order_no = submitted(sb)
    [(seconds, r)] = run(
        sb, ("GET", WAIT.format(order_no), {"partner_token": "demo", "status": "90"})
    )
    assert r.status_code == 200 and seconds < 2  # not the 10 s default timeout
    body = r.json()
    assert (body["reached"], body["status"], body["order_no"]) == (True, 90, order_no)


def test_waits_while_other_requests_move_the_order(sb):
    order_no = submitted(sb, "review_stuck")
    (waited, r), (_, forced) = run(
        sb,
        ("GET", WAIT.format(order_no), {"partner_token": "demo", "status": 100, "timeout": 5}),
        (
            "POST",
            f"/sandbox/orders/{order_no}/transition",
            {"partner_token": "demo", "trigger": "approve"},
        ),
    )
    assert forced.status_code == 200
    assert r.json()["reached"] is True and r.json()["status"] == 100
    assert waited < 4


def test_times_out_unreached(sb):
    order_no = submitted(sb)
    [(seconds, r)] = run(
        sb, ("GET", WAIT.format(order_no), {"partner_token": "demo", "status": 170, "timeout": 0.3})
    )
    assert r.status_code == 200 and r.json()["reached"] is False and r.json()["status"] == 90
    assert 0.3 <= seconds < 4


def test_waits_for_callbacks_to_be_acknowledged(sb):
    sb.update_partner(callbacks_paused=True)
    order_no = submitted(sb)  # its status callback waits in the outbox

    async def resume_and_deliver():
        await asyncio.sleep(0.2)  # let the wait start polling first
        control.update_partner(sb.lender, "demo", {"callbacks_paused": False})
        await outbox.flush_until_idle(sb.lender, sb.callbacks)

    async def main():
        transport = httpx.ASGITransport(app=create_app(lender=sb.lender, background=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            wait = client.get(
                WAIT.format(order_no),
                params={
                    "partner_token": "demo",
                    "status": 90,
                    "callback": "acknowledged",
                    "timeout": 5,
                },
            )
            r, _ = await asyncio.gather(wait, resume_and_deliver())
            return r

    assert asyncio.run(main()).json()["reached"] is True
    assert sb.callbacks.received("callback-order-status")[0]["order_no"] == order_no


def test_a_dead_callback_ends_the_wait(sb):
    sb.callbacks.fail_next(100)
    order_no = submitted(sb)  # refused until the retries run out
    assert sb.order(order_no)["callbacks"][0]["state"] == "dead"
    [(seconds, r)] = run(
        sb,
        (
            "GET",
            WAIT.format(order_no),
            {"partner_token": "demo", "callback": "acknowledged", "timeout": 5},
        ),
    )
    assert r.json()["reached"] is False and seconds < 4  # before the 5 s timeout


@pytest.mark.parametrize(
    "params, status, error",
    [
        ({"partner_token": "demo", "status": 90}, 404, "order_not_found"),
        ({"partner_token": "nobody", "status": 90}, 404, "unknown_partner"),
        ({"status": 90}, 400, "missing_field"),
        ({"partner_token": "demo"}, 400, "missing_field"),
        ({"partner_token": "demo", "status": "abc"}, 400, "invalid_field"),
        ({"partner_token": "demo", "status": 123}, 400, "invalid_field"),
        ({"partner_token": "demo", "status": 90, "callback": "sent"}, 400, "invalid_field"),
        ({"partner_token": "demo", "status": 90, "timeout": "-1"}, 400, "invalid_field"),
        ({"partner_token": "demo", "status": 90, "timeout": "soon"}, 400, "invalid_field"),
    ],
)
def test_refusals_are_json(sb, params, status, error):
    [(_, r)] = run(sb, ("GET", WAIT.format("NOSUCHORDER1"), params))
    assert r.status_code == status and r.json()["error"] == error and r.json()["message"]


def test_timeout_is_bounded():
    def timeout(value):
        return parse(
            WaitQuery, {"partner_token": "demo", "status": "170", "timeout": value}
        ).timeout

    assert timeout(None) == 10 and timeout("2.5") == 2.5 and timeout("3600") == MAX_WAIT
