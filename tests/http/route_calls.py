"""One real call of every control route, on the `world` of tests/http/conftest.py (a sandbox
with something of everything), each naming the demo partner (TOKEN) wherever a partner can be
named: the OpenAPI answers test (every answer matches its schema) and the tenancy test
(another partner's token is refused on each) walk the route table with it."""

from __future__ import annotations

from typing import Any

from conftest import TOKEN


def requests(w: dict[str, Any]) -> dict[tuple[str, str], tuple[str, dict | None]]:
    """(method, route path) -> (the URL to call, the body), one real call per route."""
    o, stuck = w["fresh"].order_no, w["stuck"].order_no
    t = TOKEN
    return {
        ("GET", "/health"): ("/sandbox/health", None),
        ("GET", "/partners"): ("/sandbox/partners", None),
        ("POST", "/partners"): ("/sandbox/partners", {"name": "Team B", "callback_url": ""}),
        ("GET", "/partners/{token}"): (f"/sandbox/partners/{t}?secrets=1", None),
        ("PATCH", "/partners/{token}"): (f"/sandbox/partners/{t}", {"chaos": {"duplicate": 0}}),
        ("POST", "/partners/{token}/control-token"): (f"/sandbox/partners/{t}/control-token", None),
        ("GET", "/partners/{token}/postman.json"): (f"/sandbox/partners/{t}/postman.json", None),
        ("GET", "/partners/{token}/clock"): (f"/sandbox/partners/{t}/clock", None),
        ("POST", "/partners/{token}/clock/advance"): (
            f"/sandbox/partners/{t}/clock/advance",
            {"by": "1m"},
        ),
        ("POST", "/partners/{token}/clock/set"): (
            f"/sandbox/partners/{t}/clock/set",
            {"to": "2030-01-01T00:00:00+07:00"},
        ),
        ("POST", "/partners/{token}/callbacks/pause"): (
            f"/sandbox/partners/{t}/callbacks/pause",
            {},
        ),
        ("POST", "/partners/{token}/callbacks/resume"): (
            f"/sandbox/partners/{t}/callbacks/resume",
            {},
        ),
        ("GET", "/orders"): (f"/sandbox/orders?partner_token={t}", None),
        ("GET", "/orders/{order_no}"): (f"/sandbox/orders/{o}?partner_token={t}", None),
        ("POST", "/orders/{order_no}/transition"): (
            f"/sandbox/orders/{stuck}/transition",
            {"partner_token": t, "trigger": "approve"},
        ),
        ("GET", "/orders/{order_no}/wait"): (
            f"/sandbox/orders/{o}/wait?partner_token={t}&status=170&timeout=0",
            None,
        ),
        ("POST", "/payments"): ("/sandbox/payments", {"repay_code": w["extension"]}),
        ("GET", "/callbacks"): (f"/sandbox/callbacks?partner_token={t}", None),
        ("GET", "/callbacks/{id:int}"): (f"/sandbox/callbacks/{w['callback_id']}", None),
        ("POST", "/callbacks/{id:int}/redeliver"): (
            f"/sandbox/callbacks/{w['callback_id']}/redeliver",
            {},
        ),
        ("GET", "/journal"): (f"/sandbox/journal?partner_token={t}", None),
        ("GET", "/journal/{id:int}"): (f"/sandbox/journal/{w['journal_id']}", None),
        ("DELETE", "/journal"): (f"/sandbox/journal?partner_token={t}", None),
        ("POST", "/journal/prune"): ("/sandbox/journal/prune", {"max_rows_per_partner": 5}),
        ("GET", "/partners/{token}/conformance"): (f"/sandbox/partners/{t}/conformance", None),
        ("POST", "/partners/{token}/conformance/reset"): (
            f"/sandbox/partners/{t}/conformance/reset",
            None,
        ),
        ("GET", "/faults"): (f"/sandbox/faults?partner_token={t}", None),
        ("PUT", "/faults"): (
            "/sandbox/faults",
            {
                "partner_token": t,
                "rules": [{"kind": "drop", "count": 1, "path": "/get-delay-list"}],
            },
        ),
        ("POST", "/faults"): (
            "/sandbox/faults",
            {"kind": "http_error", "status": 502, "order_no": "NOBODY0000", "partner_token": t},
        ),
        ("DELETE", "/faults"): (f"/sandbox/faults?partner_token={t}", None),
        ("POST", "/reset"): ("/sandbox/reset", {"partner_token": t}),
        ("POST", "/tools/encrypt"): (
            "/sandbox/tools/encrypt",
            {"data": {"a": "/"}, "partner_token": t},
        ),
        ("POST", "/tools/decrypt"): (
            "/sandbox/tools/decrypt",
            {"partner_token": t, "encode_data": "mRR2TPOOHN9gnvm9NFoVHQ=="},
        ),
    }
