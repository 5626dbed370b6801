"""The dashboard in a real browser, as a tester uses it, against a real server
(`lender_sandbox_server`, manual clock, callbacks to its receiver): open an order, advance
the clock and watch the status and the callbacks change, force a transition, pay a code,
redeliver a callback, add a fault; the acceptance report and its evidence; the 中文 switch;
/docs deep links."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.browser

expect: Any = None  # playwright's, imported with the browser (it may be missing on a laptop)


@pytest.fixture(autouse=True)
def _expect(browser: Any) -> None:
    global expect
    from playwright.sync_api import expect as playwright_expect

    expect = playwright_expect


def submitted(server) -> Any:
    """An order under review (90): 05 and 06 sent."""
    api, loan = server.client(), server.sample_order(scenario="approve")
    api.data("push-basic-info", loan.basic_info())
    api.data("push-supplement-info", loan.supplement_info())
    return loan


def disbursed(server) -> tuple[Any, str]:
    """An order paid out (170) and a full-repayment code."""
    api, loan = server.client(), submitted(server)
    server.clock.advance(minutes=5)
    api.data("push-bind-bank", loan.bind_bank())
    api.data("push-order-confirm", loan.confirm())
    server.clock.advance(minutes=5)
    return loan, api.data("get-repay-detail", loan.repay_detail(1))["repay_code"]


def order_page(page, server, order_no: str) -> None:
    page.goto(f"{server.base_url}/dashboard/orders/{order_no}?partner=demo")


def test_open_an_order_advance_the_clock_and_watch_it_move(page, lender_sandbox_server):
    server = lender_sandbox_server
    loan = submitted(server)
    page.goto(f"{server.base_url}/dashboard?partner=demo")
    page.get_by_role("link", name=loan.order_no).click()
    summary = page.locator("#summary")
    expect(summary.locator("h1")).to_contain_text("90 reviewing")
    page.locator("#form-advance input[name=by]").fill("5m")
    page.locator("#form-advance").get_by_role("button", name="Advance").click()
    expect(page.get_by_role("status")).to_contain_text("events fired")
    expect(summary.locator("h1")).to_contain_text("100 approved")
    rows = page.locator("#deliveries tr[id^=callback-]")
    expect(rows).to_have_count(3)  # 90, 100 and the approval result
    for n in range(3):  # delivered by the server's worker; the page refreshes itself
        expect(rows.nth(n)).to_contain_text("delivered", timeout=15_000)
    timeline = page.locator("#timeline tr")
    expect(timeline.nth(1)).to_contain_text("new order")
    expect(timeline.nth(1)).to_contain_text("05 push-basic-info")
    expect(timeline.nth(1)).not_to_contain_text("None")


def test_force_a_transition(page, lender_sandbox_server):
    server = lender_sandbox_server
    api, loan = server.client(), server.sample_order(scenario="review_stuck")
    api.data("push-basic-info", loan.basic_info())
    api.data("push-supplement-info", loan.supplement_info())
    order_page(page, server, loan.order_no)
    actions = page.locator("#actions")
    actions.locator("select[name=trigger]").select_option("reject")
    actions.locator("input[name=reason]").fill("Data tidak lengkap")
    actions.get_by_role("button", name="Fire").click()
    expect(page.get_by_role("status")).to_contain_text("reject: done, the order is now 110")
    expect(page.locator("#summary h1")).to_contain_text("110 rejected")
    assert server.order(loan.order_no)["status"] == 110
    actions = page.locator("#actions")
    expect(actions).to_contain_text("Final status: no trigger applies.")


def test_an_illegal_transition_looks_like_an_error(page, lender_sandbox_server):
    server = lender_sandbox_server
    loan = submitted(server)
    order_page(page, server, loan.order_no)
    page.locator("#form-advance input[name=by]").fill("1x")
    page.locator("#form-advance").get_by_role("button", name="Advance").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Error:")
    expect(alert).to_contain_text("cannot read duration")
    color = alert.evaluate("e => getComputedStyle(e).color")
    assert color == "rgb(161, 29, 29)"  # the error red, not the success green


def test_pay_a_code(page, lender_sandbox_server):
    server = lender_sandbox_server
    loan, code = disbursed(server)
    order_page(page, server, loan.order_no)
    row = page.locator("#codes tr", has_text=code)
    expect(row).to_contain_text("open")
    row.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("status")).to_contain_text("the order is now 200")
    expect(page.locator("#summary h1")).to_contain_text("200 settled")
    expect(page.locator("#codes tr", has_text=code)).to_contain_text("paid")


def test_redeliver_a_callback(page, lender_sandbox_server):
    server = lender_sandbox_server
    server.callbacks.fail_next(5)  # every attempt of the first callback is refused: dead
    loan = submitted(server)
    first = server.control.callbacks("demo", loan.order_no)[0]["id"]
    order_page(page, server, loan.order_no)
    row = page.locator(f"#callback-{first}")
    # the demo partner's clock is manual: its retries wait for the clock to reach them
    expect(row).to_contain_text("manual clock: advance it", timeout=15_000)
    server.control.advance_clock(3600)
    page.reload()
    expect(page.locator(f"#callback-{first}")).to_contain_text("dead", timeout=15_000)
    expect(row).to_contain_text("HTTP 500")
    server.callbacks.recover()  # the receiver is fixed: send it again
    row.get_by_role("button", name="Redeliver").click()
    expect(page.get_by_role("status")).to_contain_text(f"Callback #{first} will be sent again")
    expect(page.locator(f"#callback-{first}")).to_contain_text("delivered", timeout=15_000)
    detail = page.locator(f"#callback-{first}-detail")
    detail.locator("summary").click()
    expect(detail).to_contain_text("HTTP 200")  # six attempts: five refused, then this one
    statuses = [b["order_status"] for b in server.callbacks.received("callback-order-status")]
    assert statuses.count(90) == 1  # (the advance also approved it: 100 went out meanwhile)


def test_add_a_fault_and_see_it_answer(page, lender_sandbox_server):
    server = lender_sandbox_server
    loan = submitted(server)
    page.goto(f"{server.base_url}/dashboard?partner=demo")
    form = page.locator("#form-add-fault")
    form.locator("select[name=kind]").select_option("business_error")
    form.locator("select[name=path]").select_option("/get-order-status")
    form.locator("input[name=code]").fill("10099")
    form.get_by_role("button", name="Add").click()
    expect(page.get_by_role("status")).to_contain_text("business_error")
    rules = page.locator("#faults tr", has_text="business_error")
    expect(rules).to_contain_text("/get-order-status")
    answer = server.client().call("get-order-status", loan.order())
    assert answer["code"] == 10099
    page.reload()
    request = page.locator("#requests tr", has_text="/get-order-status").first
    expect(request.locator("td").nth(3).locator(".pill.bad")).to_have_text("10099")
    expect(request.locator("td").nth(4)).to_contain_text("business_error")  # the fault
    page.locator("#faults tr", has_text="business_error").get_by_role(
        "button", name="Delete"
    ).click()
    expect(page.locator("#faults")).to_contain_text("No fault rules")
    server.control.clear_faults()


def test_the_clock_can_be_set_switched_and_reset(page, lender_sandbox_server):
    server = lender_sandbox_server
    submitted(server)
    page.goto(f"{server.base_url}/dashboard?partner=demo")
    page.on("dialog", lambda dialog: dialog.accept())  # "Wipe every order ...?"
    page.locator("#form-set-clock input[name=to]").fill("2030-01-01T09:00:00+07:00")
    page.locator("#form-set-clock").get_by_role("button", name="Set").click()
    expect(page.locator("#clock-now")).to_contain_text("2030-01-01 09:00:00")
    page.locator("#form-clock-mode select[name=mode]").select_option("scaled")
    page.locator("#form-clock-mode input[name=rate]").fill("600")
    page.locator("#form-clock-mode").get_by_role("button", name="Change").click()
    expect(page.get_by_role("status")).to_contain_text("Clock mode: scaled")
    before = page.locator("#clock-now").inner_text()
    expect(page.locator("#clock-now")).not_to_have_text(before, timeout=10_000)  # it runs
    page.get_by_role("button", name="Reset demo").click()
    expect(page.get_by_role("status")).to_contain_text("Reset: 1 orders deleted")
    expect(page.locator("#orders")).to_contain_text("No orders yet")


def test_the_acceptance_report_and_its_evidence(page, lender_sandbox_server):
    server = lender_sandbox_server
    server.callbacks.fail_next(1)  # the first callback is refused: callbacks.acknowledged fails
    loan = submitted(server)
    server.callbacks.wait_for_requests(1, timeout=15)
    page.goto(f"{server.base_url}/dashboard?partner=demo")
    page.get_by_role("link", name="Acceptance report of demo").click()
    expect(page.locator("#verdict")).to_have_text("failed")
    row = page.locator('[id="check-callbacks.acknowledged"]')
    expect(row.locator(".pill").first).to_have_text("failed")
    expect(row).to_contain_text("HTTP 500")
    row.get_by_role("link", name=re.compile("callback attempt")).first.click()
    expect(page.locator("#summary h1")).to_contain_text(loan.order_no)  # the order's page
    assert re.search(r"#callback-\d+$", page.url)  # at the refused callback's row
    page.go_back()
    page.on("dialog", lambda dialog: dialog.accept())  # "Start a new acceptance run ...?"
    page.get_by_role("button", name="Start a new run").click()
    expect(page.get_by_role("status")).to_contain_text("A new acceptance run started")
    expect(page.locator("#verdict")).to_have_text("incomplete")  # nothing seen since
    page.get_by_role("link", name="中文").click()
    expect(page.locator("#summary h1")).to_contain_text("demo 的联调验收报告")
    expect(page.locator("#verdict")).to_have_text("未完成")


def test_the_dashboard_in_chinese(page, lender_sandbox_server):
    server = lender_sandbox_server
    loan = submitted(server)
    page.goto(f"{server.base_url}/dashboard?partner=demo")
    page.get_by_role("link", name="中文").click()
    expect(page.locator("#orders h2")).to_have_text("订单")
    expect(page.locator("#orders")).to_contain_text("90 审批中")
    page.get_by_role("link", name=loan.order_no).click()  # the choice sticks
    expect(page.locator("#timeline h2")).to_have_text("状态时间线")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")


def test_docs_deep_link_opens_its_section(page, lender_sandbox_server):
    server = lender_sandbox_server
    page.goto(f"{server.base_url}/docs#push_basic_info")
    section = page.locator("details#push_basic_info")
    expect(section).to_have_attribute("open", "")
    expect(section).to_contain_text("no schooling")  # a coded field's meanings
    assert section.evaluate("e => e.getBoundingClientRect().top") < 100  # scrolled to it
    page.locator("nav a", has_text="/sandbox/partners/{token}/postman.json").click()
    expect(page.locator("details#get_sandbox_partners_token_postman_json")).to_have_attribute(
        "open", ""
    )
    link = page.locator("nav a", has_text="postman.json")
    assert re.search(r"/sandbox/partners/\{token\}/postman\.json", link.inner_text())
