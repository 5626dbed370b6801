"""Every list of the control API pages the same way (core.paging): `limit`, an opaque
`cursor`, the next page in `Link` and `X-Next-Cursor`; following the cursors visits every row
once, in the list's order, and a list's answer keeps its shape.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import SUFFIX, TOKEN, Sandbox

from sandbox.web.control import ROUTES


def walk(sandbox: Sandbox, url: str) -> tuple[list[Any], list[Any]]:
    """Follow the `Link` headers from `url`: (every page's body, the responses)."""
    bodies, responses = [], []
    while True:
        r = sandbox.client.get(url)
        assert r.status_code == 200, r.text
        bodies.append(r.json())
        responses.append(r)
        link = r.headers.get("link")
        if link is None:
            assert "x-next-cursor" not in r.headers
            return bodies, responses
        assert link.endswith('>; rel="next"') and link.startswith("</sandbox/")
        assert f"cursor={r.headers['x-next-cursor']}" in link
        url = link[1 : link.index(">")]


@pytest.fixture
def busy(sandbox: Sandbox, loan) -> Sandbox:
    """Seven orders with callbacks, their journal, five partners, five fault rules."""
    sandbox.control("PATCH", f"/sandbox/partners/{TOKEN}", {"callback_url": "http://127.0.0.1:9"})
    for i in range(7):
        loan(f"paging-{i}", SUFFIX["approve"]).create().submit()
    for i in range(4):
        sandbox.control("POST", "/sandbox/partners", {"partner_token": f"team-{i}"})
    for i in range(5):
        sandbox.control("POST", "/sandbox/faults", {"kind": "latency", "ms": i + 1, "count": 1})
    return sandbox


def test_following_the_cursors_gives_every_order_once_newest_first(busy: Sandbox) -> None:
    everything = busy.control("GET", "/sandbox/orders")
    pages, _ = walk(busy, "/sandbox/orders?limit=3")
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [o["order_no"] for p in pages for o in p] == [o["order_no"] for o in everything]
    assert len(everything) == 7


def test_filters_stay_on_every_page(busy: Sandbox) -> None:
    pages, _ = walk(busy, f"/sandbox/orders?partner_token={TOKEN}&status=90&limit=2")
    rows = [o for p in pages for o in p]
    assert len(rows) == 7 and {o["status"] for o in rows} == {90}
    pages, _ = walk(busy, "/sandbox/orders?status=100&limit=2")
    assert pages == [[]]  # nothing approved yet: one empty page, no next


def test_journal_pages_newest_first(busy: Sandbox) -> None:
    everything = busy.control("GET", f"/sandbox/journal?partner_token={TOKEN}&limit=1000")
    pages, _ = walk(busy, f"/sandbox/journal?partner_token={TOKEN}&limit=4")
    assert [e["id"] for p in pages for e in p] == [e["id"] for e in everything]
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids, reverse=True) and len(ids) == 14


def test_callback_pages_go_back_in_time_each_oldest_first(busy: Sandbox) -> None:
    everything = busy.control("GET", f"/sandbox/callbacks?partner_token={TOKEN}&limit=1000")
    pages, _ = walk(busy, f"/sandbox/callbacks?partner_token={TOKEN}&limit=3")
    for page in pages:
        assert [d["id"] for d in page] == sorted(d["id"] for d in page)
    assert sorted(d["id"] for p in pages for d in p) == [d["id"] for d in everything]
    assert pages[0][-1]["id"] == everything[-1]["id"]  # the first page: the newest


def test_partners_and_fault_rules_page_oldest_first(busy: Sandbox) -> None:
    partners, _ = walk(busy, "/sandbox/partners?limit=2")
    tokens = [p["partner_token"] for page in partners for p in page]
    assert tokens == [p["partner_token"] for p in busy.control("GET", "/sandbox/partners")]
    assert {"team-0", "team-3", TOKEN} <= set(tokens) and len(tokens) == len(set(tokens))
    rules, _ = walk(busy, "/sandbox/faults?limit=2")
    assert all(set(page) == {"rules"} for page in rules)  # the shape PUT takes back
    assert [r["ms"] for page in rules for r in page["rules"]] == [1, 2, 3, 4, 5]


def test_a_row_added_meanwhile_does_not_shift_the_next_page(busy: Sandbox, loan) -> None:
    first = busy.client.get("/sandbox/orders?limit=3")
    seen = [o["order_no"] for o in first.json()]
    loan("paging-late", SUFFIX["approve"]).create()
    cursor = first.headers["x-next-cursor"]
    second = busy.control("GET", f"/sandbox/orders?limit=3&cursor={cursor}")
    everything = [o["order_no"] for o in busy.control("GET", "/sandbox/orders")]
    assert [o["order_no"] for o in second] == everything[4:7]  # after the 3 seen, not shifted
    assert not set(seen) & {o["order_no"] for o in second}


@pytest.mark.parametrize(
    "url",
    [
        "/sandbox/orders?cursor=nonsense",
        "/sandbox/orders?cursor=" + "A" * 300,
        "/sandbox/journal?cursor=WyJvcmRlcnMiLDVd",  # an orders cursor
        "/sandbox/callbacks?cursor=WyJjYWxsYmFja3MiLCJ4Il0",  # ["callbacks","x"]
        "/sandbox/partners?cursor=WyJwYXJ0bmVycyIsMSwxXQ",  # token is not a string
        "/sandbox/faults?cursor=WyJmYXVsdHMiLDk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5XQ",  # > 2**63
        "/sandbox/orders?limit=0",
        "/sandbox/orders?limit=1001",
        "/sandbox/partners?limit=abc",
    ],
)
def test_a_bad_cursor_or_limit_is_a_400_naming_it(sandbox: Sandbox, url: str) -> None:
    r = sandbox.client.get(url)
    assert r.status_code == 400, r.text
    doc = r.json()
    assert doc["error"] == "invalid_field"
    assert ("cursor" in doc["message"]) or ("limit" in doc["message"])


def test_every_list_route_pages_and_documents_its_headers(sandbox: Sandbox) -> None:
    lists = {r.path for r in ROUTES if r.paged}
    assert lists == {"/orders", "/journal", "/callbacks", "/partners", "/faults"}
    doc = sandbox.control("GET", "/openapi.json")
    for path in lists:
        op = doc["paths"]["/sandbox" + path]["get"]
        assert {"Link", "X-Next-Cursor"} <= set(op["responses"]["200"]["headers"])
        names = {p["name"] for p in op["parameters"]}
        assert {"limit", "cursor"} <= names


def test_the_python_client_follows_the_pages(busy: Sandbox) -> None:
    from sandbox.client import SandboxControl

    control = SandboxControl("http://localhost", http=busy.client)
    orders = list(control.pages("/sandbox/orders", limit=2))
    assert [o["order_no"] for o in orders] == [
        o["order_no"] for o in busy.control("GET", "/sandbox/orders")
    ]
    assert len(list(control.pages("/sandbox/faults", limit=2))) == 5  # the rules, unwrapped
