"""The door of every request but the lender endpoints' (web.guard, issue 12 #3 and #7): the Host
a loopback sandbox answers (DNS rebinding), writes from pages of other origins, JSON-only
control bodies, and `[server] max_body_bytes` on every route — each table-driven over the
control route table, plus the dashboard's forms, the tools and the borrower's pages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from conftest import TOKEN, Sandbox, make_sandbox, settings_for

from sandbox.store import Store
from sandbox.web.control import ROUTES

LIMIT = 2_000
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def url_of(path: str) -> str:
    """A route's path with its parameters filled in."""
    path = path.replace("{token}", TOKEN).replace("{order_no}", "ORD-NONE-0001")
    return "/sandbox" + re.sub(r"{id:int}", "1", path)


@pytest.fixture
def small(template_store: Store) -> Iterator[Sandbox]:
    """An open loopback sandbox whose bodies may be LIMIT bytes at most."""
    settings = settings_for(server={"max_body_bytes": LIMIT})
    gen = make_sandbox(settings, store=template_store.copy())
    yield next(gen)
    gen.close()


# ---- the Host of a loopback sandbox ----


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:8000", "127.0.0.1:8000", "127.1.2.3", "[::1]:8000", "my.localhost"],
)
def test_a_loopback_sandbox_answers_loopback_hosts(sandbox: Sandbox, host: str) -> None:
    assert sandbox.client.get("/sandbox/health", headers={"host": host}).status_code == 200


@pytest.mark.parametrize(
    "path", ["/sandbox/health", f"/sandbox/partners/{TOKEN}?secrets=1", "/dashboard", "/docs"]
)
@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "10.0.0.5", "127.0.0.1.evil.example"]
)
def test_a_loopback_sandbox_refuses_other_hosts_dns_rebinding(
    sandbox: Sandbox, path: str, host: str
) -> None:
    r = sandbox.client.get(path, headers={"host": host})
    assert r.status_code == 421
    doc = r.json()
    assert doc["error"] == "wrong_host" and "public_url" in doc["message"]
    assert "Loan@apis" not in r.text


def test_the_host_of_public_url_is_answered_on_loopback(template_store: Store) -> None:
    settings = settings_for(server={"public_url": "https://sandbox.tunnel.example"})
    gen = make_sandbox(settings, store=template_store.copy())
    sb = next(gen)
    try:
        ok = sb.client.get("/sandbox/health", headers={"host": "sandbox.tunnel.example"})
        assert ok.status_code == 200
        other = sb.client.get("/sandbox/health", headers={"host": "evil.example"})
        assert other.status_code == 421
    finally:
        gen.close()


def test_a_shared_sandbox_answers_any_host(template_store: Store) -> None:
    settings = settings_for(server={"host": "0.0.0.0", "admin_token": "x" * 20})
    gen = make_sandbox(settings, store=template_store.copy())
    sb = next(gen)
    try:
        assert (
            sb.client.get("/sandbox/health", headers={"host": "staging.example"}).status_code == 200
        )
    finally:
        gen.close()


def test_the_lender_endpoints_answer_any_host(sandbox: Sandbox) -> None:
    """They are the protocol, open to whoever holds a partner's key."""
    r = sandbox.client.post(
        "/get-bank-list",
        json=sandbox.envelope({"action_type": 1, "product_id": "1001"}),
        headers={"host": "any.example"},
    )
    assert r.status_code == 200 and r.json()["code"] == 0


# ---- writes from another origin ----


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:9999"])
def test_a_write_from_a_page_of_another_origin_is_refused(sandbox: Sandbox, origin: str) -> None:
    for path in (f"/sandbox/partners/{TOKEN}/callbacks/pause", "/dashboard/do/pause"):
        r = sandbox.client.post(path, headers={"origin": origin, "host": "localhost"})
        assert r.status_code == 403 and r.json()["error"] == "forbidden", path
    assert sandbox.control("GET", f"/sandbox/partners/{TOKEN}")["callbacks_paused"] is False


def test_a_write_from_the_sandboxs_own_pages_goes_through(sandbox: Sandbox) -> None:
    r = sandbox.client.post(
        f"/sandbox/partners/{TOKEN}/callbacks/pause",
        headers={"origin": "http://localhost", "host": "localhost"},
    )
    assert r.status_code == 200 and r.json()["callbacks_paused"] is True


