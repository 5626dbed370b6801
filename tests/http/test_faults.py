"""Fault injection through the app: PUT/GET/POST/DELETE /sandbox/faults and every fault kind.

HTTP faults are checked through the ASGI app, and `drop`/`timeout` also through a real
uvicorn server with a real httpx client (what an aggregator sees is a broken connection, not
a 500 body). Business faults are checked on real orders walked through the lender API.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from conftest import CODEC, IV, KEY, TOKEN, Sandbox, basic_payload, confirm_payload, settings_for

from sandbox.core.faultrules import FAULT_KINDS, KIND_NAMES
from sandbox.harness.sink import CallbackSink
from sandbox.services import pipeline as api
from sandbox.services.lender import create_lender
from sandbox.web.app import create_app
from sandbox.web.lender import ConnectionDropped, quiet_drops

BANKS = {"product_id": "1001", "action_type": 1}

JSON = {"content-type": "application/json"}


def put(sb: Sandbox, body: dict, status: int = 200) -> dict:
    return sb.control("PUT", "/sandbox/faults", body, status)


def rules(sb: Sandbox, query: str = "") -> list[dict]:
    return sb.control("GET", f"/sandbox/faults{query}")["rules"]


def journal(sb: Sandbox, query: str = "") -> list[dict]:
    return sb.control("GET", f"/sandbox/journal{query}")


def banks(sb: Sandbox) -> httpx.Response:
    return sb.post("/get-bank-list", sb.envelope(BANKS))


def exchange(sb: Sandbox, path: str, payload: dict) -> httpx.Response:
    return sb.post(path, sb.envelope(payload))


# ---- managing rules ----


def test_put_one_rule_then_get_lists_it_with_its_counters(sandbox):
    put(sandbox, {"kind": "latency", "ms": 5, "path": "get-bank-list", "count": 3})
    [rule] = rules(sandbox)
    assert rule["kind"] == "latency" and rule["path"] == "/get-bank-list"
    assert (rule["remaining"], rule["applied"], rule["matched"], rule["spent"]) == (3, 0, 0, False)
    assert rule["probability"] == 1 and rule["partner_token"] == ""


def test_put_replaces_every_rule_but_a_partner_scoped_put_only_that_partners(sandbox):
    sandbox.control("POST", "/sandbox/partners", {"partner_token": "other_team"})
    put(
        sandbox,
        {
            "rules": [
                {"kind": "drop", "path": "/get-bank-list"},
                {"kind": "drop", "partner_token": "other_team"},
            ]
        },
    )
    assert len(rules(sandbox)) == 2
    put(sandbox, {"partner_token": "demo", "rules": [{"kind": "latency", "ms": 1}]})
    kept = {(r["kind"], r["partner_token"]) for r in rules(sandbox)}
    assert kept == {("drop", ""), ("drop", "other_team"), ("latency", "demo")}
    # a single rule's own partner_token scopes the replacement too
    put(sandbox, {"kind": "http_error", "partner_token": "demo"})
    assert {(r["kind"], r["partner_token"]) for r in rules(sandbox)} == {
        ("drop", ""),
        ("drop", "other_team"),
        ("http_error", "demo"),
    }
    assert [r["kind"] for r in rules(sandbox, "?partner_token=demo")] == ["http_error"]
    put(sandbox, {"rules": []})
    assert rules(sandbox) == []


def test_post_adds_rules_and_delete_removes_by_id_partner_or_all(sandbox):
    sandbox.control("POST", "/sandbox/faults", {"kind": "latency", "ms": 1})
    sandbox.control(
        "POST",
        "/sandbox/faults",
        {"rules": [{"kind": "drop", "partner_token": "demo"}, {"kind": "malformed"}]},
    )
    ids = [r["id"] for r in rules(sandbox)]
    assert len(ids) == 3
    assert sandbox.control("DELETE", f"/sandbox/faults?id={ids[0]}") == {"deleted": 1}
    assert sandbox.control("DELETE", "/sandbox/faults?partner_token=demo") == {"deleted": 1}
    assert sandbox.control("DELETE", "/sandbox/faults") == {"deleted": 1}
    assert (
        sandbox.control("DELETE", f"/sandbox/faults?id={ids[0]}", status=404)["error"]
        == "not_found"
    )


def test_a_rule_as_get_shows_it_can_be_put_back(sandbox):
    put(sandbox, {"kind": "business_error", "code": 11004, "message": "sibuk", "count": 2})
    listed = rules(sandbox)
    again = put(sandbox, {"rules": listed})["rules"]
    strip = lambda r: {k: v for k, v in r.items() if k not in ("id", "created_at")}  # noqa: E731
    assert [strip(r) for r in again] == [strip(r) for r in listed]


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({"kind": "latnecy"}, 400, "kind must be one of latency, http_error"),
        ({"kind": "latency"}, 400, 'give either "ms" or "ms_range"'),
        ({"kind": "latency", "ms": 1, "ms_range": [1, 2]}, 400, 'give either "ms" or "ms_range"'),
        ({"kind": "latency", "ms_range": [50, 10]}, 400, "ms_range must be [low, high]"),
        (
            {"rules": [{"kind": "latency", "ms": 10**9}]},
            400,
            "rules[0].ms: Input should be less than or equal to 60000",
        ),
        ({"rules": [{"kind": "timeout", "ms": 10**9}]}, 400, "less than or equal to 120000"),
        ({"kind": "http_error", "status": 404}, 400, "status: Input should be 500, 502 or 503"),
        ({"kind": "drop", "path": "/nope"}, 400, "/nope is not a lender endpoint"),
        (
            {"kind": "review_stuck", "path": "/get-bank-list"},
            400,
            "applies to /push-supplement-info only",
        ),
        (
            {"kind": "confirm_unknown", "path": "/push-basic-info"},
            400,
            "applies to /push-order-confirm only",
        ),
        ({"kind": "business_error", "code": 0}, 400, "code 0 means success"),
        (
            {"kind": "drop", "probability": 1.5},
            400,
            "probability: Input should be less than or equal to 1",
        ),
        ({"kind": "drop", "count": 0}, 400, "count: Input should be greater than or equal to 1"),
        ({"kind": "drop", "surprise": 1}, 400, "surprise: Extra inputs are not permitted"),
        ({"rules": "drop"}, 400, "rules: Input should be a valid list"),
        (
            {"rules": [{"kind": "drop", "partner_token": "x"}], "partner_token": "demo"},
            400,
            "rules[0].partner_token differs from the top-level partner_token",
        ),
        ({"nothing": True}, 400, 'send one rule {"kind": ...} or {"rules": [...]}'),
        ({"kind": "drop", "partner_token": "nobody"}, 404, "partner_token 'nobody'"),
    ],
)
def test_bad_rules_are_clear_4xx_errors_and_change_nothing(sandbox, body, status, fragment):
    put(sandbox, {"kind": "latency", "ms": 1})
    answer = put(sandbox, body, status)
    assert fragment in answer["message"], answer
    assert [r["kind"] for r in rules(sandbox)] == ["latency"]


def test_bad_query_and_body_shapes(sandbox):
    assert (
        sandbox.control("DELETE", "/sandbox/faults?id=abc", status=400)["error"] == "invalid_field"
    )
    assert (
        sandbox.control("GET", "/sandbox/faults?partner_token=ghost", status=404)["error"]
        == "unknown_partner"
    )
    assert (
        sandbox.control("DELETE", "/sandbox/faults?partner_token=ghost", status=404)["error"]
        == "unknown_partner"
    )
    r = sandbox.client.put("/sandbox/faults", content=b"[1, 2]", headers=JSON)
    assert r.status_code == 400 and r.json()["error"] == "bad_envelope"
    r = sandbox.client.put("/sandbox/faults", content=b"{not json", headers=JSON)
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]


def test_every_kind_is_documented_and_accepted(sandbox):
    assert [k.name for k in FAULT_KINDS] == list(KIND_NAMES)
    minimal = {"latency": {"ms": 1}}
    body = {"rules": [{"kind": k, **minimal.get(k, {})} for k in KIND_NAMES]}
    assert [r["kind"] for r in put(sandbox, body)["rules"]] == list(KIND_NAMES)


def test_a_count_is_spent_exactly_once_under_concurrent_requests(sandbox):
    put(sandbox, {"kind": "business_error", "count": 5, "path": "/get-bank-list"})
    body = json.dumps(sandbox.envelope(BANKS)).encode()
    codes: list[int] = []

    def client() -> None:
        for _ in range(10):
            codes.append(api.handle(sandbox.lender, "/get-bank-list", body).code)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (codes.count(10011), codes.count(0)) == (5, 55)
    assert rules(sandbox)[0]["applied"] == 5


def test_reset_clears_the_rules(sandbox):
    put(sandbox, {"kind": "drop"})
    sandbox.control("POST", "/sandbox/reset", {"all": True})
    assert rules(sandbox) == []


# ---- HTTP faults through the app ----


def test_latency_delays_the_answer_and_is_journaled(sandbox):
    put(sandbox, {"kind": "latency", "ms": 150, "path": "/get-bank-list"})
    started = time.perf_counter()
    assert banks(sandbox).json()["code"] == 0
    assert time.perf_counter() - started >= 0.15
    started = time.perf_counter()
    sandbox.call("/get-order-status", {"product_id": "1001", "order_no": "NO-SUCH-ORDER-1"})
    assert time.perf_counter() - started < 0.15  # other paths are not delayed
    entry = journal(sandbox, "?path=/get-bank-list")[0]
    assert entry["fault"] == "latency 150ms" and entry["code"] == 0


def test_latency_range_with_a_seed_is_reproducible(sandbox_with):
    def delays() -> list[str]:
        sb = sandbox_with()
        put(sb, {"kind": "latency", "ms_range": [1, 40], "seed": "s1", "path": "/get-bank-list"})
        for _ in range(4):
            banks(sb)
        return [e["fault"] for e in reversed(journal(sb, "?path=get-bank-list"))]

    first = delays()
    assert first == delays()
    assert all(1 <= int(f.split()[1].removesuffix("ms")) <= 40 for f in first)


def test_probability_with_a_seed_is_reproducible_and_counts_matches(sandbox_with):
    def pattern() -> tuple[list[int], dict]:
        sb = sandbox_with()
        put(sb, {"kind": "http_error", "probability": 0.5, "seed": "coin"})
        statuses = [banks(sb).status_code for _ in range(16)]
        return statuses, rules(sb)[0]

    statuses, rule = pattern()
    assert statuses == pattern()[0]
    assert set(statuses) == {200, 503}
    assert rule["matched"] == 16 and rule["applied"] == statuses.count(503)


def test_http_error_answers_an_nginx_page_and_the_request_is_not_processed(sandbox, loan):
    order = loan("http-error")
    put(sandbox, {"kind": "http_error", "status": 502, "path": "/push-basic-info", "count": 1})
    r = exchange(sandbox, "/push-basic-info", basic_payload(order.p, order.order_no))
    assert r.status_code == 502 and "502 Bad Gateway" in r.text and "nginx" in r.text
    assert r.headers["content-type"].startswith("text/html")
    sandbox.control("GET", f"/sandbox/orders/{order.order_no}?partner_token={TOKEN}", status=404)
    order.create()  # the rule is spent: the retry goes through
    [rule] = rules(sandbox)
    assert (rule["remaining"], rule["applied"], rule["spent"]) == (0, 1, True)
    failed = journal(sandbox, "?path=push-basic-info")[1]
    assert failed["http_status"] == 502 and failed["code"] is None and failed["response"] is None
    assert failed["fault"] == "http_error 502"
    assert failed["request"]["order_info"]["order_no"] == order.order_no  # decrypted anyway


def test_http_error_after_handler_processes_the_request(sandbox, loan):
    order = loan("after")
    put(sandbox, {"kind": "http_error", "path": "/push-basic-info", "after_handler": True})
    r = exchange(sandbox, "/push-basic-info", basic_payload(order.p, order.order_no))
    assert r.status_code == 503 and "503 Service Temporarily Unavailable" in r.text
    assert sandbox.status(order.order_no) == 80  # created all the same
    entry = journal(sandbox)[0]
    assert entry["fault"] == "http_error 503 after handler"
    assert entry["http_status"] == 503 and entry["code"] == 0


def test_timeout_holds_the_request_then_answers_504(sandbox):
    put(sandbox, {"kind": "timeout", "ms": 200})
    started = time.perf_counter()
    r = banks(sandbox)
    assert time.perf_counter() - started >= 0.2
    assert r.status_code == 504 and "504 Gateway Time-out" in r.text
    entry = journal(sandbox)[0]
    assert (entry["fault"], entry["http_status"]) == ("timeout 200ms", 504)


@pytest.mark.parametrize("style", ["truncated", "php_notice"])
def test_malformed_answers_200_with_a_body_that_is_not_json(sandbox, style):
    put(sandbox, {"kind": "malformed", "style": style})
    r = banks(sandbox)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        json.loads(r.text)
    if style == "php_notice":
        assert r.text.startswith("<br />\n<b>Notice</b>") and r.text.endswith("}")
    else:
        assert r.text.startswith('{"code":0') and len(r.text) > 20
    assert journal(sandbox)[0]["fault"] == f"malformed {style}"


def test_drop_through_the_test_client_raises_the_clients_protocol_error(sandbox):
    put(sandbox, {"kind": "drop", "count": 1})
    with pytest.raises(httpx.RemoteProtocolError, match="kind drop"):
        banks(sandbox)
    assert banks(sandbox).json()["code"] == 0  # the client still works; the rule is spent
    dropped = journal(sandbox)[1]
    assert (dropped["fault"], dropped["http_status"], dropped["response"]) == ("drop", 0, None)


def test_rules_match_partner_path_and_order(sandbox, loan):
    sandbox.control("POST", "/sandbox/partners", {"partner_token": "other_team"})
    put(sandbox, {"kind": "http_error", "partner_token": "other_team"})
    assert banks(sandbox).status_code == 200  # demo is not other_team
    a, b = loan("scope-a").create(), loan("scope-b").create()
    put(sandbox, {"kind": "business_error", "order_no": b.order_no, "path": "get-order-status"})
    assert a.status == 80
    sandbox.err("/get-order-status", b.q(), 10011, "Layanan sedang sibuk")
    assert exchange(sandbox, "/get-bank-list", BANKS).json()["code"] == 0


def test_unknown_partner_and_bad_envelopes_still_get_their_own_answers(sandbox):
    put(sandbox, {"kind": "latency", "ms": 1})
    r = sandbox.post("/get-bank-list", b"{broken")
    assert r.status_code == 200 and r.json()["code"] == 10001
    assert journal(sandbox)[0]["fault"] == "latency 1ms"


# ---- a real server: what an aggregator's HTTP client sees ----


@pytest.fixture
def live() -> Iterator[tuple[str, Sandbox]]:
    settings = settings_for()
    lender = create_lender(settings)
    app = create_app(settings, lender=lender, background=False)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(10)
        lender.store.dispose()


def envelope(payload: dict) -> dict:
    return {"partner_token": TOKEN, "encode_data": CODEC.encrypt_json(payload)}


def test_drop_on_a_real_server_is_a_broken_connection_not_a_500(live):
    assert live.put("/sandbox/faults", json={"kind": "drop", "count": 1}).status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        live.post("/get-bank-list", json=envelope(BANKS))
    assert live.post("/get-bank-list", json=envelope(BANKS)).json()["code"] == 0
    dropped = live.get("/sandbox/journal").json()[1]
    assert (dropped["fault"], dropped["http_status"]) == ("drop", 0)


def test_the_servers_error_log_can_leave_out_drops_on_purpose():
    def record(exc: BaseException) -> logging.LogRecord:
        return logging.LogRecord(
            "uvicorn.error",
            logging.ERROR,
            __file__,
            1,
            "Exception in ASGI application",
            None,
            (type(exc), exc, None),
        )

    assert not quiet_drops(record(ConnectionDropped("on purpose")))
    assert quiet_drops(record(RuntimeError("a real bug")))


def test_timeout_on_a_real_server_outlasts_the_clients_patience(live):
    live.put("/sandbox/faults", json={"kind": "timeout", "ms": 5000})
    started = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        live.post("/get-bank-list", json=envelope(BANKS), timeout=0.3)
    assert time.perf_counter() - started < 2
    live.delete("/sandbox/faults")
    assert live.post("/get-bank-list", json=envelope(BANKS)).json()["code"] == 0  # not blocked


# ---- business faults ----


def test_business_error_answers_in_the_envelope_without_running_the_handler(sandbox, loan):
    order = loan("busy")
    put(sandbox, {"kind": "business_error", "path": "/push-basic-info", "count": 1})
    sandbox.err(
        "/push-basic-info",
        basic_payload(order.p, order.order_no),
        10011,
        "Layanan sedang sibuk, silakan coba lagi",
    )
    sandbox.control("GET", f"/sandbox/orders/{order.order_no}?partner_token={TOKEN}", status=404)
    assert journal(sandbox)[0]["fault"] == "business_error 10011"
    order.create()


def test_business_error_with_a_catalog_code_or_a_custom_message(sandbox):
    put(
        sandbox,
        {
            "rules": [
                {"kind": "business_error", "code": 11004, "path": "/get-loan-precheck"},
                {"kind": "business_error", "code": 90001, "message": "Sistem pemeliharaan"},
            ]
        },
    )
    precheck = {
        "product_id": "1001",
        "user_mobile": "81234567001",
        "user_idcard": "3174055203950001",
    }
    sandbox.err("/get-loan-precheck", precheck, 11004, "Anda masih memiliki pinjaman")
    sandbox.err("/get-bank-list", BANKS, 90001, "Sistem pemeliharaan")


def _approved(loan, seed: str, suffix: str = "001"):
    order = loan(seed, suffix=suffix).create().submit().bind().review()
    assert order.status == 100
    return order


def test_confirm_unknown_answers_504_but_the_order_proceeds(sandbox, loan):
    order = _approved(loan, "unknown")
    put(sandbox, {"kind": "confirm_unknown", "order_no": order.order_no, "count": 1})
    r = exchange(
        sandbox, "/push-order-confirm", confirm_payload(order.order_no, order.amount, order.term)
    )
    assert r.status_code == 504 and "504 Gateway Time-out" in r.text
    detail = sandbox.detail(order.order_no)
    assert detail["status"] == 100 and [t["trigger"] for t in detail["timeline"]][-1] == "confirm"
    assert journal(sandbox)[0]["fault"] == "confirm_unknown http_504"
    order.confirm()  # the aggregator retries: a repeated confirm is idempotent
    order.payout()
    assert order.status == 170


def test_confirm_unknown_as_an_error_code_then_the_payout_happens(sandbox, loan):
    order = _approved(loan, "unknown-code")
    put(sandbox, {"kind": "confirm_unknown", "answer": "business_error", "count": 1})
    sandbox.err(
        "/push-order-confirm", confirm_payload(order.order_no, order.amount, order.term), 10011
    )
    order.payout()
    assert order.status == 170


def test_payout_retry_fails_the_first_payout_only(sandbox, loan):
    order = _approved(loan, "retry")
    put(sandbox, {"kind": "payout_retry", "order_no": order.order_no})
    order.confirm().payout()
    assert order.status == 169
    order.bind().confirm().payout()
    assert order.status == 170
    assert journal(sandbox, "?path=/push-order-confirm")[1]["fault"] == "payout_retry"


def test_review_stuck_at_submit_keeps_the_order_under_review(sandbox, loan):
    order = loan("stuck").create()
    put(sandbox, {"kind": "review_stuck", "order_no": order.order_no})
    order.submit().review()
    sandbox.advance("1d")
    assert order.status == 90
    assert sandbox.detail(order.order_no)["scenario"]["review"] == "stuck"
    sandbox.force(order.order_no, "approve")
    assert order.status == 100


def test_review_stuck_put_for_an_order_already_under_review(sandbox, loan):
    order = loan("stuck-late").create().submit()
    [rule] = put(sandbox, {"kind": "review_stuck", "order_no": order.order_no, "count": 1})["rules"]
    assert rule["applied"] == 1 and rule["spent"]
    order.review()
    assert order.status == 90


def test_review_stuck_by_probability_leaves_other_orders_alone(sandbox, loan):
    put(sandbox, {"kind": "review_stuck", "probability": 0})
    order = loan("not-stuck").create().submit().review()
    assert order.status == 100


def test_callback_first_delivers_pending_callbacks_before_answering(sandbox, loan):
    with CallbackSink(KEY, IV) as sink:
        sandbox.control("PATCH", f"/sandbox/partners/{TOKEN}", {"callback_url": sink.url})
        quiet = loan("cb-quiet").create().submit()
        assert sink.received() == []  # no worker in this app: nothing is delivered
        put(sandbox, {"kind": "callback_first", "path": "/push-supplement-info"})
        first = loan("cb-first").create().submit()
        received = {
            (c["order_no"], c["order_status"]) for c in sink.received("callback-order-status")
        }
        assert (first.order_no, 90) in received and (quiet.order_no, 90) in received
    assert journal(sandbox, "?path=/push-supplement-info")[0]["fault"] == "callback_first"


def test_faults_and_journal_together_name_every_fault(sandbox, loan):
    order = _approved(loan, "both")
    put(
        sandbox,
        {
            "rules": [
                {"kind": "latency", "ms": 1, "path": "/push-order-confirm"},
                {"kind": "confirm_unknown", "answer": "business_error"},
                {"kind": "payout_retry"},
            ]
        },
    )
    sandbox.err(
        "/push-order-confirm", confirm_payload(order.order_no, order.amount, order.term), 10011
    )
    assert (
        journal(sandbox)[0]["fault"] == "latency 1ms; confirm_unknown business_error; payout_retry"
    )
