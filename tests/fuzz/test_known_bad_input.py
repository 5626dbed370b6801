"""The one-request reproducers of bad input that reached an internal error (issue "shared
staging"), kept as cases the random fuzz might not draw on a given run: each must now get a
clear refusal naming what is wrong, and the journal must still read afterwards.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fuzzkit import (
    HUGE,
    TOKEN,
    World,
    check_control_error,
    check_envelope,
    check_readable,
    make_world,
    nest,
)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    yield from make_world()


def raw(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # lone surrogates escaped, as a client sends them


# (method, url, body, HTTP status, a fragment of the message)
CONTROL: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/sandbox/reset", {"partner_token": ["demo"]}, 400, "partner_token"),
    ("POST", "/sandbox/reset", {"partner_token": "\ud800"}, 400, "partner_token contains a lone"),
    ("POST", "/sandbox/reset", {"partner_token": HUGE}, 400, "partner_token"),
    ("POST", "/sandbox/payments", {"repay_code": "\ud800"}, 400, "repay_code contains a lone"),
    ("POST", "/sandbox/payments", {"repay_code": "X", "amount": HUGE}, 400, "amount"),
    ("POST", "/sandbox/payments", {"repay_code": [1]}, 400, "repay_code"),
    ("POST", "/sandbox/partners", {"name": "\udfff"}, 400, "name contains a lone"),
    ("POST", "/sandbox/partners", {"\ud800": 1}, 400, "has a key that contains a lone"),
    ("POST", "/sandbox/partners", {"partner_token": [{}]}, 400, "partner_token"),
    ("POST", "/sandbox/tools/encrypt", {"partner_token": TOKEN, "data": "\ud800"}, 400, "data"),
    ("POST", "/sandbox/tools/encrypt", {"partner_token": TOKEN, "data": nest(600, "list")}, 400,
     "data is nested deeper than 64"),
    ("POST", "/sandbox/tools/decrypt", {"partner_token": TOKEN, "encode_data": HUGE}, 400,
     "encode_data"),
    ("POST", f"/sandbox/partners/{TOKEN}/clock/advance", {"seconds": HUGE}, 400, "too large"),
    ("POST", f"/sandbox/partners/{TOKEN}/clock/advance", {"by": "9" * 400}, 400, "too large"),
    ("PATCH", f"/sandbox/partners/{TOKEN}", {"chaos": {"delay": HUGE}}, 400, "delay"),
    ("PATCH", f"/sandbox/partners/{TOKEN}", {"chaos": {"delay": [0, HUGE]}}, 400, "delay"),
    ("GET", "/sandbox/orders?partner_token=", None, 200, ""),
    ("GET", "/sandbox/journal?partner_token=&path=", None, 200, ""),
    ("GET", "/sandbox/callbacks?order_no=", None, 200, ""),
    ("GET", "/sandbox/orders?status=" + "1" * 30, None, 400, "status"),
    # NUL: PostgreSQL cannot store or look it up (found by the PostgreSQL fuzz)
    ("GET", "/sandbox/partners/%00", None, 404, "nothing has a token that contains a NUL"),
    ("GET", "/sandbox/partners/a%00/postman.json", None, 404, "nothing has a token"),
    ("GET", "/sandbox/orders?partner_token=%00", None, 400, "query parameter partner_token"),
    ("POST", "/sandbox/partners", {"name": "a\u0000"}, 400, "name contains a NUL"),
    # ids beyond PostgreSQL's Integer
    ("GET", f"/sandbox/journal/{2**31}", None, 404, "no journal entry with id 2147483648"),
    ("GET", f"/sandbox/callbacks/{2**31}", None, 404, "no callback delivery with id"),
    ("POST", f"/sandbox/callbacks/{2**63}/redeliver", None, 404, "no callback delivery with id"),
    ("DELETE", f"/sandbox/faults?id={2**31}", None, 400, "id must be an integer 1-2147483647"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "url", "body", "status", "says"), CONTROL)
def test_a_control_reproducer_is_refused_clearly(
    world: World, method: str, url: str, body: Any, status: int, says: str
) -> None:
    json_type = {"content-type": "application/json"}  # what a client of the API sends
    r = world.client.request(
        method, url, content=None if body is None else raw(body), headers=json_type
    )
    assert r.status_code == status, r.text
    if status >= 400:
        assert says in check_control_error(r, url)["message"]
    check_readable(world)


def test_a_lone_surrogate_as_partner_token_is_refused_and_journaled(world: World) -> None:
    body = raw({"partner_token": "\udfff", "encode_data": "abc"})
    doc = check_envelope(world.post("/get-order-status", body), "surrogate token")
    assert doc["code"] == 10001 and "partner_token contains a lone" in doc["message"]
    entry = world.client.get("/sandbox/journal?limit=1").json()[0]
    assert (entry["path"], entry["partner_token"], entry["code"]) == (
        "/get-order-status",
        "",
        10001,
    )


@pytest.mark.parametrize(
    ("where", "value", "says"),
    [
        (("product_id",), "\ud800", "product_id contains a lone UTF-16 surrogate"),
        (("order_info", "user_name"), "a\udbffz", "order_info.user_name contains a lone"),
        (("extra", "deep"), "\udc00", "extra.deep contains a lone"),
        (("device_ip",), nest(600, "list"), "device_ip is nested deeper than 64 levels"),
        (("basic_info", "religion"), "\u0000", "basic_info.religion contains a NUL"),
    ],
)
def test_a_bad_payload_value_is_refused_naming_its_field(
    world: World, where: tuple[str, ...], value: Any, says: str
) -> None:
    payload = world.orders["80"].basic_info()
    target = payload
    for key in where[:-1]:
        target = target.setdefault(key, {})
    target[where[-1]] = value
    doc = check_envelope(world.post("/push-basic-info", world.envelope(payload)), "payload")
    assert doc["code"] == 10007 and says in doc["message"], doc
    check_readable(world)


@pytest.mark.parametrize("depth", [63, 64, 300, 600])
def test_device_info_nested_deep_is_refused_or_kept(world: World, depth: int) -> None:
    """06's free-form device_info: nested within the limit it is stored; deeper, refused."""
    o = world.orders["80"]
    payload = o.supplement_info()
    payload["supplement_info"]["device_info"] = nest(depth, "list")
    doc = check_envelope(world.post("/push-supplement-info", world.envelope(payload)), "06")
    if depth + 2 <= 64:  # device_info sits two levels down
        assert doc["code"] in (0, 11002), doc
    else:
        assert doc["code"] == 10007, doc
        assert "supplement_info.device_info is nested deeper than 64 levels" in doc["message"]
    check_readable(world)


