"""Fuzz the pages a person opens: the borrower's contract and repayment pages (signed links,
non-ASCII signatures), product icons, and the dashboard's pages and forms. Whatever the
link, the answer is a page (or a 303 back to one), never HTTP 5xx.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import pytest
from fuzzkit import TOKEN, World, check_readable, examples, hostile_text, make_world, segment
from hypothesis import given
from hypothesis import strategies as st

from sandbox.web.dashboard_actions import ACTIONS

URL_TEXT = 2000


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    yield from make_world()


def _segment(text: str) -> bool:
    return text not in ("", ".", "..") and "/" not in text


def links(world: World) -> st.SearchStrategy[str]:
    """A page link: a real signed one with a part replaced, or one made of hostile parts."""
    real = [urlsplit(u) for u in world.links]
    part = hostile_text(URL_TEXT).filter(_segment)
    tokens = st.one_of(st.just(TOKEN), part)
    orders = st.one_of(st.sampled_from([o.order_no for o in world.orders.values()]), part)
    sigs = st.one_of(st.sampled_from([u.query.removeprefix("sig=") for u in real]), part)
    return st.builds(
        lambda page, token, order_no, sig: (
            f"/{page}/{segment(token)}/{segment(order_no)}?"
            + urlencode({"sig": sig}, errors="surrogatepass")
        ),
        st.sampled_from(["contract", "repay"]),
        tokens,
        orders,
        sigs,
    )


def test_a_borrower_page_answers_every_link(world: World) -> None:
    @examples(150)
    @given(link=links(world), method=st.sampled_from(["GET", "POST"]))
    def one(link: str, method: str) -> None:
        if link.startswith("/contract"):
            method = "GET"
        r = world.client.request(method, link, follow_redirects=False)
        assert r.status_code < 500, f"{method} {link[:300]}: HTTP {r.status_code}"
        assert r.status_code in (200, 303, 404, 409), f"{method} {link[:300]}: {r.status_code}"

    one()
    check_readable(world)


def test_a_product_icon_answers_every_name(world: World) -> None:
    @examples(40)
    @given(name=st.one_of(st.sampled_from(["1001", "1002"]), hostile_text(URL_TEXT)))
    def one(name: str) -> None:
        r = world.client.get(f"/assets/product/{segment(name)}.svg")
        assert r.status_code in (200, 404), f"{name[:100]!r}: HTTP {r.status_code}"

    one()


def _csrf(world: World) -> str:
    """The CSRF token of the client's dashboard session (its first page starts the session)."""
    m = re.search(r'name="csrf" value="([^"]+)"', world.client.get("/dashboard").text)
    assert m, "every dashboard form carries the session's CSRF token"
    return m.group(1)


QUERY_NAMES = ("partner", "status", "limit", "cursor", "lang")  # what the pages read


def test_the_dashboard_answers_every_page_and_form(world: World) -> None:
    """Every page with hostile query and path text, every form action with hostile fields
    (and the session's CSRF token, so the action really runs): a page or a 303, never 5xx."""
    orders = [o.order_no for o in world.orders.values()]
    text = hostile_text(URL_TEXT)
    partners = st.one_of(st.just(TOKEN), text)
    query = st.fixed_dictionaries(
        {}, optional={k: partners if k == "partner" else text for k in QUERY_NAMES}
    )
    form = st.fixed_dictionaries(
        {},
        optional={
            name: st.one_of(st.just(TOKEN), text) if name == "partner" else text
            for name in ("partner", "by", "at", "mode", "url", "trigger", "amount", "reason",
                         "repay_code", "id", "kind", "path", "order_no", "back")
        },
    )  # fmt: skip
    csrf = _csrf(world)

    @examples(150)
    @given(
        page=st.sampled_from(["/dashboard", "/dashboard/orders/{}",
                              "/dashboard/partners/{}/conformance"]),
        name=st.one_of(st.sampled_from(orders), text.filter(_segment)),
        action=st.one_of(st.sampled_from(sorted(ACTIONS)), text.filter(_segment)),
        q=query,
        data=form,
        post=st.booleans(),
    )  # fmt: skip
    def one(page: str, name: str, action: str, q: dict, data: dict, post: bool) -> None:
        if post:
            url = f"/dashboard/do/{segment(action)}"
            body = urlencode({**data, "csrf": csrf}, errors="surrogatepass")
            headers = {"content-type": "application/x-www-form-urlencoded"}
            r = world.client.post(url, content=body, headers=headers)
        else:
            url = page.format(segment(name)) + "?" + urlencode(q, errors="surrogatepass")
            r = world.client.get(url)
        assert r.status_code < 500, f"{url[:300]} {data!r:.300}: HTTP {r.status_code}"
        assert r.status_code in (200, 303, 403, 404), f"{url[:300]}: HTTP {r.status_code}"

    one()
    check_readable(world)
