"""Bad input on PostgreSQL, where a value that does not fit its column is an error SQLite
never raises (VARCHAR lengths, 32-bit Integer): the issue's PostgreSQL-only reproducers,
and a shorter run of the fuzz suite (tests/fuzz) against a fresh schema.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))

import fuzzkit
import test_fuzz_control as control_fuzz
import test_fuzz_lender as lender_fuzz
from hypothesis import given
from hypothesis import strategies as st
from test_known_bad_input import DASHBOARD, dashboard_request
from test_postgres import pg_url  # noqa: F401  (the fixture: a fresh schema)

from sandbox.core.protocol import CALLBACK_URL_MAX, SPECS, Spec
from sandbox.harness.sink import MemorySink
from sandbox.services import outbox
from sandbox.web.control import ROUTES, ControlRoute

pytestmark = pytest.mark.postgres
TOKEN = fuzzkit.TOKEN


@pytest.fixture(scope="module")
def world(pg_url: str) -> Iterator[fuzzkit.World]:  # noqa: F811
    yield from fuzzkit.make_world(pg_url)


def _patch(world: fuzzkit.World, body: dict) -> object:
    return world.client.patch(f"/sandbox/partners/{TOKEN}", json=body)


def test_a_callback_url_longer_than_its_limit_is_refused(world: fuzzkit.World) -> None:
    for length in (CALLBACK_URL_MAX + 1, 493, 620):
        r = _patch(world, {"callback_url": "http://x.test/" + "a" * (length - 14)})
        assert r.status_code == 400, r.text
        assert f"at most {CALLBACK_URL_MAX} characters" in r.json()["message"]


def test_the_longest_callback_url_is_delivered_and_its_attempts_recorded(
    world: fuzzkit.World,
) -> None:
    """475 characters + the longest callback path fit the attempt log's VARCHAR(500)."""
    url = "http://x.test/" + "a" * (CALLBACK_URL_MAX - 14)
    assert _patch(world, {"callback_url": url}).status_code == 200
    o = world.order("pg-long-url", "approve")
    world.call("/push-basic-info", o.basic_info())
    world.call("/push-supplement-info", o.supplement_info())
    world.wall.t += 3600
    sink = MemorySink()
    sink.add_partner(TOKEN, fuzzkit.KEY, fuzzkit.IV)
    assert outbox.deliver_now(world.lender, sink) >= 2
    rows = world.client.get(f"/sandbox/callbacks?order_no={o.order_no}").json()
    attempts = [a for row in rows for a in row["attempt_log"]]
    assert attempts and all(a["url"].startswith(url + "/callback-") for a in attempts)
    assert all(row["state"] == "delivered" for row in rows), rows


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"trigger": "approve", "amount": 2**40}, 400, "amount must be an integer 1-2147483647"),
        ({"trigger": "approve", "amount": 2**31}, 400, "amount"),
        ({"trigger": "reject", "reason": "r" * 300}, 400, "reason must be a string of 1-200"),
        ({"trigger": "fail_payout", "reason": "r" * 201}, 400, "reason"),
    ],
)
def test_a_forced_transition_beyond_a_column_is_refused(
    world: fuzzkit.World, body: dict, status: int, says: str
) -> None:
    order_no = world.orders["90"].order_no
    r = world.client.post(
        f"/sandbox/orders/{order_no}/transition", json={"partner_token": TOKEN, **body}
    )
    assert r.status_code == status and says in r.json()["message"], r.text


def test_the_largest_amounts_a_model_allows_are_stored(world: fuzzkit.World) -> None:
    """The limits are not only refusals: the edge values themselves fit PostgreSQL."""
    o = world.order("pg-big-approve", "review_stuck")
    world.call("/push-basic-info", o.basic_info())
    world.call("/push-supplement-info", o.supplement_info())
    r = world.client.post(
        f"/sandbox/orders/{o.order_no}/transition",
        json={"partner_token": TOKEN, "trigger": "approve", "amount": 2**31 - 1},
    )
    assert r.status_code == 200, r.text
    assert r.json()["approved_amount"] == 2**31 - 1
    reason = "r" * 200
    stuck = world.order("pg-long-reason", "review_stuck")
    world.call("/push-basic-info", stuck.basic_info())
    world.call("/push-supplement-info", stuck.supplement_info())
    r = world.client.post(
        f"/sandbox/orders/{stuck.order_no}/transition",
        json={"partner_token": TOKEN, "trigger": "reject", "reason": reason},
    )
    assert r.status_code == 200, r.text


def test_lone_surrogates_and_deep_device_info_leave_the_journal_readable(
    world: fuzzkit.World,
) -> None:
    bad_token = fuzzkit.dumps({"partner_token": "\udfff", "encode_data": "abc"}).encode()
    assert fuzzkit.check_envelope(world.post("/get-order-status", bad_token), "")["code"] == 10001
    payload = world.orders["80"].basic_info() | {"extra": "\ud800"}
    doc = fuzzkit.check_envelope(world.post("/push-basic-info", world.envelope(payload)), "")
    assert doc["code"] == 10007
    o = world.order("pg-deep-device", "review_stuck")
    world.call("/push-basic-info", o.basic_info())
    supplement = o.supplement_info()
    supplement["supplement_info"]["device_info"] = fuzzkit.nest(62, "dict")
    world.call("/push-supplement-info", supplement)  # stored on PostgreSQL's JSON column
    fuzzkit.check_readable(world)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.number}{s.path}")
def test_a_lender_endpoint_on_postgresql(world: fuzzkit.World, spec: Spec) -> None:
    @fuzzkit.examples(12)
    @given(body=lender_fuzz.bodies(world, spec))
    def one(body: bytes) -> None:
        fuzzkit.check_envelope(world.post(spec.path, body), f"{spec.path} {body[:400]!r}")

    one()
    fuzzkit.check_readable(world)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_a_control_route_on_postgresql(world: fuzzkit.World, route: ControlRoute) -> None:
    values = control_fuzz.path_values(world)
    names = control_fuzz.PARAM.findall(route.path)

    @fuzzkit.examples(10)
    @given(
        params=st.fixed_dictionaries({name: values[name] for name, _ in names}),
        q=control_fuzz.query(route) if route.query else st.just({}),
        raw=control_fuzz.body(route),
    )
    def one(params: dict[str, str], q: dict[str, str], raw: bytes | None) -> None:
        target = control_fuzz.url(route, params, q)
        headers = {"content-type": "application/json"}
        r = world.client.request(route.method, target, content=raw, headers=headers)
        control_fuzz.check_answer(route, r, f"{target[:300]} {(raw or b'')[:300]!r}")

    one()
    fuzzkit.check_readable(world)


@pytest.mark.parametrize(
    ("method", "url", "form"),
    [
        *DASHBOARD,
        ("GET", "/dashboard?status=3000000000", None),  # past PostgreSQL's Integer
        ("GET", "/dashboard/orders/ORD-X-0000001?partner=%00", None),  # no NUL in a lookup
        ("POST", "/dashboard/do/pay", {"repay_code": "x\x00"}),
        ("POST", "/dashboard/do/delete_fault", {"id": str(2**31)}),
    ],
)
def test_a_dashboard_reproducer_on_postgresql(
    world: fuzzkit.World, method: str, url: str, form: dict[str, str] | None
) -> None:
    r = dashboard_request(world, method, url, form)
    assert r.status_code < 500, r.text[:300]
