"""Every route answers what the OpenAPI document says it answers.

The document is generated from the models; this test calls every control route, every
lender endpoint and looks at every callback body, and validates the real JSON against the
schema the document gives for it (JSON Schema 2020-12, undocumented keys refused). A route
added to the table without an entry in REQUESTS fails the coverage test.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import SUFFIX, TOKEN, Sandbox, repay_payload
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from route_calls import requests

from sandbox.core.protocol import SPECS
from sandbox.web import openapi
from sandbox.web.control import ROUTES


@pytest.fixture(scope="module")
def doc() -> dict:
    return openapi.build()


def _reroot(schema: Any) -> Any:
    """Point a schema's local refs ("#/components/...") at the registered document."""
    if isinstance(schema, dict):
        return {
            k: ("urn:openapi" + v if k == "$ref" and v.startswith("#/") else _reroot(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_reroot(v) for v in schema]
    return schema


def check(doc: dict, schema: dict, value: Any, where: str) -> None:
    """Validate `value` against `schema`, a schema of the document (refs resolve inside it)."""
    resource = Resource.from_contents(
        {**doc, "$schema": "https://json-schema.org/draft/2020-12/schema"}
    )
    registry = Registry().with_resource("urn:openapi", resource)
    validator = Draft202012Validator(_reroot(schema), registry=registry)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    assert not errors, f"{where}: {errors[0].message} at {list(errors[0].path)}"


def answer_schema(doc: dict, method: str, path: str) -> dict:
    op = doc["paths"][path][method.lower()]
    return op["responses"]["200"]["content"]["application/json"]["schema"]


def test_every_control_route_is_exercised_here():
    table = requests(
        {
            "fresh": type("L", (), {"order_no": "X"})(),
            "stuck": type("L", (), {"order_no": "Y"})(),
            "extension": "",
            "callback_id": 1,
            "journal_id": 1,
        }
    )
    assert set(table) == {(r.method, r.path) for r in ROUTES}


def test_every_control_route_answers_its_documented_schema(sandbox: Sandbox, world, doc):
    # encrypt a real payload for the decrypt call, so it answers 200
    world_calls = requests(world)
    enc = sandbox.control(
        "POST", "/sandbox/tools/encrypt", {"data": {"x": 1}, "partner_token": TOKEN}
    )
    world_calls[("POST", "/tools/decrypt")] = (
        "/sandbox/tools/decrypt",
        {"partner_token": TOKEN, "encode_data": enc["encode_data"]},
    )
    last = [
        ("POST", "/partners/{token}/clock/advance"),
        ("POST", "/partners/{token}/clock/set"),
        ("POST", "/reset"),
    ]  # they move time or wipe: after the others
    order = sorted(
        ROUTES, key=lambda r: last.index((r.method, r.path)) if (r.method, r.path) in last else -1
    )
    for r in order:
        url, body = world_calls[(r.method, r.path)]
        answer = sandbox.control(r.method, url, body)
        path = r.full_path.replace(":int", "")
        check(doc, answer_schema(doc, r.method, path), answer, f"{r.method} {path}")


def test_every_lender_answer_matches_its_documented_data(sandbox: Sandbox, loan, doc):
    o = loan("answers", SUFFIX["approve"])
    p = o.p
    payloads = {
        "/get-loan-precheck": {"product_id": "1001", "user_mobile": p.mobile, "user_idcard": p.nik},
        "/get-loan-amount": {"product_id": "1001", "user_mobile": p.mobile},
        "/get-loan-interest": {
            "product_id": "1001",
            "user_mobile": p.mobile,
            "user_idcard": p.nik,
            "application_amount": 1_000_000,
            "application_term": 14,
            "term_unit": 1,
        },
        "/get-bank-list": {"product_id": "1001", "action_type": 2},
    }
    seen: dict[str, Any] = {}
    for path, payload in payloads.items():
        seen[path] = sandbox.ok(path, payload)
    seen["/get-bank-list#banks"] = sandbox.ok(
        "/get-bank-list", {"product_id": "1001", "action_type": 1}
    )
    for path in ("/push-basic-info", "/push-supplement-info"):
        seen[path] = {}
    o.create().submit()
    seen["/get-approval-result#reviewing"] = o.get("/get-approval-result")
    o.bind().review()
    seen["/push-bind-bank"] = {}
    approved = o.get("/get-approval-result")
    seen["/get-approval-result"] = approved
    seen["/get-bind-bank"] = o.get("/get-bind-bank")
    seen["/get-loan-contract"] = o.get("/get-loan-contract")
    o.confirm(approved["approval_amount"]).payout()
    seen["/push-order-confirm"] = {}
    for path in ("/get-order-status", "/get-repay-plan", "/get-delay-list", "/get-delay-detail"):
        seen[path] = o.get(path)
    seen["/get-delay-interest"] = o.get("/get-delay-interest", delay_term=7)
    seen["/get-repay-detail"] = sandbox.ok("/get-repay-detail", repay_payload(o.order_no))
    for spec in SPECS:
        data_schema = doc["paths"][spec.path]["post"]["x-answer-data"]
        for key, value in seen.items():
            if key.split("#")[0] == spec.path:
                check(doc, data_schema, value, spec.path)
    assert {k.split("#")[0] for k in seen} == {s.path for s in SPECS}


def test_callback_bodies_match_their_documented_payload(sandbox: Sandbox, loan, doc):
    loan("hooks", SUFFIX["approve"]).disbursed()
    deliveries = sandbox.control("GET", f"/sandbox/callbacks?partner_token={TOKEN}")
    assert {d["path"] for d in deliveries} == {f"/{name}" for name in doc["webhooks"]}
    for d in deliveries:
        schema = doc["webhooks"][d["path"].strip("/")]["post"]["x-payload"]
        check(doc, schema, d["body"], d["path"])


def test_an_undocumented_key_fails_the_check(doc):
    schema = answer_schema(doc, "GET", "/sandbox/health")
    with pytest.raises(AssertionError, match="Additional properties"):
        check(
            doc, schema, {"status": "ok", "database": "sqlite", "partners": 1, "extra": 1}, "health"
        )
