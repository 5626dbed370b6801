"""Tenancy: each team's control token drives its own partner and nothing else (issue 12 #2).

The sandbox here has an admin token, so every control route but the health check needs a
token. The table-driven tests walk `ROUTES` with one real call per route
(tests/http/route_calls.py, every call naming the demo partner): another partner's token is
refused on each partner-scoped route and on every admin route — and leaves nothing changed —
while the demo partner's own token is accepted on its routes. A route added to the table
without a call in route_calls fails the coverage test of test_openapi_answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SUFFIX, TOKEN, Sandbox, make_sandbox, settings_for
from route_calls import requests
from sqlalchemy import text

from sandbox.core.tenancy import TOKEN_PREFIX
from sandbox.services.config import ConfigError
from sandbox.store import Store
from sandbox.web import openapi
from sandbox.web.control import ROUTES, ControlRoute

ADMIN = "admin-token-for-the-tenancy-tests"
LAST = [  # they move time or wipe: after the others
    ("POST", "/partners/{token}/control-token"),
    ("POST", "/partners/{token}/clock/advance"),
    ("POST", "/partners/{token}/clock/set"),
    ("POST", "/reset"),
]


@pytest.fixture
def sandbox(template_store: Store) -> Iterator[Sandbox]:
    """A sandbox with an admin token; its client sends the admin token unless told otherwise
    (the `world` of conftest is built through it)."""
    gen = make_sandbox(settings_for(server={"admin_token": ADMIN}), store=template_store.copy())
    sb = next(gen)
    sb.client.headers["authorization"] = f"Bearer {ADMIN}"
    yield sb
    gen.close()


@pytest.fixture
def tokens(sandbox: Sandbox) -> dict[str, str]:
    """The demo partner's control token (issued by the admin) and team B's (from onboarding)."""
    demo = sandbox.control("POST", f"/sandbox/partners/{TOKEN}/control-token")["control_token"]
    b = sandbox.control("POST", "/sandbox/partners", {"partner_token": "team-b"})
    return {"demo": demo, "b": b["control_token"]}


def send(sb: Sandbox, method: str, url: str, body: Any, token: str | None) -> Any:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    if token is None:
        headers["authorization"] = ""
    return sb.client.request(method, url, json=body, headers=headers)


def snapshot(sb: Sandbox) -> dict[str, Any]:
    """What a refused call must not have changed about the demo partner (read as the admin)."""
    return {
        "partner": sb.control("GET", f"/sandbox/partners/{TOKEN}?secrets=1"),
        "clock": sb.control("GET", f"/sandbox/partners/{TOKEN}/clock"),
        "orders": sb.control("GET", f"/sandbox/orders?partner_token={TOKEN}"),
        "callbacks": sb.control("GET", f"/sandbox/callbacks?partner_token={TOKEN}"),
        "journal": sb.control("GET", f"/sandbox/journal?partner_token={TOKEN}"),
        "faults": sb.control("GET", "/sandbox/faults"),
        "partners": sb.control("GET", "/sandbox/partners"),
    }


def ordered() -> list[Any]:
    return sorted(
        ROUTES,
        key=lambda r: LAST.index((r.method, r.path)) + 1 if (r.method, r.path) in LAST else 0,
    )


# ---- the table ----


def test_a_route_cannot_be_made_without_saying_whose_token_it_takes() -> None:
    with pytest.raises(TypeError, match="scope"):
        ControlRoute("GET", "/new", "Control: new", "A new route", lambda c: {}, dict)  # type: ignore[call-arg]


def test_every_route_declares_whose_token_it_takes() -> None:
    assert {r.scope.kind for r in ROUTES} <= {"public", "admin", "partner"}
    assert [r.path for r in ROUTES if r.scope.kind == "public"] == ["/health"]
    for r in ROUTES:  # a route answered on the event loop must not read the store to authorize
        assert r.blocking or r.scope.where in ("path", "query", ""), r.path


def test_another_partners_token_is_refused_on_every_route_and_changes_nothing(
    sandbox: Sandbox, world: dict[str, Any], tokens: dict[str, str]
) -> None:
    calls = requests(world)
    before = snapshot(sandbox)
    for r in ordered():
        url, body = calls[(r.method, r.path)]
        answer = send(sandbox, r.method, url, body, tokens["b"])
        where = f"{r.method} {r.full_path} with team B's token"
        if r.scope.kind == "public":
            assert answer.status_code == 200, where
            continue
        assert answer.status_code == 403, f"{where}: {answer.status_code} {answer.text}"
        doc = answer.json()
        assert doc["error"] == "forbidden", where
        assert "team-b" in doc["message"], where  # it says whose token it is
    assert snapshot(sandbox) == before


def test_the_partners_own_token_is_accepted_on_its_routes_and_refused_on_admin_ones(
    sandbox: Sandbox, world: dict[str, Any], tokens: dict[str, str]
) -> None:
    calls = requests(world)
    enc = sandbox.control(
        "POST", "/sandbox/tools/encrypt", {"data": {"x": 1}, "partner_token": TOKEN}
    )
    calls[("POST", "/tools/decrypt")] = (
        "/sandbox/tools/decrypt",
        {"partner_token": TOKEN, "encode_data": enc["encode_data"]},
    )
    token = tokens["demo"]
    for r in ordered():
        url, body = calls[(r.method, r.path)]
        answer = send(sandbox, r.method, url, body, token)
        where = f"{r.method} {r.full_path} with demo's token: {answer.text[:300]}"
        if r.scope.kind == "admin":
            assert answer.status_code == 403, where
        else:
            assert answer.status_code == 200, where
        if (r.method, r.path) == ("POST", "/partners/{token}/control-token"):
            token = answer.json()["control_token"]  # the old one stopped working


def test_no_token_or_an_unknown_one_is_a_401_on_every_route_but_health(
    sandbox: Sandbox, world: dict[str, Any]
) -> None:
    calls = requests(world)
    for r in ROUTES:
        url, body = calls[(r.method, r.path)]
        for token in (None, "lsp_not-a-token-of-anyone", "Loan@apis#123456@"):
            answer = send(sandbox, r.method, url, body, token)
            if r.scope.kind == "public":
                assert answer.status_code == 200
                continue
            assert answer.status_code == 401, (r.path, token, answer.text)
            assert answer.json()["error"] == "unauthorized"


# ---- secrets ----


def test_keys_and_decrypted_requests_only_to_the_partner_and_the_admin(
    sandbox: Sandbox, loan, tokens: dict[str, str]
) -> None:
    o = loan("secrets", SUFFIX["approve"]).create()
    entry = sandbox.control("GET", f"/sandbox/journal?partner_token={TOKEN}&limit=1")[0]
    for url in (
        f"/sandbox/partners/{TOKEN}?secrets=1",
        f"/sandbox/journal?partner_token={TOKEN}",
        f"/sandbox/journal/{entry['id']}",
        f"/sandbox/partners/{TOKEN}/postman.json",
        f"/sandbox/orders/{o.order_no}?partner_token={TOKEN}",
    ):
        assert send(sandbox, "GET", url, None, tokens["b"]).status_code == 403, url
        assert send(sandbox, "GET", url, None, tokens["demo"]).status_code == 200, url
    own = send(sandbox, "GET", f"/sandbox/partners/{TOKEN}?secrets=1", None, tokens["demo"])
    assert own.json()["aes_key"] == "Loan@apis#123456@"
    decrypted = send(sandbox, "GET", f"/sandbox/journal/{entry['id']}", None, tokens["demo"])
    assert decrypted.json()["request"]["order_info"]["order_no"] == o.order_no


# ---- a partner's token names its own partner ----


def test_lists_without_a_partner_are_the_callers_own(
    sandbox: Sandbox, loan, tokens: dict[str, str]
) -> None:
    o = loan("mine", SUFFIX["approve"]).create()
    as_b = send(sandbox, "GET", "/sandbox/orders", None, tokens["b"]).json()
    assert as_b == []  # team B has none; demo's are not shown
    as_demo = send(sandbox, "GET", "/sandbox/orders", None, tokens["demo"]).json()
    assert [x["order_no"] for x in as_demo] == [o.order_no]
    journal = send(sandbox, "GET", "/sandbox/journal", None, tokens["b"]).json()
    assert journal == []
    # the admin without a partner: every partner's
    assert [x["order_no"] for x in sandbox.control("GET", "/sandbox/orders")] == [o.order_no]


def test_a_partner_replaces_only_its_own_fault_rules(
    sandbox: Sandbox, tokens: dict[str, str]
) -> None:
    sandbox.control("POST", "/sandbox/faults", {"kind": "drop", "partner_token": TOKEN})
    sandbox.control("POST", "/sandbox/faults", {"kind": "drop"})  # every partner's (admin)
    rule = {"kind": "latency", "ms": 5}
    put = send(sandbox, "PUT", "/sandbox/faults", {"rules": [rule]}, tokens["b"])
    assert put.status_code == 200, put.text
    assert [(r["kind"], r["partner_token"]) for r in put.json()["rules"]] == [("latency", "team-b")]
    every = sandbox.control("GET", "/sandbox/faults")["rules"]
    assert sorted((r["kind"], r["partner_token"]) for r in every) == [
        ("drop", ""),
        ("drop", TOKEN),
        ("latency", "team-b"),
    ]
    # a rule of another partner inside B's set, or B deleting demo's rule: refused
    mixed = {"rules": [{"kind": "drop", "partner_token": TOKEN}]}
    assert send(sandbox, "PUT", "/sandbox/faults", mixed, tokens["b"]).status_code == 400
    demo_rule = next(r["id"] for r in every if r["partner_token"] == TOKEN)
    gone = send(sandbox, "DELETE", f"/sandbox/faults?id={demo_rule}", None, tokens["b"])
    assert gone.status_code == 404
    every_rule = next(r["id"] for r in every if r["partner_token"] == "")
    assert (
        send(sandbox, "DELETE", f"/sandbox/faults?id={every_rule}", None, tokens["b"]).status_code
        == 404
    )
    assert len(sandbox.control("GET", "/sandbox/faults")["rules"]) == 3


def test_only_the_admin_resets_everything(sandbox: Sandbox, loan, tokens: dict[str, str]) -> None:
    o = loan("reset", SUFFIX["approve"]).create()
    refused = send(sandbox, "POST", "/sandbox/reset", {"all": True}, tokens["demo"])
    assert refused.status_code == 403 and "admin" in refused.json()["message"]
    assert sandbox.status(o.order_no) == 80
    own = send(sandbox, "POST", "/sandbox/reset", {"partner_token": TOKEN}, tokens["demo"])
    assert own.json() == {"reset": TOKEN, "orders_deleted": 1}


# ---- control tokens: issued once, hashed, rotated, gone with their partner ----


def test_onboarding_answers_a_control_token_once_and_keeps_only_its_hash(
    sandbox: Sandbox,
) -> None:
    made = sandbox.control("POST", "/sandbox/partners", {"name": "Team C"})
    token = made["control_token"]
    assert token.startswith(TOKEN_PREFIX) and len(token) >= 32
    shown = sandbox.control("GET", f"/sandbox/partners/{made['partner_token']}?secrets=1")
    assert "control_token" not in shown
    with sandbox.lender.store.transaction() as s:
        stored = s.execute(text("SELECT token_hash FROM partner_credentials")).scalars().all()
    assert token not in stored and all(len(h) == 64 for h in stored)
    mine = send(sandbox, "GET", f"/sandbox/partners/{made['partner_token']}/clock", None, token)
    assert mine.status_code == 200


def test_rotating_a_token_ends_the_old_one(sandbox: Sandbox, tokens: dict[str, str]) -> None:
    old = tokens["b"]
    new = send(sandbox, "POST", "/sandbox/partners/team-b/control-token", None, old).json()
    assert new["partner_token"] == "team-b" and new["control_token"] != old
    assert send(sandbox, "GET", "/sandbox/partners/team-b", None, old).status_code == 401
    assert (
        send(sandbox, "GET", "/sandbox/partners/team-b", None, new["control_token"]).status_code
        == 200
    )
    # team B cannot rotate demo's token (and so lock demo out)
    assert (
        send(
            sandbox, "POST", f"/sandbox/partners/{TOKEN}/control-token", None, new["control_token"]
        ).status_code
        == 403
    )
    assert (
        send(sandbox, "GET", f"/sandbox/partners/{TOKEN}", None, tokens["demo"]).status_code == 200
    )


def test_a_partner_gone_in_a_global_reset_takes_its_token_with_it(
    sandbox: Sandbox, tokens: dict[str, str]
) -> None:
    sandbox.control("POST", "/sandbox/reset", {"all": True})
    assert send(sandbox, "GET", "/sandbox/partners/team-b", None, tokens["b"]).status_code == 401
    made = sandbox.control("POST", "/sandbox/partners", {"partner_token": "team-b"})
    assert send(sandbox, "GET", "/sandbox/partners/team-b", None, tokens["b"]).status_code == 401
    fresh = made["control_token"]
    assert send(sandbox, "GET", "/sandbox/partners/team-b", None, fresh).status_code == 200


def test_a_fixture_partner_takes_its_control_token_from_partners_toml(tmp_path) -> None:
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    (fixtures / "partners.toml").write_text(
        '[[partners]]\npartner_token = "kilat"\naes_key = "k" \naes_iv = "i"\n'
        'control_token = "kilat-control-token-0001"\n',
        encoding="utf-8",
    )
    settings = settings_for(server={"admin_token": ADMIN}, fixtures={"dir": str(fixtures)})
    gen = make_sandbox(settings)
    sb = next(gen)
    try:
        ok = send(sb, "GET", "/sandbox/partners/kilat", None, "kilat-control-token-0001")
        assert ok.status_code == 200
        assert (
            send(sb, "GET", "/sandbox/partners", None, "kilat-control-token-0001").status_code
            == 403
        )
    finally:
        gen.close()


@pytest.mark.parametrize(
    "partners, problem",
    [
        ('control_token = "short"', "at least 16 characters"),
        ('control_token = "admin-token-for-the-tenancy-tests"', "is [server] admin_token"),
    ],
)
def test_a_fixture_control_token_must_be_long_and_not_the_admins(tmp_path, partners, problem):
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    (fixtures / "partners.toml").write_text(
        f'[[partners]]\npartner_token = "kilat"\naes_key = "k"\naes_iv = "i"\n{partners}\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=re.escape(problem)):
        settings_for(server={"admin_token": ADMIN}, fixtures={"dir": str(fixtures)})


def test_the_openapi_document_says_whose_token_each_route_takes() -> None:
    doc = openapi.build()
    assert set(doc["components"]["securitySchemes"]) == {"adminToken", "partnerToken"}
    for r in ROUTES:
        op = doc["paths"][r.full_path.replace(":int", "")][r.method.lower()]
        schemes = {name for requirement in op["security"] for name in requirement}
        expected = {
            "public": set(),
            "admin": {"adminToken"},
            "partner": {"adminToken", "partnerToken"},
        }[r.scope.kind]
        assert schemes == expected, r.path
        assert "Who may call it" in op["description"]
        assert ("401" in op["responses"]) == (r.scope.kind != "public")
