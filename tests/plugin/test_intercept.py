"""`Sandbox.intercept` and `Sandbox.httpx_transport` (sandbox/harness/intercept.py): the
aggregator's own httpx/requests client served in-process, other hosts left alone.

"Another host" is a real loopback receiver (`CallbackSink`): a request that reaches it was
left alone by the interception.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json

import httpx
import pytest
import requests
import responses
import respx
from starlette.testclient import TestClient

from sandbox.client import LenderClient
from sandbox.core.crypto import Codec
from sandbox.harness.sink import CallbackSink
from sandbox.web.app import create_app

LOCAL = "http://localhost"  # a loopback sandbox answers loopback Host names only

BASE = "https://lender.example.id/api/v2"


def envelope(sb, payload: dict) -> dict:
    c = sb.partner
    return {
        "partner_token": c.partner_token,
        "encode_data": Codec(c.aes_key, c.aes_iv).encrypt_json(payload),
    }


def precheck(sb) -> tuple[dict, dict]:
    """(payload, envelope) of a 02 precheck for a new borrower."""
    payload = sb.sample_order(scenario="approve").precheck()
    return payload, envelope(sb, payload)


@pytest.fixture
def other_host():
    with CallbackSink() as sink:  # plain JSON in, `code` 0 out
        yield sink


# ---- the three clients ----


def test_httpx_sync_requests_reach_the_sandbox_through_the_envelope_path(sb):
    payload, env = precheck(sb)
    with httpx.Client(base_url=BASE) as client, sb.intercept(BASE):  # a client made before
        r = client.post("/get-loan-precheck", json=env)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json()["code"] == 0 and r.json()["data"]["is_reloan"] == 0
    record = sb.journal.last("get-loan-precheck")  # decrypted, as the lender received it
    assert record.request == payload and record.code == 0


def test_httpx_async_requests_reach_the_sandbox(sb):
    payload, env = precheck(sb)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(base_url=BASE) as client:
            return await client.post("/get-loan-precheck", json=env)

    with sb.intercept(BASE):
        r = asyncio.run(call())
    assert r.json()["code"] == 0
    assert sb.journal.last("get-loan-precheck").request == payload


def test_requests_reach_the_sandbox(sb):
    payload, env = precheck(sb)
    with sb.intercept(BASE), requests.Session() as session:
        r = session.post(BASE + "/get-loan-precheck", json=env)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json()["code"] == 0
    assert sb.journal.last("get-loan-precheck").request == payload


def test_a_lender_client_of_any_kind_works_unchanged(sb):
    """The project's own LenderClient over httpx: the aggregator's code path, intercepted."""
    loan = sb.sample_order(scenario="approve")
    c = sb.partner
    with sb.intercept(BASE), LenderClient(BASE, c.partner_token, c.aes_key, c.aes_iv) as api:
        api.data("push-basic-info", loan.basic_info())
        api.data("push-supplement-info", loan.supplement_info())
    assert sb.order(loan.order_no)["status"] == 90


def test_callbacks_are_delivered_before_the_answer_returns(sb):
    loan = sb.sample_order(scenario="approve")
    with sb.intercept(BASE):
        requests.post(BASE + "/push-basic-info", json=envelope(sb, loan.basic_info()))
        requests.post(BASE + "/push-supplement-info", json=envelope(sb, loan.supplement_info()))
        assert [cb["order_status"] for cb in sb.callbacks.received("callback-order-status")] == [90]


# ---- the HTTP edge, as the server answers it ----


def edge_cases(sb) -> list[tuple[str, str, bytes]]:
    return [
        ("GET", "/get-loan-precheck", b""),  # 405
        ("POST", "/get-loan-approval", b"{}"),  # 404
        ("POST", "/get-loan-precheck", b"x" * (sb.settings.server.max_body_bytes + 1)),  # 413
    ]


@pytest.fixture(scope="module")
def server_app(template):
    """The real ASGI app on the same settings: what the server answers at its edge."""
    with TestClient(create_app(template.settings, background=False), base_url=LOCAL) as client:
        yield client


@pytest.mark.parametrize("send", ["httpx", "requests"])
def test_the_edge_answers_like_the_server(sb, send, server_app):
    call = httpx.request if send == "httpx" else requests.request
    body = "content" if send == "httpx" else "data"
    with sb.intercept(BASE):
        answers = [call(m, BASE + path, **{body: raw}) for m, path, raw in edge_cases(sb)]
    served = [server_app.request(m, path, content=raw) for m, path, raw in edge_cases(sb)]
    assert [r.status_code for r in answers] == [405, 404, 413]
    assert [(r.status_code, r.json()) for r in answers] == [
        (r.status_code, r.json()) for r in served
    ]
    assert answers[1].json()["message"] == "unknown path /get-loan-approval"
    assert sb.journal.entries() == []  # none of them reached the lender


def test_the_in_process_client_meets_the_same_edge(sb):
    """`Sandbox.send` (what `sandbox.client()` uses) answers 404 and 413 the same way."""
    status, body = sb.send("/get-loan-approval", b"{}")
    assert (status, json.loads(body)["message"]) == (404, "unknown path /get-loan-approval")
    status, body = sb.send("/get-loan-precheck", edge_cases(sb)[2][2])
    assert (status, json.loads(body)["code"]) == (413, 10013)


def test_your_clients_content_type_reaches_the_acceptance_report(sb):
    """Intercepted requests carry your client's headers: envelope.content_type is judged."""
    _, env = precheck(sb)
    with sb.intercept(BASE):
        httpx.post(BASE + "/get-loan-precheck", json=env)  # application/json
    assert sb.conformance().check("envelope.content_type")["status"] == "pass"
    with sb.intercept(BASE):
        requests.post(BASE + "/get-loan-precheck", data=json.dumps(env))  # no Content-Type
        httpx.post(
            BASE + "/get-loan-precheck",
            content=json.dumps(env),
            headers={"content-type": "text/plain"},
        )
    check = sb.conformance().check("envelope.content_type")
    assert check["status"] == "fail"
    assert "2 requests of 3 sent another Content-Type" in check["summary"]