@pytest.mark.parametrize(
    ("page", "method"), [("contract", "GET"), ("repay", "GET"), ("repay", "POST")]
)  # the contract page is read-only
def test_a_non_ascii_signature_is_a_bad_link(world: World, page: str, method: str) -> None:
    order_no = world.orders["170"].order_no
    for link in (f"{TOKEN}/{order_no}?sig=%C3%A9%ED%A0%80", f"{TOKEN}%00/{order_no}?sig=a"):
        r = world.client.request(method, f"/{page}/{link}")
        assert r.status_code == 404 and "tidak valid" in r.text


# (method, url, form): each answered HTTP 500 (found by the fuzz; the first two by the issue;
# PostgreSQL's own are in tests/postgres/test_postgres_fuzz.py)
DASHBOARD: list[tuple[str, str, dict[str, str] | None]] = [
    ("GET", "/dashboard?partner=nobody", None),  # ControlError unknown_partner not caught
    ("GET", "/dashboard?status=" + "1" * 30, None),  # OverflowError: beyond SQLite INTEGER
    ("GET", "/dashboard?status=" + "9" * 20, None),  # the same, just past 64 bits
    ("GET", "/dashboard?partner=%00", None),  # unknown partner; PostgreSQL cannot even look
    ("GET", "/dashboard?partner=%ED%A0%80", None),  # invalid UTF-8: read as U+FFFD, unknown
    ("GET", "/dashboard?status=%C2%B2", None),  # "²".isdigit(), yet int() refuses it
    ("GET", "/dashboard/orders/%00?partner=demo", None),
    ("POST", "/dashboard/do/advance", {"partner": "nobody", "by": "1d"}),
    ("POST", "/dashboard/do/advance", {"partner": "demo\x00", "by": "1d"}),
    ("POST", "/dashboard/do/redeliver", {"id": "9" * 19}),  # past the id column
]


@pytest.mark.parametrize(("method", "url", "form"), DASHBOARD)
def test_a_dashboard_reproducer_answers_a_page(
    world: World, method: str, url: str, form: dict[str, str] | None
) -> None:
    r = dashboard_request(world, method, url, form)
    assert r.status_code < 500, r.text[:300]


def dashboard_request(world: World, method: str, url: str, form: dict[str, str] | None) -> Any:
    """A dashboard page, or a form posted with the session's CSRF token (so its action runs),
    followed back to the page it returns to."""
    if form is not None:
        page = world.client.get("/dashboard").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf, "every dashboard form carries the session's CSRF token"
        form = {**form, "csrf": csrf.group(1)}
    return world.client.request(method, url, data=form, follow_redirects=True)
