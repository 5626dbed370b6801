"""The request journal through the app: GET /sandbox/journal (decrypted, newest first), DELETE."""

from __future__ import annotations

import pytest
from conftest import CODEC, T0, TOKEN, Sandbox

from sandbox.core.clock import iso
from sandbox.core.crypto import Codec

BANKS = {"product_id": "1001", "action_type": 1}
STATUS = {"product_id": "1001", "order_no": "ORDER-NOT-THERE-1"}


def journal(sb: Sandbox, query: str = "", status: int = 200) -> list[dict] | dict:
    return sb.control("GET", f"/sandbox/journal{query}", status=status)


def other_partner(sb: Sandbox) -> Sandbox:
    creds = sb.control("POST", "/sandbox/partners", {"partner_token": "team_b"})
    return Sandbox(sb.client, "team_b", Codec(creds["aes_key"], creds["aes_iv"]))


def test_each_request_is_kept_decrypted_with_its_answer_newest_first(sandbox):
    sandbox.call("/get-bank-list", BANKS)
    sandbox.advance("2h")
    sandbox.call("/get-order-status", STATUS)
    newest, oldest = journal(sandbox)
    assert newest["path"] == "/get-order-status" and oldest["path"] == "/get-bank-list"
    assert newest["id"] > oldest["id"]
    assert newest["request"] == STATUS and newest["partner_token"] == TOKEN
    assert newest["code"] == 11001 and newest["http_status"] == 200 and newest["fault"] == ""
    assert newest["response"]["code"] == 11001 and newest["response"]["data"] == {}
    assert oldest["response"]["data"]["banklist"][0]["bank_code"] == "BCA"
    assert '"encode_data"' in oldest["request_raw"]
    # wall time is the injected wall clock; virtual time is the partner's clock (moved 2 h)
    assert newest["time"] == oldest["time"] == iso(T0)
    assert (oldest["virtual_time"], newest["virtual_time"]) == (iso(T0), iso(T0 + 7200))


def test_undecryptable_and_unknown_partner_requests_are_journaled_too(sandbox):
    wrong = Sandbox(sandbox.client, TOKEN, Codec("not-the-key-1234", "not-the-iv-12345"))
    wrong.call("/get-bank-list", BANKS)
    stranger = Sandbox(sandbox.client, "nobody", CODEC)
    stranger.call("/get-bank-list", BANKS)
    unknown, undecryptable = journal(sandbox)
    assert unknown["partner_token"] == "" and unknown["code"] == 10002
    assert unknown["virtual_time"] is None and unknown["request"] is None
    assert undecryptable["code"] in (10003, 10004) and undecryptable["request"] is None
    assert "encode_data" in undecryptable["request_raw"]


def test_filters_by_partner_path_and_limit(sandbox):
    team_b = other_partner(sandbox)
    sandbox.call("/get-bank-list", BANKS)
    sandbox.call("/get-order-status", STATUS)
    team_b.call("/get-bank-list", BANKS)
    assert [e["partner_token"] for e in journal(sandbox, "?partner_token=team_b")] == ["team_b"]
    assert len(journal(sandbox, "?partner_token=demo")) == 2
    assert [e["partner_token"] for e in journal(sandbox, "?path=get-bank-list")] == [
        "team_b",
        "demo",
    ]
    assert len(journal(sandbox, "?path=/get-bank-list&partner_token=demo")) == 1
    assert [e["partner_token"] for e in journal(sandbox, "?limit=1")] == ["team_b"]
    assert journal(sandbox, "?path=/push-basic-info") == []


def test_delete_clears_one_partner_or_everything(sandbox):
    team_b = other_partner(sandbox)
    sandbox.call("/get-bank-list", BANKS)
    team_b.call("/get-bank-list", BANKS)
    team_b.call("/get-bank-list", BANKS)
    assert sandbox.control("DELETE", "/sandbox/journal?partner_token=team_b") == {
        "deleted": 2,
        "partner_token": "team_b",
    }
    assert [e["partner_token"] for e in journal(sandbox)] == ["demo"]
    assert sandbox.control("DELETE", "/sandbox/journal")["deleted"] == 1
    assert journal(sandbox) == []


@pytest.mark.parametrize(
    "method, query, status, fragment",
    [
        ("GET", "?limit=0", 400, "limit must be an integer 1-1000"),
        ("GET", "?limit=5000", 400, "limit must be an integer 1-1000"),
        ("GET", "?limit=ten", 400, "limit must be an integer"),
        ("GET", "?partner_token=ghost", 404, "partner_token 'ghost'"),
        ("DELETE", "?partner_token=ghost", 404, "partner_token 'ghost'"),
    ],
)
def test_bad_queries_are_clear_4xx(sandbox, method, query, status, fragment):
    answer = sandbox.control(method, f"/sandbox/journal{query}", status=status)
    assert fragment in answer["message"]


def test_reset_of_a_partner_clears_its_journal(sandbox):
    sandbox.call("/get-bank-list", BANKS)
    sandbox.control("POST", "/sandbox/reset", {"partner_token": TOKEN})
    assert journal(sandbox) == []
