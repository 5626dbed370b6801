"""Who may use the dashboard (issue 12 #2, #3): open on a loopback sandbox without an admin
token, every form with its session's CSRF token; elsewhere a login with the admin token
(everything) or a partner's control token (that partner's pages and forms only)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from conftest import SUFFIX, TOKEN, Loan, Sandbox, make_sandbox, person, settings_for
from test_dashboard import csrf, do, flash

from sandbox.services import control
from sandbox.store import Store

ADMIN = "admin-token-for-the-dashboard-tests"


def _now(sb: Sandbox) -> float:
    return control.get_clock(sb.lender, TOKEN)["now_unix"]


# ---- CSRF: open, but no other site can post its forms ----


@pytest.mark.parametrize("token", [None, "", "forged-token", "ünïcode"])
def test_a_form_without_its_sessions_csrf_token_does_nothing(sandbox: Sandbox, token) -> None:
    before = _now(sandbox)
    csrf(sandbox)  # the session exists; the form does not carry its token
    data = {"partner": TOKEN, "by": "1d", "back": "/dashboard?partner=demo"}
    if token is not None:
        data["csrf"] = token
    page = sandbox.client.post("/dashboard/do/advance", data=data)
    kind, text = flash(page.text) or ("", "")
    assert kind == "error" and "security token" in text
    assert _now(sandbox) == before


def test_a_csrf_token_of_another_session_does_nothing(sandbox: Sandbox) -> None:
    theirs = csrf(sandbox)
    sandbox.client.cookies.clear()  # another browser: a session of its own
    assert csrf(sandbox) != theirs
    before = _now(sandbox)
    data = {"partner": TOKEN, "by": "1d", "back": "/dashboard", "csrf": theirs}
    page = sandbox.client.post("/dashboard/do/advance", data=data)
    assert flash(page.text)[0] == "error" and _now(sandbox) == before


def test_the_session_cookie_is_httponly_samesite_and_only_for_the_dashboard(
    sandbox: Sandbox,
) -> None:
    r = sandbox.client.get("/dashboard")
    cookie = next(c for c in r.headers.get_list("set-cookie") if "lender_sandbox_session" in c)
    low = cookie.lower()
    assert "httponly" in low and "samesite=lax" in low and "path=/dashboard" in low


# ---- a sandbox that asks for a token ----


@pytest.fixture
def guarded(template_store: Store) -> Iterator[Sandbox]:
    gen = make_sandbox(settings_for(server={"admin_token": ADMIN}), store=template_store.copy())
    yield next(gen)
    gen.close()


def admin(sb: Sandbox) -> dict[str, str]:
    return {"authorization": f"Bearer {ADMIN}"}


def login(sb: Sandbox, token: str, target: str = "/dashboard") -> object:
    form = sb.client.get(f"/dashboard/login?next={quote(target, safe='')}")
    assert form.status_code == 200
    token_field = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token_field
    data = {"token": token, "csrf": token_field.group(1), "next": target}
    return sb.client.post("/dashboard/login", data=data, follow_redirects=False)


def team_b(sb: Sandbox) -> str:
    made = sb.client.post(
        "/sandbox/partners", json={"partner_token": "team-b"}, headers=admin(sb)
    ).json()
    return made["control_token"]


def test_without_a_login_the_dashboard_asks_for_a_token(guarded: Sandbox) -> None:
    for path in (
        "/dashboard",
        "/dashboard/orders/X?partner=demo",
        "/dashboard/partners/demo/conformance",
    ):
        r = guarded.client.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"] == "/dashboard/login?next=" + quote(path, safe="")
    page = guarded.client.get("/dashboard").text  # followed: the login form
    assert 'type="password" name="token"' in page and "Demo aggregator" not in page
    # a form posted without a session changes nothing
    r = guarded.client.post("/dashboard/do/reset", data={"partner": TOKEN}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/dashboard")


def test_a_wrong_token_is_refused_and_the_admin_sees_everything(guarded: Sandbox) -> None:
    r = login(guarded, "not-a-token")
    assert r.status_code == 401 and "not the admin token" in r.text
    team_b(guarded)
    r = login(guarded, ADMIN, "/dashboard?partner=team-b")
    assert r.status_code == 303 and r.headers["location"] == "/dashboard?partner=team-b"
    page = guarded.client.get("/dashboard").text
    assert "Logged in as the admin" in page
    assert "Demo aggregator" in page and "team-b" in page  # every partner
    out = guarded.client.post(
        "/dashboard/logout", data={"csrf": csrf(guarded)}, follow_redirects=False
    )
    assert out.headers["location"] == "/dashboard/login"
    assert guarded.client.get("/dashboard", follow_redirects=False).status_code == 303


def test_a_partner_sees_and_changes_only_its_own(guarded: Sandbox) -> None:
    guarded.client.headers.update(admin(guarded))  # the demo partner's loan, set up as admin
    guarded.control("PATCH", f"/sandbox/partners/{TOKEN}", {"callback_url": "http://hooks.invalid"})
    o = Loan(guarded, person("dash-tenancy", SUFFIX["approve"]), "ORD-DASH-TENANCY-1").disbursed()
    code = o.code()["repay_code"]
    global_rule = guarded.control(
        "POST", "/sandbox/faults", {"kind": "latency", "ms": 1, "path": "/get-bank-list"}
    )["rules"][0]["id"]
    del guarded.client.headers["authorization"]
    b = team_b(guarded)
    assert login(guarded, b).status_code == 303
    page = guarded.client.get("/dashboard")
    assert page.status_code == 200 and "Logged in as partner team-b" in page.text
    assert "Demo aggregator" not in page.text and o.order_no not in page.text
    for path in (
        "/dashboard?partner=demo",
        f"/dashboard/orders/{o.order_no}?partner=demo",
        "/dashboard/partners/demo/conformance",
    ):
        r = guarded.client.get(path)
        assert r.status_code == 403 and "team-b" in r.text, path
        assert o.order_no not in r.text or path.startswith("/dashboard/orders"), path
    before = _now(guarded)
    deliveries = guarded.client.get(
        f"/sandbox/callbacks?partner_token={TOKEN}", headers=admin(guarded)
    ).json()
    for action, form in (
        ("advance", {"partner": TOKEN, "by": "1d"}),
        ("reset", {"partner": TOKEN}),
        ("pay", {"repay_code": code}),
        ("redeliver", {"id": str(deliveries[0]["id"])}),
        ("delete_fault", {"id": str(global_rule)}),
        ("callback_url", {"partner": TOKEN, "callback_url": "http://evil.example"}),
    ):
        result = do(guarded, action, **form)
        kind, text = flash(result.text) or ("", "")
        assert kind == "error", (action, text)
    assert _now(guarded) == before
    guarded.client.headers.update(admin(guarded))
    assert o.status == 170  # not paid, not reset
    del guarded.client.headers["authorization"]
    view = guarded.client.get(f"/sandbox/partners/{TOKEN}", headers=admin(guarded)).json()
    assert view["callback_url"] == "http://hooks.invalid"
    assert len(guarded.client.get("/sandbox/faults", headers=admin(guarded)).json()["rules"]) == 1
    # its own forms work
    mine = do(guarded, "advance", back="/dashboard?partner=team-b", partner="team-b", by="1h")
    assert flash(mine.text)[0] == "ok"


def test_rotating_a_partners_token_ends_its_dashboard_session(guarded: Sandbox) -> None:
    b = team_b(guarded)
    login(guarded, b)
    assert guarded.client.get("/dashboard", follow_redirects=False).status_code == 200
    guarded.client.post("/sandbox/partners/team-b/control-token", headers=admin(guarded))
    assert guarded.client.get("/dashboard", follow_redirects=False).status_code == 303


def test_a_script_may_send_its_token_instead_of_logging_in(guarded: Sandbox) -> None:
    assert guarded.client.get("/dashboard", headers=admin(guarded)).status_code == 200
    bad = guarded.client.get("/dashboard", headers={"authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["error"] == "unauthorized"


def test_a_non_loopback_bind_asks_for_a_token_too(template_store: Store) -> None:
    settings = settings_for(server={"host": "0.0.0.0", "admin_token": ADMIN})
    gen = make_sandbox(settings, store=template_store.copy())
    sb = next(gen)
    try:
        r = sb.client.get("/dashboard", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/dashboard/login")
        assert login(sb, ADMIN).status_code == 303
        assert "Demo aggregator" in sb.client.get("/dashboard").text
    finally:
        gen.close()


def test_the_login_page_of_an_open_sandbox_says_no_login_is_needed(sandbox: Sandbox) -> None:
    page = sandbox.client.get("/dashboard/login").text
    assert "no login needed" in page


# ---- reflected input is escaped on every page (issue 12 #5) ----

EVIL = "<img src=x onerror=alert(1)>"


@pytest.mark.parametrize(
    "url",
    [
        f"/dashboard/orders/{quote(EVIL, safe='')}?partner=demo",
        f"/dashboard/orders/X?partner={quote(EVIL, safe='')}",
        f"/dashboard?partner={quote(EVIL, safe='')}",
        f"/dashboard?partner=demo&status={quote(EVIL, safe='')}",
        f"/dashboard?partner=demo&lang={quote(EVIL, safe='')}",
        f"/dashboard?partner=demo&x={quote(EVIL, safe='')}",
        f"/dashboard/partners/{quote(EVIL, safe='')}/conformance",
        f"/dashboard/login?next={quote('/dashboard?' + EVIL, safe='')}",
        f"/docs?lang={quote(EVIL, safe='')}",
    ],
)
def test_no_page_echoes_markup_it_was_sent(sandbox: Sandbox, url: str) -> None:
    page = sandbox.client.get(url)
    assert page.status_code in (200, 404), url
    assert EVIL not in page.text and "<img" not in page.text, url
