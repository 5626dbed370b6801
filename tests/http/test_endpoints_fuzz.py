"""Many malformed payloads at every endpoint: always HTTP 200, a catalog code, never a 500.

For each endpoint a valid payload is taken (against an order in a state where the endpoint
works), then every field of it — leaves and containers — is replaced by each of a set of
hostile values, or removed. Whatever the answer, it must be the protocol envelope with HTTP
200, never code 10099 (a sandbox bug) and never traceback text. Values that cannot be valid
for a field (a container for a scalar, a scalar for a container, null for a required field)
must get a non-zero code.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import (
    SUFFIX,
    Loan,
    Sandbox,
    basic_payload,
    bind_payload,
    confirm_payload,
    person,
    repay_payload,
    supplement_payload,
)

from sandbox.core.errors import BY_CODE

HOSTILE: list[Any] = [
    None,
    "",
    [{"a": [1]}],
    {"$gt": ""},
    True,
    -1.5,
    10**20,
    "８１２３４５６７８９' OR 1=1 --\u0000\u202e" + "x" * 300,
]
NESTED: list[Any] = [None, {"$gt": ""}, "x" * 300]
# Fields that may be absent or null, or take any JSON (device_info); nothing else may be null.
NULLABLE = {
    "device_ip",
    "is_reloan",
    "is_charge",
    "birthday",
    "face_photo_image",
    "pass_face_photo",
    "same_person",
    "confidence_score",
    "company",
    "district",
    "village",
    "detail_address",
    "device_info",
    "delay_term",
}
ANY_JSON = {"device_info"}
LISTS = {"face_photo_image", "emergs"}
OBJECTS = {"basic_info", "order_info", "supplement_info", "area", "device_info"}


def paths(doc: Any, prefix: tuple = ()) -> Iterator[tuple]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield (*prefix, k)
            yield from paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:1]):  # the first element stands for the others
            yield (*prefix, i)
            yield from paths(v, (*prefix, i))


def mutate(doc: dict, path: tuple, value: Any, *, delete: bool = False) -> dict:
    out = copy.deepcopy(doc)
    target = out
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


def leaf_name(path: tuple) -> str:
    return next(str(p) for p in reversed(path) if not isinstance(p, int))


def surely_invalid(path: tuple, value: Any, endpoint: str) -> bool:
    name = leaf_name(path)
    if name in ANY_JSON or (isinstance(path[-1], int) and name == "face_photo_image"):
        return False
    if endpoint == "/push-supplement-info" and path[0] == "order_info" and name != "order_no":
        return isinstance(value, (dict, list))
    optional = (
        name in NULLABLE
        or (endpoint == "/get-loan-precheck" and name == "user_name")
        or (endpoint in ("/get-loan-amount", "/get-loan-interest") and name == "user_idcard")
    )
    if value is None:
        return not optional or name == "is_reloan"
    if isinstance(value, dict):
        return name not in OBJECTS
    if isinstance(value, list):
        return name not in LISTS
    return name in OBJECTS or name in LISTS


def active_order(sb: Sandbox, seed: str, *, state: str) -> Loan:
    o = Loan(sb, person(seed, SUFFIX["approve"]), f"ORD-FUZZ-{seed.upper()}")
    o.create()
    if state in ("90", "100", "170"):
        o.submit()
    if state in ("100", "170"):
        o.bind().review()
    if state == "170":
        o.confirm().payout()
    return o


def order_q(o: Loan, **extra: Any) -> dict:
    return o.q(**extra)


# endpoint -> (state of the order it needs, valid payload builder)
CASES: dict[str, tuple[str | None, Callable[[Loan | None, Any], dict]]] = {
    "/get-loan-precheck": (
        None,
        lambda o, p: {
            "product_id": "1001",
            "user_mobile": p.mobile,
            "user_idcard": p.nik,
            "user_name": p.name,
        },
    ),
    "/get-loan-amount": (
        None,
        lambda o, p: {"product_id": "1001", "user_mobile": p.mobile, "user_idcard": p.nik},
    ),
    "/get-loan-interest": (
        None,
        lambda o, p: {
            "product_id": "1001",
            "user_mobile": p.mobile,
            "user_idcard": p.nik,
            "application_amount": 1000000,
            "application_term": 14,
            "term_unit": 1,
        },
    ),
    "/push-basic-info": (None, lambda o, p: basic_payload(p, "ORD-FUZZ-BASIC-1")),
    "/push-supplement-info": ("80", lambda o, p: supplement_payload(o.p, o.order_no)),
    "/get-bank-list": (None, lambda o, p: {"action_type": 2, "product_id": "1001"}),
    "/push-bind-bank": ("80", lambda o, p: bind_payload(o.p, o.order_no)),
    "/get-bind-bank": ("80", lambda o, p: order_q(o)),
    "/get-loan-contract": ("80", lambda o, p: order_q(o)),
    "/push-order-confirm": ("100", lambda o, p: confirm_payload(o.order_no, 1_000_000, 14)),
    "/get-order-status": ("80", lambda o, p: order_q(o)),
    "/get-approval-result": ("100", lambda o, p: order_q(o)),
    "/get-repay-plan": ("170", lambda o, p: order_q(o)),
    "/get-repay-detail": (
        "170",
        lambda o, p: repay_payload(o.order_no, repay_type=2, delay_term=7),
    ),
    "/get-delay-list": ("170", lambda o, p: order_q(o)),
    "/get-delay-interest": ("170", lambda o, p: order_q(o, delay_term=14)),
    "/get-delay-detail": ("170", lambda o, p: order_q(o)),
}


def check(doc_or_response: Any) -> dict:
    r = doc_or_response
    assert r.status_code == 200, r.text
    assert "Traceback" not in r.text and "Error:" not in r.text.split("message", 1)[0]
    doc = r.json()
    assert isinstance(doc["code"], int)
    assert doc["code"] != 10099, doc  # "internal": a sandbox bug
    assert doc["code"] == 0 or doc["code"] in BY_CODE, doc
    if doc["code"]:
        assert doc["data"] == {}, doc
    return doc


@pytest.mark.parametrize("endpoint", sorted(CASES))
def test_hostile_values_never_break_an_endpoint(sandbox: Sandbox, endpoint: str) -> None:
    state, build = CASES[endpoint]
    o = (
        active_order(sandbox, "f" + endpoint.strip("/").replace("-", "")[:12], state=state)
        if state
        else None
    )
    valid = build(o, person("fuzz-" + endpoint))
    seen: dict[int, int] = {}
    for path in list(paths(valid)):
        values = HOSTILE if len(path) <= 2 else NESTED  # fewer values deep down: time
        variants = [(v, False) for v in values] + [(None, True)]
        for value, delete in variants:
            payload = mutate(valid, path, value, delete=delete)
            doc = check(sandbox.post(endpoint, sandbox.envelope(payload)))
            seen[doc["code"]] = seen.get(doc["code"], 0) + 1
            if not delete and surely_invalid(path, value, endpoint):
                assert doc["code"] != 0, (path, value, doc)
    assert set(seen) - {0}, seen  # the endpoint did refuse something


@pytest.mark.parametrize("endpoint", sorted(CASES))
def test_hostile_envelopes_and_payload_types(sandbox: Sandbox, endpoint: str) -> None:
    bodies: list[Any] = [
        b"",
        b"{",
        b"[]",
        b'{"partner_token": null, "encode_data": null}',
        b'{"partner_token": "demo", "encode_data": "' + b"A" * 64 + b'"}',
        {"partner_token": "demo", "encode_data": "\u00e9\u00e9\u00e9\u00e9===="},
        {"partner_token": ["demo"], "encode_data": 12345},
        "\ud800".encode("utf-8", "surrogatepass"),
    ]
    for plain in [
        "[]",
        "null",
        "{}",
        '{"product_id": {"nested": {"deep": [' * 50,
        json.dumps({"product_id": "1001", "order_no": None}),
        '{"a": NaN}',
    ]:
        bodies.append(sandbox.envelope({}) | {"encode_data": sandbox.codec.encrypt_text(plain)})
    for body in bodies:
        doc = check(sandbox.post(endpoint, body))
        assert doc["code"] != 0, body


def test_deeply_nested_payload(sandbox: Sandbox) -> None:
    deep: Any = "x"
    for _ in range(400):
        deep = {"a": deep}
    doc = check(sandbox.post("/push-basic-info", sandbox.envelope({"basic_info": deep})))
    assert doc["code"] in (10006, 10007)
