"""The acceptance report's pure core (sandbox.core.conformance) on hand-made records, and
docs/conformance.md kept equal to its catalogue."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sandbox.core import conformance as cf
from sandbox.core.conformance import (
    CATALOG,
    Attempt,
    Call,
    Delivery,
    Facts,
    Limits,
    OrderRecord,
    Report,
    Run,
    Step,
    evaluate,
)
from sandbox.core.crypto import Codec, php_json_encode
from sandbox.core.protocol import SPECS

ROOT = Path(__file__).resolve().parents[2]
KEY, IV = "Loan@apis#123456@", "loan#654321@apis"
CODEC = Codec(KEY, IV)


def call(
    id: int,
    path: str,
    request: dict | None = None,
    *,
    code: int | None = 0,
    message: str = "success",
    at: float | None = None,
    virtual: float | None = None,
    text: str | None = None,
    data: dict | None = None,
    **kw,
) -> Call:
    request = request if request is not None else {"product_id": "1001"}
    plain = text if text is not None else php_json_encode(request)
    raw = json.dumps({"partner_token": "demo", "encode_data": CODEC.encrypt_text(plain)})
    response = {"code": code, "message": message, "data": data or {}}
    return Call(
        id, path, float(id) if at is None else at, virtual, request, raw, response, code, **kw
    )


def verdict(check_id: str, run: Run, limits: Limits | None = None) -> cf.Verdict:
    return cf.BY_ID[check_id].evaluate(Facts(run, limits or Limits()))


def run_of(*calls: Call, deliveries=(), orders=()) -> Run:
    return Run("demo", tuple(calls), tuple(deliveries), tuple(orders), KEY, IV)


# ---- PHP's JSON ----


@pytest.mark.parametrize(
    "text",
    [
        '{"a":"x\\/y","b":"\\u00e9"}',  # default flags
        '{"a":"x/y","b":"é"}',  # JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
        '{"a":"x\\/y","b":"é"}',  # JSON_UNESCAPED_UNICODE
        '{"a":"x/y","b":"\\u00e9"}',  # JSON_UNESCAPED_SLASHES
        '{"a":"\\\\\\/"}',  # a backslash then a slash, escaped
        '{"n":1,"f":1.5,"l":[],"o":{}}',
    ],
)
def test_what_php_json_encode_writes_passes(text) -> None:
    assert cf.php_difference(text) is None


@pytest.mark.parametrize(
    "text,fragment",
    [
        ('{"a": 1, "b": 2}', "at character 5"),  # Python's json.dumps
        ('{"b":"\\u00E9"}', "at character"),  # upper-case hex: not PHP
        ('{"amount":1000000.0}', "PHP writes '"),  # PHP writes 1000000
        ('{\n  "a": 1\n}', "at character 1"),  # pretty-printed
        ('{"x":NaN}', "PHP json_encode cannot write"),
    ],
)
def test_other_json_is_told_where_it_differs(text, fragment) -> None:
    assert fragment in (cf.php_difference(text) or "")


def test_the_php_json_check_reads_the_plaintext_again() -> None:
    good = call(1, "/get-bank-list", {"product_id": "1001", "action_type": 1})
    spaced = call(
        2,
        "/get-bank-list",
        {"product_id": "1001", "action_type": 2},
        text=json.dumps({"product_id": "1001", "action_type": 2}),
    )
    v = verdict("envelope.php_json", run_of(good, spaced))
    assert v.status == "fail" and [e["id"] for e in v.evidence] == [2]
    assert "sent '" in v.evidence[0]["note"]
    other_key = Run("demo", (good,), aes_key="Another-key-0000", aes_iv=IV)
    assert verdict("envelope.php_json", other_key).status == "untested"  # cannot read it again


# ---- content type ----


@pytest.mark.parametrize(
    "value,ok",
    [
        ("application/json;charset=utf-8", True),
        ("application/json", True),
        ("Application/JSON; charset=UTF-8", True),
        ('application/json; charset="utf-8"', True),
        ("application/json;charset=iso-8859-1", False),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("", False),
    ],
)
def test_json_content_type(value, ok) -> None:
    assert cf.json_content_type(value) is ok


def test_in_process_calls_leave_the_content_type_untested() -> None:
    assert verdict("envelope.content_type", run_of(call(1, "/get-bank-list"))).status == "untested"
    v = verdict(
        "envelope.content_type", run_of(call(1, "/get-bank-list", content_type="text/plain"))
    )
    assert v.status == "fail" and "'text/plain'" in v.evidence[0]["note"]


# ---- polling and time ----


def poll(id: int, at: float, virtual: float = 0.0, order_no: str = "ORD0000000001") -> Call:
    return call(
        id,
        "/get-approval-result",
        {"order_no": order_no, "product_id": "1001"},
        at=at,
        virtual=virtual,
        data={"order_no": order_no, "order_status": 90},
    )


def test_polls_are_counted_in_wall_time_or_clock_time_whichever_moved_more() -> None:
    fast = [poll(i, at=i * 1.0) for i in range(1, 9)]  # 8 polls in 8 s
    assert len(cf.densest_minute(fast)) == 8
    waited = [poll(i, at=i * 1.0, virtual=i * 60.0) for i in range(1, 9)]  # clock advanced 1m each
    assert len(cf.densest_minute(waited)) == 1
    slow = [poll(i, at=i * 15.0) for i in range(1, 9)]  # every 15 s: 4 a minute
    assert len(cf.densest_minute(slow)) == 4
    assert verdict("order.review_poll_rate", run_of(*fast)).status == "fail"
    assert verdict("order.review_poll_rate", run_of(*slow)).status == "pass"
    assert (
        verdict("order.review_poll_rate", run_of(*slow), Limits(review_polls_per_minute=3)).status
        == "fail"
    )


def test_the_status_at_a_call_comes_from_the_answer_else_the_timeline() -> None:
    order = OrderRecord(
        "ORD0000000001",
        170,
        1_000_000,
        timeline=(
            Step(1, None, 80, "create", 100.0),
            Step(2, 80, 90, "submit", 100.0),
            Step(3, 90, 100, "approve", 220.0),
        ),
    )
    facts = Facts(run_of(orders=[order]), Limits())
    said = call(
        1,
        "/push-order-confirm",
        {"order_no": "ORD0000000001"},
        code=11002,
        message="Status ...: order ORD0000000001: 'confirm' is not allowed in status 170",
    )
    assert facts.status_when(said) == 170
    silent = call(
        2,
        "/push-order-confirm",
        {"order_no": "ORD0000000001"},
        code=11006,
        message="no card",
        virtual=230.0,
    )
    assert facts.status_when(silent) == 100
    unknown = call(3, "/push-order-confirm", {"order_no": "ORD0000000002"}, code=11006)
    assert facts.status_when(unknown) is None


# ---- callbacks ----


def delivery(
    id: int,
    *attempts: Attempt,
    order_no: str = "ORD0000000001",
    status: int = 90,
    path: str = "/callback-order-status",
) -> Delivery:
    return Delivery(
        id, order_no, path, "delivered", {"order_no": order_no, "order_status": status}, attempts
    )


def ack(id: int, response: str = '{"code":0}', latency: float = 5.0, error: str = "") -> Attempt:
    return Attempt(id, float(id), 200, response, latency, error)


def test_an_acknowledgement_must_be_the_number_0_in_time() -> None:
    slow = delivery(1, ack(1, latency=12_000))
    string_zero = delivery(2, ack(2, response='{"code":"0","msg":"ok"}'))
    refused = delivery(3, ack(3, error="HTTP 500"), ack(4))
    v = verdict("callbacks.acknowledged", run_of(deliveries=[slow, string_zero, refused]))
    assert v.status == "fail"
    notes = [e["note"] for e in v.evidence]
    assert "over the 10s timeout" in notes[0]
    assert 'the string "0"' in notes[1] and "HTTP 500" in notes[2]
    assert [e["id"] for e in v.evidence] == [1, 2, 3] and v.evidence[2]["delivery"] == 3


def test_only_attempts_after_the_acknowledgement_are_duplicates() -> None:
    d = delivery(1, ack(1, error="HTTP 502"), ack(2), ack(3, error="code 1: seen"))
    assert [a.id for a in d.cycle] == [1, 2] and [a.id for a in d.duplicates] == [3]
    v = verdict("callbacks.duplicates", run_of(deliveries=[d]))
    assert v.status == "fail" and "after attempt 2" in v.evidence[0]["note"]


def test_a_stale_status_delivered_last_is_an_out_of_order_delivery() -> None:
    older, newer = delivery(1, ack(4), status=100), delivery(2, ack(3), status=170)
    same = delivery(3, ack(2), status=170, path="/callback-repay-plan")
    facts = Facts(run_of(deliveries=[older, newer, same]), Limits())
    assert [(a.id, b.id) for a, b in facts.reorders] == [(1, 2)]
    after = call(
        9,
        "/push-order-confirm",
        {"order_no": "ORD0000000001"},
        code=11002,
        at=10.0,
        message="... not allowed in status 170",
    )
    v = verdict("callbacks.out_of_order", run_of(after, deliveries=[older, newer]))
    assert v.status == "fail" and [e["kind"] for e in v.evidence] == ["attempt", "journal"]


# ---- catalogue, report, docs ----


def test_coverage_counts_the_protocol_endpoints_02_to_18() -> None:
    assert [n for n, _ in cf.ENDPOINTS] == [f"{i:02d}" for i in range(2, 19)]
    assert cf.ENDPOINTS == tuple((s.number, s.path) for s in SPECS)


def test_catalogue_ids_are_unique_and_cite_existing_documents() -> None:
    assert len({c.id for c in CATALOG}) == len(CATALOG)
    for c in CATALOG:
        for doc in re.findall(r"docs/[a-z]+\.md", c.spec):
            assert (ROOT / doc).exists(), (c.id, doc)


def test_how_to_test_fills_in_the_token_and_the_scenario_suffixes() -> None:
    check = cf.BY_ID["scenario.reduced_approval"]
    assert "ending in 002" in cf.how_to_test(check)
    assert "ending in 902" in cf.how_to_test(
        check, limits=Limits(suffixes={"approve_reduced": "902"})
    )
    unknown = cf.how_to_test(check, limits=Limits(suffixes={}))
    assert "{approve_reduced}" in unknown  # a missing rule stays visible
    assert '"partner_token": "team-a"' in cf.how_to_test(cf.BY_ID["idempotency.replays"], "team-a")


def test_an_empty_run_is_all_untested_and_the_report_reads_it() -> None:
    doc = evaluate(Run("demo"))
    report = Report(doc, base_url="http://127.0.0.1:8000")
    assert report.status == "incomplete" and report.ok and not report.complete
    assert len(report.untested) == len(CATALOG) and report.failed == []
    assert repr(report) == "<Report demo: incomplete, 0 pass, 0 fail, 23 untested>"
    text = str(report)
    assert text.startswith(
        "Acceptance report for partner demo (since the partner was created: "
        "0 requests, 0 callbacks, 0 orders)"
    )
    assert text.count("how to test:") == len(CATALOG)
    with pytest.raises(ValueError, match="status must be one of"):
        report.ids("broken")


def test_evidence_is_capped_and_says_how_much_more() -> None:
    bad = [call(i, "/get-bank-list", code=10003, message="undecryptable") for i in range(1, 31)]
    entry = next(c for c in evaluate(run_of(*bad))["checks"] if c["id"] == "envelope.decrypts")
    assert len(entry["evidence"]) == cf.MAX_EVIDENCE
    assert entry["details"]["more_evidence"] == 30 - cf.MAX_EVIDENCE
    assert f"and {30 - cf.MAX_EVIDENCE} more" in cf.format_text(evaluate(run_of(*bad)))


ROW = re.compile(r"^\| `([a-z_.]+)` \| (.+?) \| (.+?) \| (.+?) \| (.+) \|$")


def test_the_document_lists_exactly_the_catalogue() -> None:
    text = (ROOT / "docs" / "conformance.md").read_text("utf-8")
    rows = [m.groups() for m in map(ROW.match, text.splitlines()) if m]
    assert rows == [(c.id, c.title, c.title_zh, c.spec, cf.how_to_test(c)) for c in CATALOG]
    for c in CATALOG:  # and explains each check in a section of its own
        assert f"### `{c.id}`" in text, c.id
    assert cf.markdown_table() in text


def test_the_checklist_sections_hold_every_check_once_in_catalogue_order() -> None:
    doc = evaluate(run_of(call(1, "/get-bank-list", code=10003, message="undecryptable")))
    groups = cf.sections(doc)
    assert [g["id"] for g in groups] == [s.id for s in cf.SECTIONS]
    flat = [c["id"] for g in groups for c in g["checks"]]
    assert flat == [c.id for c in CATALOG]
    envelope = groups[0]
    assert envelope["title_zh"] == "加密信封"
    assert envelope["counts"] == {"pass": 1, "fail": 1, "untested": 1}  # php_json: read again
    assert sum(g["counts"]["untested"] for g in groups) == doc["summary"]["untested"]
