"""The Postman collection: served per partner, standard v2.1, valid examples, and a whole
loan that really runs (played here request by request, without node; .ci/newman runs it with
newman against a live server)."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import IV, KEY, TOKEN, Sandbox

from sandbox import cli
from sandbox.core import validation as v
from sandbox.core.crypto import Codec
from sandbox.core.protocol import SPECS
from sandbox.services import postman
from sandbox.services.config import DEFAULT_CONFIG, load_settings

LENDER = {e.path: e for e in SPECS}
# Postman Collection v2.1 (the schema at postman.SCHEMA): the fields we use
COLLECTION_KEYS = {"info", "item", "event", "variable"}
REQUEST_KEYS = {"method", "header", "url", "body", "description"}


@pytest.fixture
def collection(sandbox) -> dict:
    r = sandbox.client.get(f"/sandbox/partners/{TOKEN}/postman.json")
    assert r.status_code == 200, r.text
    assert (
        r.headers["content-disposition"]
        == 'attachment; filename="lender-sandbox-demo.postman_collection.json"'
    )
    return r.json()


def folder(doc: dict, name: str) -> list[dict]:
    (found,) = [f for f in doc["item"] if f["name"] == name]
    return found["item"]


def variables(doc: dict) -> dict[str, str]:
    return {var["key"]: var["value"] for var in doc["variable"]}


def path_of(item: dict) -> str:
    return "/" + "/".join(item["request"]["url"]["path"])


def payload(item: dict, values: dict[str, str]) -> Any:
    return json.loads(postman.resolve(item["request"]["body"]["raw"], values))


def test_the_partners_collection_carries_its_credentials_and_this_host(collection):
    assert variables(collection) | {
        "base_url": "http://localhost",
        "partner_token": TOKEN,
        "aes_key": KEY,
        "aes_iv": IV,
    } == variables(collection)
    assert {
        "control_token",
        "order_no",
        "user_mobile",
        "user_idcard",
        "user_name",
        "repay_code",
    } <= set(variables(collection))


def test_an_unknown_partner_is_the_control_apis_404(sandbox):
    r = sandbox.client.get("/sandbox/partners/nobody/postman.json")
    assert r.status_code == 404
    assert r.json()["code"] == 10002 and r.json()["error"] == "unknown_partner"


def test_a_new_partner_gets_its_own_keys(sandbox):
    made = sandbox.control("POST", "/sandbox/partners", {"partner_token": "team_b"})
    doc = sandbox.control("GET", "/sandbox/partners/team_b/postman.json")
    assert (
        variables(doc)["aes_key"] == made["aes_key"] and variables(doc)["aes_iv"] == made["aes_iv"]
    )


def test_it_is_a_standard_postman_v21_collection(collection):
    assert collection["info"]["schema"] == postman.SCHEMA
    assert set(collection) == COLLECTION_KEYS
    assert [f["name"] for f in collection["item"]] == [
        "Whole loan",
        "Endpoints",
        "Sandbox controls",
    ]
    assert sorted(e["listen"] for e in collection["event"]) == ["prerequest", "test"]
    for item in postman.requests_of(collection):
        assert set(item) <= {"name", "request", "event"} and item["name"]
        request = item["request"]
        assert set(request) <= REQUEST_KEYS
        assert request["url"]["raw"] == "{{base_url}}" + path_of(item) + (
            "?" + "&".join(f"{q['key']}={q['value']}" for q in request["url"].get("query", []))
            if "query" in request["url"]
            else ""
        )
        for event in item.get("event", []):
            assert event["listen"] in ("prerequest", "test")
            assert all(isinstance(line, str) for line in event["script"]["exec"])


def test_every_variable_a_request_uses_is_defined(collection):
    defined = set(variables(collection))
    used = set(re.findall(r"{{(\w+)}}", json.dumps(collection["item"])))
    assert used and used <= defined


def test_the_endpoints_folder_has_every_endpoint_once_in_order(collection):
    items = folder(collection, "Endpoints")
    assert [path_of(i) for i in items] == [e.path for e in SPECS]
    assert [i["name"].split()[0] for i in items] == [f"{n:02d}" for n in range(2, 19)]
    assert all(i["request"]["method"] == "POST" for i in items)


def test_every_lender_body_is_a_readable_valid_payload(collection):
    values = variables(collection)
    lender_items = [i for i in postman.requests_of(collection) if path_of(i) in LENDER]
    assert len(lender_items) == 17 + 20
    for item in lender_items:
        body = payload(item, values)
        assert "encode_data" not in body  # the plain payload; the script encrypts it
        v.parse(LENDER[path_of(item)].model, body)  # raises (10006/10007) when invalid


def test_the_whole_loan_goes_in_the_happy_path_order(collection):
    steps = [
        path_of(i) if path_of(i).startswith("/sandbox") else LENDER[path_of(i)].number
        for i in folder(collection, "Whole loan")
    ]
    advance = "/sandbox/partners/{{partner_token}}/clock/advance"
    assert steps == [
        "/sandbox/health",
        "02",
        "03",
        "04",
        "05",
        "06",
        advance,
        "12",
        "07",
        "08",
        "09",
        "10",
        "11",
        advance,
        "12",
        "13",
        "14",
        "15",
        "/sandbox/payments",
        "16",
        "17",
        "18",
        "15",
        "/sandbox/payments",
        "12",
    ]
    items = folder(collection, "Whole loan")
    assert payload(items[17], variables(collection))["repay_type"] == 2  # the extension
    assert payload(items[22], variables(collection))["repay_type"] == 1  # then in full
    assert all(i["name"].startswith("Sandbox:") for i in items if path_of(i).startswith("/sandbox"))


def play(sandbox, doc: dict, name: str, **given: str) -> list[tuple[str, Any]]:
    """Send a folder's requests in order as newman would (variables resolved — `given` ones
    as from an environment —, headers as the collection says, lender bodies encrypted); every
    answer must be a success. The answers, by request name."""
    values, answers = {**variables(doc), **given}, []
    for item in folder(doc, name):
        request = item["request"]
        url = postman.resolve(request["url"]["raw"], values).removeprefix(values["base_url"])
        body = payload(item, values) if "body" in request else None
        if path_of(item) in LENDER:
            data = sandbox.ok(url, body)
        else:
            headers = {h["key"]: postman.resolve(h["value"], values) for h in request["header"]}
            r = sandbox.client.request(request["method"], url, json=body, headers=headers)
            assert r.is_success, (item["name"], r.text)
            data = r.json()
        if isinstance(data, dict) and "repay_code" in data:
            values["repay_code"] = data["repay_code"]  # what the 15 tests keep
        answers.append((item["name"], data))
    return answers


def test_the_whole_loan_runs_on_a_fresh_sandbox_and_settles(sandbox, collection):
    answers = dict(play(sandbox, collection, "Whole loan"))
    assert answers["12 get-order-status (approved)"]["order_status"] == 100
    assert answers["12 get-order-status (disbursed)"]["order_status"] == 170
    assert answers["16 get-delay-list"]["delay_times"] == 1
    assert answers["12 get-order-status (settled)"]["order_status"] == 200
    order = sandbox.detail(variables(collection)["order_no"])
    assert order["status"] == 200 and order["user_mobile"].endswith("001")


def test_the_whole_loan_runs_with_the_partners_control_token(sandbox_with):
    """On a sandbox that asks for tokens, the collection's sandbox steps send the partner's
    control token (an environment's `control_token`), and only that token is needed."""
    guarded = sandbox_with(server={"admin_token": "admin-token-of-the-postman-test"})
    admin = {"authorization": "Bearer admin-token-of-the-postman-test"}
    made = guarded.client.post("/sandbox/partners", json={"name": "Team P"}, headers=admin).json()
    team = Sandbox(guarded.client, made["partner_token"], Codec(made["aes_key"], made["aes_iv"]))
    control = {"authorization": f"Bearer {made['control_token']}"}
    url = f"/sandbox/partners/{made['partner_token']}/postman.json"
    doc = guarded.client.get(url, headers=control).json()
    assert variables(doc)["control_token"] == ""  # a collection never carries a token
    answers = dict(play(team, doc, "Whole loan", control_token=made["control_token"]))
    assert answers["12 get-order-status (settled)"]["order_status"] == 200
    step = next(i for i in folder(doc, "Whole loan") if "advance" in path_of(i))
    raw = postman.resolve(step["request"]["url"]["raw"], variables(doc))  # control_token ""
    refused = guarded.client.request(
        step["request"]["method"],
        raw.removeprefix(variables(doc)["base_url"]),
        json=payload(step, variables(doc)) if "body" in step["request"] else None,
        headers={"authorization": "Bearer "},
    )
    assert refused.status_code == 401  # without the token the sandbox steps are refused


def test_the_whole_loan_follows_the_configured_delays(sandbox_with):
    slow = sandbox_with(lifecycle={"review_delay": "6h", "payout_delay": "30m"})
    doc = slow.control("GET", f"/sandbox/partners/{TOKEN}/postman.json")
    advances = [i["name"] for i in folder(doc, "Whole loan") if "advance" in path_of(i)]
    assert advances == [
        "Sandbox: advance the clock 6h (the review decides)",
        "Sandbox: advance the clock 30m (the payout goes through)",
    ]
    assert (
        dict(play(slow, doc, "Whole loan"))["12 get-order-status (settled)"]["order_status"] == 200
    )


def test_products_without_extensions_are_a_clear_409(sandbox):
    lender = sandbox.lender
    lender.products = {pid: p for pid, p in lender.products.items() if not p.extension.enabled}
    r = sandbox.client.get(f"/sandbox/partners/{TOKEN}/postman.json")
    assert r.status_code == 409
    assert "no product offers extensions" in r.json()["message"]


# ---- the CLI ---------------------------------------------------------------------------


def test_cli_writes_the_configurations_partner_collection(tmp_path):
    target = tmp_path / "demo.json"
    result = CliRunner().invoke(
        cli.main,
        ["postman", "--partner", "demo", "--config", str(DEFAULT_CONFIG), "--output", str(target)],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(target.read_text("utf-8"))
    assert variables(doc)["base_url"] == load_settings(DEFAULT_CONFIG, env={}).public_url()
    assert variables(doc)["aes_key"] == KEY
    expected = postman.config_collection(
        load_settings(DEFAULT_CONFIG, env={}), "demo", date.today()
    )
    assert [i["name"] for i in postman.requests_of(doc)] == [
        i["name"] for i in postman.requests_of(expected)
    ]


def test_cli_to_stdout_and_an_unknown_partner():
    out = CliRunner().invoke(cli.main, ["postman", "--config", str(DEFAULT_CONFIG), "-o", "-"])
    assert out.exit_code == 0 and json.loads(out.stdout)["info"]["schema"] == postman.SCHEMA
    bad = CliRunner().invoke(
        cli.main, ["postman", "--partner", "nobody", "--config", str(DEFAULT_CONFIG), "-o", "-"]
    )
    assert bad.exit_code == 2 and "no partner with token 'nobody'" in bad.output


def test_cli_without_a_server_says_so(tmp_path):
    result = CliRunner().invoke(
        cli.main, ["postman", "--url", "http://127.0.0.1:9", "-o", str(tmp_path / "x.json")]
    )
    assert result.exit_code == 1 and "no sandbox answers at http://127.0.0.1:9" in result.output
    assert not (tmp_path / "x.json").exists()