# ---- what is left alone ----


def test_other_hosts_and_paths_are_left_alone(sb, other_host):
    with sb.intercept(BASE):
        assert httpx.post(other_host.url + "/hook", json={"n": 1}).json()["code"] == 0
        assert requests.post(other_host.url + "/hook", json={"n": 2}).json()["code"] == 0
    assert other_host.received("hook") == [{"n": 1}, {"n": 2}]


def test_the_base_path_is_a_boundary(sb, other_host):
    """Intercepting host/api leaves host/api2 alone."""
    with sb.intercept(other_host.url + "/api"):
        assert httpx.post(other_host.url + "/api2/hook", json={"n": 1}).json()["code"] == 0
        served = httpx.post(other_host.url + "/api/get-loan-precheck", json=precheck(sb)[1])
    assert served.json()["data"]["is_reloan"] == 0
    assert [r.path for r in other_host.records()] == ["/api2/hook"]


def test_after_the_block_nothing_is_intercepted(sb, other_host):
    with sb.intercept(other_host.url):
        httpx.post(other_host.url + "/get-loan-precheck", json=precheck(sb)[1])
    httpx.post(other_host.url + "/get-loan-precheck", json={"n": 1})
    requests.post(other_host.url + "/get-loan-precheck", json={"n": 2})
    assert other_host.received() == [{"n": 1}, {"n": 2}]
    assert len(sb.journal.entries()) == 1


def test_requests_false_leaves_requests_alone(sb, other_host):
    _, env = precheck(sb)
    with sb.intercept(other_host.url, requests=False):
        assert httpx.post(other_host.url + "/get-loan-precheck", json=env).json()["data"]
        requests.post(other_host.url + "/get-loan-precheck", json={"n": 1})
    assert other_host.received() == [{"n": 1}]


