"""The dashboard: what a person sees in the browser, and its two forms."""

from __future__ import annotations

from conftest import SUFFIX, Sandbox


def test_index_lists_partners_orders_and_requests(sandbox: Sandbox, loan) -> None:
    o = loan("dash", SUFFIX["approve"]).create().submit()
    page = sandbox.client.get("/dashboard")
    assert page.status_code == 200
    text = page.text
    assert "Demo aggregator" in text and o.order_no in text and o.p.name in text
    assert "90 reviewing" in text  # the status pill of the order
    assert "/push-supplement-info" in text  # the journal, decrypted
    assert "callbacks wait until one is set" in text  # the demo partner has no URL


def test_status_filter(sandbox: Sandbox, loan) -> None:
    kept = loan("kept", SUFFIX["approve"]).create().submit()
    other = loan("other", SUFFIX["approve"]).create()
    page = sandbox.client.get("/dashboard?partner=demo&status=90").text
    orders = page.split("Recent requests")[0]  # the journal below lists both
    assert kept.order_no in orders and other.order_no not in orders


def test_order_page_shows_timeline_and_callbacks(sandbox: Sandbox, loan) -> None:
    o = loan("page", SUFFIX["approve"]).disbursed()
    page = sandbox.client.get(f"/dashboard/orders/{o.order_no}?partner=demo")
    assert page.status_code == 200
    for text in (
        "push-basic-info",
        "due event: review",
        "disburse",
        "/callback-repay-plan",
        "170 repaying",
    ):
        assert text in page.text
    missing = sandbox.client.get("/dashboard/orders/NOPE000000?partner=demo")
    assert missing.status_code == 404 and "NOPE000000" in missing.text


def test_advance_form_moves_the_clock_and_fires_events(sandbox: Sandbox, loan) -> None:
    o = loan("adv", SUFFIX["approve"]).create().submit()
    r = sandbox.client.post(
        "/dashboard/clock", data={"partner": "demo", "by": "5m"}, follow_redirects=False
    )
    assert r.status_code == 303 and "events%20fired" in r.headers["location"]
    assert o.status == 100
    bad = sandbox.client.post("/dashboard/clock", data={"partner": "demo", "by": "soon"})
    assert bad.status_code == 200 and "cannot read duration" in bad.text


def test_transition_form_forces_a_trigger_or_says_why_not(sandbox: Sandbox, loan) -> None:
    o = loan("force", SUFFIX["review_stuck"]).create().submit()
    r = sandbox.client.post(
        f"/dashboard/orders/{o.order_no}/transition", data={"partner": "demo", "trigger": "approve"}
    )
    assert r.status_code == 200 and "approve: done" in r.text
    assert o.status == 100
    r = sandbox.client.post(
        f"/dashboard/orders/{o.order_no}/transition", data={"partner": "demo", "trigger": "settle"}
    )
    assert "allowed:" in r.text and o.status == 100