# ---- JSON bodies only ----


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("text/plain", '{"by": "1d"}'),
        ("application/x-www-form-urlencoded", "by=1d"),
        ("multipart/form-data; boundary=x", "--x--"),
        (None, '{"by": "1d"}'),
    ],
)
def test_a_control_write_that_is_not_json_is_a_415(
    sandbox: Sandbox, content_type: str | None, body: str
) -> None:
    before = sandbox.now()
    headers = {"content-type": content_type} if content_type else {}
    r = sandbox.client.post(
        f"/sandbox/partners/{TOKEN}/clock/advance", content=body.encode(), headers=headers
    )
    assert r.status_code == 415
    doc = r.json()
    assert doc["error"] == "unsupported_media_type" and "application/json" in doc["message"]
    assert sandbox.now() == before


def test_an_empty_form_post_is_refused_too(sandbox: Sandbox) -> None:
    """A cross-site <form> to a route that takes no body: its content type gives it away."""
    for route in ROUTES:
        if route.method not in WRITES:
            continue
        r = sandbox.client.request(
            route.method,
            url_of(route.path),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 415, route.path


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/merge-patch+json"],
)
def test_json_content_types_are_taken(sandbox: Sandbox, content_type: str) -> None:
    r = sandbox.client.post(
        f"/sandbox/partners/{TOKEN}/clock/advance",
        content=b'{"by": "1m"}',
        headers={"content-type": content_type},
    )
    assert r.status_code == 200


def test_a_write_without_a_body_needs_no_content_type(sandbox: Sandbox) -> None:
    r = sandbox.client.post(f"/sandbox/partners/{TOKEN}/callbacks/pause")
    assert r.status_code == 200


# ---- max_body_bytes everywhere ----


def too_big(sb: Sandbox, method: str, url: str, **kw: object) -> None:
    r = sb.client.request(method, url, content=b"{" + b" " * LIMIT + b"}", **kw)  # type: ignore[arg-type]
    assert r.status_code == 413, (method, url, r.text[:200])
    doc = r.json()
    assert doc["code"] == 10013 and str(LIMIT) in (doc.get("message") or doc.get("msg", ""))


def test_every_control_route_refuses_a_body_over_the_limit(small: Sandbox) -> None:
    for route in ROUTES:
        too_big(
            small, route.method, url_of(route.path), headers={"content-type": "application/json"}
        )


def chunks() -> Iterator[bytes]:
    """A body without a Content-Length (chunked): over the limit only once it streams in."""
    yield b'{"data": "'
    for _ in range(LIMIT // 100 + 1):
        yield b"x" * 100
    yield b'"}'


def test_a_streamed_body_is_cut_off_at_the_limit(small: Sandbox) -> None:
    for route in ROUTES:
        if route.body is None:
            continue  # a route that takes no body never reads one
        r = small.client.request(
            route.method,
            url_of(route.path),
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413 and r.json()["code"] == 10013, route.path


def test_the_dashboard_forms_login_and_borrower_pages_refuse_a_body_over_the_limit(
    small: Sandbox,
) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    for url in (
        "/dashboard/do/advance",
        "/dashboard/login",
        "/dashboard/logout",
        "/repay/demo/X?sig=y",
    ):
        too_big(small, "POST", url, headers=form)
        r = small.client.post(url, content=chunks(), headers=form)
        assert r.status_code in (413, 404), url  # the repay page may look its link up first
    too_big(small, "POST", "/get-bank-list", headers={"content-type": "application/json"})


# ---- an open sandbox still honours a token it is sent ----


def test_an_open_sandbox_needs_no_token_but_honours_one(sandbox: Sandbox) -> None:
    made = sandbox.control("POST", "/sandbox/partners", {"partner_token": "team-b"})
    assert sandbox.client.get("/sandbox/partners").status_code == 200  # no token: the admin
    as_b = {"authorization": f"Bearer {made['control_token']}"}
    assert sandbox.client.get("/sandbox/partners", headers=as_b).status_code == 403
    assert sandbox.client.get("/sandbox/partners/team-b", headers=as_b).status_code == 200
    unknown = {"authorization": "Bearer lsp_nobody"}
    assert sandbox.client.get("/sandbox/partners/team-b", headers=unknown).status_code == 401