def test_several_base_urls(sb):
    _, env = precheck(sb)
    with sb.intercept("http://lender-a.test", "https://lender-b.test:8443/x"):
        assert httpx.post("http://lender-a.test:80/get-loan-precheck", json=env).json()["code"] == 0
        assert (
            requests.post("https://lender-b.test:8443/x/get-loan-precheck", json=env).json()["code"]
            == 0
        )


# ---- with the team's own mocks ----


def test_the_teams_respx_mock_keeps_its_routes(sb):
    _, env = precheck(sb)
    with respx.mock() as kyc:  # started before: the sandbox's router defers to it
        kyc.post("https://kyc.example.id/verify").respond(json={"match": True})
        with sb.intercept(BASE):
            assert httpx.post("https://kyc.example.id/verify").json() == {"match": True}
            assert httpx.post(BASE + "/get-loan-precheck", json=env).json()["code"] == 0
    with sb.intercept(BASE), respx.mock() as kyc:  # started after: each answers its own
        kyc.post("https://kyc.example.id/verify").respond(json={"match": False})
        assert httpx.post("https://kyc.example.id/verify").json() == {"match": False}
        assert httpx.post(BASE + "/get-loan-precheck", json=env).json()["code"] == 0


def test_the_teams_responses_mock_keeps_its_routes(sb):
    _, env = precheck(sb)
    with responses.RequestsMock() as kyc:  # started before: what is not ours goes to it
        kyc.add(responses.POST, "https://kyc.example.id/verify", json={"match": True})
        with sb.intercept(BASE):
            assert requests.post("https://kyc.example.id/verify").json() == {"match": True}
            assert requests.post(BASE + "/get-loan-precheck", json=env).json()["code"] == 0


# ---- bad input ----


@pytest.mark.parametrize(
    "url",
    [
        "lender.example.id",
        "ftp://lender.example.id",
        "https://lender.example.id/?v=1",
        "",
        "http://[::1",
    ],
)
def test_a_base_url_must_be_one(sb, url):
    with pytest.raises(ValueError, match="base URL"):
        sb.intercept(url)


def test_a_base_url_is_needed(sb):
    with pytest.raises(ValueError, match="needs the base URL"):
        sb.intercept()


@pytest.mark.parametrize(
    "missing, requests_flag, hint",
    [
        ("respx", None, "intercepting httpx needs the 'respx' package"),
        ("responses", None, "intercepting requests needs the 'responses' package"),
    ],
)
def test_a_missing_extra_says_what_to_install(sb, monkeypatch, missing, requests_flag, hint):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a)
    )
    with pytest.raises(RuntimeError, match=hint) as e:
        sb.intercept(BASE, requests=requests_flag)
    assert "lender-sandbox[intercept]" in str(e.value)


def test_without_requests_responses_is_not_needed(sb, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "responses" else real(name, *a),
    )
    with sb.intercept(BASE, requests=False):
        assert httpx.post(BASE + "/get-loan-precheck", json=precheck(sb)[1]).json()["code"] == 0


# ---- an injected transport ----


def test_httpx_transport_serves_sync_and_async_clients(sb):
    payload, env = precheck(sb)
    transport = sb.httpx_transport(BASE)
    with httpx.Client(base_url=BASE, transport=transport) as client:
        assert client.post("/get-loan-precheck", json=env).json()["code"] == 0

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(base_url=BASE, transport=transport) as client:
            return await client.post("/get-loan-precheck", json=env)

    assert asyncio.run(call()).json()["code"] == 0
    assert [r.request for r in sb.journal.entries("get-loan-precheck")] == [payload, payload]


def test_httpx_transport_outside_its_base_path_is_404(sb):
    with httpx.Client(transport=sb.httpx_transport(BASE)) as client:
        r = client.post("https://lender.example.id/get-loan-precheck", json=precheck(sb)[1])
    assert r.status_code == 404 and "outside the base path /api/v2" in r.json()["message"]
    assert sb.journal.entries() == []
