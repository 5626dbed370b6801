"""The dashboard: what a tester sees (English and 中文), its forms (one handler), the
self-refresh while a clock moves, and the vendored script it needs."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import SUFFIX, Sandbox, basic_payload, person

from sandbox.core.banks import PAYOUT_FAILURES
from sandbox.harness.sink import MemorySink
from sandbox.services.outbox import deliver_now
from sandbox.web import i18n

ROOT = Path(__file__).resolve().parents[2]
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"  # 2.0.11


def flash(html: str) -> tuple[str, str] | None:
    """(kind, text) of the page's flash message."""
    m = re.search(r'<p class="flash (\w+)" role="(\w+)">(.*?)</p>', html, re.S)
    if not m:
        return None
    assert (m.group(1) == "error") == (m.group(2) == "alert")  # an error is announced as one
    return m.group(1), re.sub(r"<[^>]+>", "", m.group(3))


def csrf(sandbox: Sandbox) -> str:
    """The CSRF token of the client's dashboard session (the first page starts the session)."""
    page = sandbox.client.get("/dashboard").text
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, "every dashboard form carries the session's CSRF token"
    return m.group(1)


def do(sandbox: Sandbox, action: str, back: str = "/dashboard?partner=demo", **form: str):
    """Post a dashboard form (with the session's CSRF token) and follow it back to its page."""
    data = {"back": back, "csrf": csrf(sandbox), **form}
    return sandbox.client.post(f"/dashboard/do/{action}", data=data)


def deliver(sandbox: Sandbox, fail_first: int = 0) -> MemorySink:
    """Point demo's callbacks at an in-process receiver and deliver what is due."""
    sandbox.control("PATCH", "/sandbox/partners/demo", {"callback_url": "http://hooks.invalid"})
    sink = MemorySink(partners={"demo": sandbox.codec})
    sink.fail_next(fail_first)
    deliver_now(sandbox.lender, sink)
    return sink


# ---- the partner page ----


def test_index_lists_partners_orders_and_requests(sandbox: Sandbox, loan) -> None:
    o = loan("dash", SUFFIX["approve"]).create().submit()
    page = sandbox.client.get("/dashboard")
    assert page.status_code == 200
    text = page.text
    assert "Demo aggregator" in text and o.order_no in text and o.p.name in text
    assert "90 reviewing" in text  # the status pill of the order
    assert "/push-supplement-info" in text  # the journal, decrypted
    assert "callbacks wait until one is set" in text  # the demo partner has no URL
    orders = text.split('id="orders"')[1].split('id="faults"')[0]
    assert "virtual</small>" in orders  # updated and due: the partner's clock
    requests = text.split('id="requests"')[1]
    assert "wall clock</small>" in requests and "virtual</small>" in requests


def test_status_filter(sandbox: Sandbox, loan) -> None:
    kept = loan("kept", SUFFIX["approve"]).create().submit()
    other = loan("other", SUFFIX["approve"]).create()
    page = sandbox.client.get("/dashboard?partner=demo&status=90").text
    orders = page.split('id="orders"')[1].split('id="faults"')[0]
    assert kept.order_no in orders and other.order_no not in orders


def _orders_shown(html: str) -> list[str]:
    """The order numbers the orders card lists, top to bottom."""
    card = html.split('id="orders"')[1].split('id="faults"')[0]
    return re.findall(r'<a href="/dashboard/orders/([^"?]+)\?', card)


def _pager(html: str, name: str) -> str | None:
    """The href of the orders card's `first` or `next` link, unescaped (None: not there)."""
    m = re.search(rf'<a id="orders-{name}"[^>]* href="([^"]+)"', html)
    return m.group(1).replace("&amp;", "&") if m else None


def test_the_orders_come_a_page_at_a_time_newest_first(sandbox: Sandbox, loan) -> None:
    made = [loan(f"page-{i}", SUFFIX["approve"]).create() for i in range(5)]
    for o in made[1::2]:
        o.submit()  # 90: orders 1 and 3
    newest_first = [o.order_no for o in reversed(made)]
    url: str | None = "/dashboard?partner=demo&limit=2"
    pages = []
    while url:
        page = sandbox.client.get(url)
        assert page.status_code == 200
        pages.append(_orders_shown(page.text))
        first = _pager(page.text, "first")
        assert (first == "/dashboard?partner=demo&limit=2") == (len(pages) > 1)  # not on page 1
        url = _pager(page.text, "next")
        assert url is None or "status=" not in url
    assert pages == [newest_first[:2], newest_first[2:4], newest_first[4:]]
    assert "90 reviewing: 2" in page.text  # the counts are the partner's, not the page's

    first = sandbox.client.get("/dashboard?partner=demo&status=90&limit=1").text
    assert _orders_shown(first) == [made[3].order_no]
    following = _pager(first, "next")
    assert following and "status=90" in following and "limit=1" in following
    second = sandbox.client.get(following).text
    assert _orders_shown(second) == [made[1].order_no] and _pager(second, "next") is None
    assert 'href="/dashboard?partner=demo&amp;status=110&amp;limit=1"' in second  # size kept


def test_a_page_holds_fifty_orders_unless_asked_and_a_bad_cursor_is_not_found(
    sandbox: Sandbox, loan
) -> None:
    made = [loan(f"many-{i}", SUFFIX["approve"]).create().order_no for i in range(51)]
    for size in ("", "0", "1001", "abc"):  # not a page size: the usual one
        page = sandbox.client.get(f"/dashboard?partner=demo&limit={size}").text
        assert _orders_shown(page) == made[:0:-1]  # the newest 50
        assert _pager(page, "next") and _pager(page, "first") is None
    everything = sandbox.client.get("/dashboard?partner=demo&limit=1000").text
    assert _orders_shown(everything) == made[::-1] and _pager(everything, "next") is None
    bad = sandbox.client.get("/dashboard?partner=demo&cursor=nonsense")
    assert bad.status_code == 404 and "is not a cursor this list handed out" in bad.text
    journal = "WyJqb3VybmFsIiw1XQ"  # ["journal",5]: another list's cursor
    assert sandbox.client.get(f"/dashboard?partner=demo&cursor={journal}").status_code == 404


def test_counts_stop_at_the_cap_and_say_so(
    sandbox: Sandbox, loan, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox.services import overview

    made = [loan(f"cap-{i}", SUFFIX["approve"]).create() for i in range(4)]
    for o in made[1:]:
        o.submit()  # 90, and a callback each
    monkeypatch.setattr(overview, "COUNT_CAP", 2)
    page = sandbox.client.get("/dashboard?partner=demo").text
    assert "90 reviewing: 2+</a>" in page and "80 new: 1</a>" in page  # 3 and 1
    assert overview.callback_states(sandbox.lender, "demo") == {"pending": 3}  # the cap + 1
    callbacks = page.split('id="callbacks"')[1].split('id="orders"')[0]
    assert '<span class="pill pending">pending 2+</span>' in callbacks
    monkeypatch.setattr(overview, "COUNT_CAP", 3)
    page = sandbox.client.get("/dashboard?partner=demo").text
    assert "90 reviewing: 3</a>" in page and '<span class="pill pending">pending 3</span>' in page


def test_an_error_code_looks_like_an_error(sandbox: Sandbox, loan) -> None:
    sandbox.err("/get-order-status", {"order_no": "NOPE-00001", "product_id": "1001"}, 11001)
    requests = sandbox.client.get("/dashboard").text.split('id="requests"')[1]
    assert re.search(r'<span class="pill bad"[^>]*>11001</span>', requests)


def test_unknown_partner_is_a_404_page(sandbox: Sandbox) -> None:
    page = sandbox.client.get("/dashboard?partner=nobody")
    assert page.status_code == 404 and 'class="problem" role="alert"' in page.text
    assert "nobody" in page.text


# ---- the order page ----


def test_order_page_shows_timeline_callbacks_attempts_and_links(sandbox: Sandbox, loan) -> None:
    o = loan("page", SUFFIX["approve"]).disbursed()
    sink = deliver(sandbox, fail_first=1)  # the first attempt is refused; the retry waits
    first = sandbox.control("GET", f"/sandbox/callbacks?order_no={o.order_no}")[0]
    do(sandbox, "redeliver", id=str(first["id"]))  # ... so send it again now
    deliver_now(sandbox.lender, sink)
    page = sandbox.client.get(f"/dashboard/orders/{o.order_no}?partner=demo")
    assert page.status_code == 200
    text = page.text
    for shown in ("push-basic-info", "due event: review", "disburse", "/callback-repay-plan"):
        assert shown in text
    assert "170 repaying" in text
    timeline = text.split('id="timeline"')[1].split('id="deliveries"')[0]
    first = timeline.split("<tr>")[2]  # header, then the first row
    assert "None" not in first and "new order" in first and "05 push-basic-info" in first
    callbacks = text.split('id="deliveries"')[1]
    assert "HTTP 500" in callbacks and "sink told to fail" in callbacks  # the refused attempt
    assert callbacks.count("HTTP 200") >= 1 and " ms</td>" in callbacks  # latency
    assert "&#34;encode_data&#34;" in callbacks  # each request as sent
    assert '"order_status": 90' in callbacks  # and the body, decrypted
    assert "virtual</small>" in callbacks and "wall clock</small>" in callbacks
    links = re.findall(r'href="(http://[^"]+/(contract|repay)/demo/[^"]+)"', text)
    assert {kind for _, kind in links} == {"contract", "repay"}
    for url, _ in links:  # the borrower's pages open (signed links)
        path = url.split("://", 1)[1].split("/", 1)[1].replace("&amp;", "&")
        assert sandbox.client.get("/" + path).status_code == 200


def test_order_page_shows_why_a_payout_failed(sandbox: Sandbox, loan) -> None:
    o = loan("fail", SUFFIX["payout_fail_once"])
    o.create().submit().bind().review()
    o.confirm(o.get("/get-approval-result")["approval_amount"]).payout()
    assert o.status == 169
    text = sandbox.client.get(f"/dashboard/orders/{o.order_no}?partner=demo").text
    reason = re.search(r'<p class="problem" id="payout-error">(.*?)</p>', text, re.S)
    assert reason is not None
    code = re.search(r"<code>([A-Z_]+)</code>", reason.group(1))
    assert code is not None and PAYOUT_FAILURES[code.group(1)] in reason.group(1)


def test_a_missing_order_is_a_404_and_its_number_is_escaped(sandbox: Sandbox) -> None:
    evil = "<img src=x onerror=alert(1)>"
    page = sandbox.client.get(f"/dashboard/orders/{quote(evil, safe='')}?partner=demo")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert evil not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
    plain = sandbox.client.get("/dashboard/orders/NOPE000000?partner=demo")
    assert plain.status_code == 404 and "NOPE000000" in plain.text


# ---- the acceptance report ----


def checks_on(html: str) -> dict[str, str]:
    """check id -> its row on the acceptance-report page."""
    rows = re.findall(r'<tr id="check-([\w.]+)" class="check">(.*?)</tr>', html, re.S)
    return dict(rows)


def test_acceptance_report_page_shows_each_check_with_its_evidence(sandbox: Sandbox, loan) -> None:
    o = loan("accept", SUFFIX["approve"]).disbursed()  # scenario.approval passes
    deliver(sandbox, fail_first=1)  # callbacks.acknowledged fails: a refused attempt
    bad = basic_payload(person("acc-bad", SUFFIX["approve"]), "ACC0000001")
    bad["order_info"]["user_mobile"] = "0812"  # payloads.valid fails: the request
    sandbox.err("/push-basic-info", bad, 10007)
    report = sandbox.control("GET", "/sandbox/partners/demo/conformance")
    assert {c["status"] for c in report["checks"]} == {"pass", "fail", "untested"}
    index = sandbox.client.get("/dashboard?partner=demo").text
    assert 'href="/dashboard/partners/demo/conformance"' in index
    page = sandbox.client.get("/dashboard/partners/demo/conformance")
    assert page.status_code == 200
    rows = checks_on(page.text)
    assert list(rows) == [c["id"] for c in report["checks"]]  # every check, catalogue order
    s = report["summary"]
    assert f"{s['pass']} passed, {s['fail']} failed, {s['untested']} untested" in page.text
    shown = {
        c["id"]: re.search(r'class="pill (\w+)">(\w+)<', rows[c["id"]]) for c in report["checks"]
    }
    label = {
        "pass": ("good", "passed"),
        "fail": ("bad", "failed"),
        "untested": ("wait", "untested"),
    }
    for c in report["checks"]:
        assert shown[c["id"]].groups() == label[c["status"]], c["id"]
    # evidence: the order's page, the refused attempt's row on it, the request's journal entry
    approval = rows["scenario.approval"]
    assert f'href="/dashboard/orders/{o.order_no}?partner=demo"' in approval
    refused = next(c for c in report["checks"] if c["id"] == "callbacks.acknowledged")
    attempt = refused["evidence"][0]
    assert "HTTP 500" in attempt["note"]
    anchor = f"/dashboard/orders/{o.order_no}?partner=demo#callback-{attempt['delivery']}"
    assert f'href="{anchor}"' in rows["callbacks.acknowledged"]
    assert f'id="callback-{attempt["delivery"]}"' in sandbox.client.get(anchor).text
    invalid = next(c for c in report["checks"] if c["id"] == "payloads.valid")
    link = invalid["evidence"][0]["link"]
    assert f'href="{link}"' in rows["payloads.valid"]
    assert sandbox.client.get(link).json()["code"] == 10007  # the journal entry opens
    assert "How to test" in rows["scenario.rejection"]  # untested: what would exercise it


def test_acceptance_report_in_chinese_and_a_new_run(sandbox: Sandbox, loan) -> None:
    loan("accept-zh", SUFFIX["approve"]).create().submit()
    back = "/dashboard/partners/demo/conformance"
    zh = sandbox.client.get(f"{back}?lang=zh").text
    assert "demo 的联调验收报告" in zh and "<h2>调用顺序 " in zh  # a section's title
    assert "06 补充信息只在 05 建单成功之后推送" in zh  # and a check's
    assert "06 is pushed only after 05" not in zh
    page = do(sandbox, "new_run", back=back, partner="demo").text
    assert flash(page) == ("ok", "已开始新一轮联调验收，保留了 1 个订单")
    assert "本轮验收开始于" in page and "0 个请求" in page
    assert set(re.findall(r'class="pill wait">(\w+)<', page)) == {"未测试"}


def test_acceptance_report_of_an_unknown_partner_is_a_404(sandbox: Sandbox) -> None:
    evil = "<img src=x onerror=alert(1)>"
    page = sandbox.client.get(f"/dashboard/partners/{quote(evil, safe='')}/conformance")
    assert page.status_code == 404 and 'class="problem" role="alert"' in page.text
    assert evil not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text


# ---- the forms: one handler, a flash message back on the page ----


def test_advance_moves_the_clock_and_fires_events(sandbox: Sandbox, loan) -> None:
    o = loan("adv", SUFFIX["approve"]).create().submit()
    r = sandbox.client.post(
        "/dashboard/do/advance",
        data={
            "partner": "demo",
            "by": "5m",
            "back": "/dashboard?partner=demo",
            "csrf": csrf(sandbox),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/dashboard?partner=demo"
    page = sandbox.client.get(r.headers["location"]).text
    assert flash(page) == ("ok", f"Clock advanced to {flash_time(page)}; 1 events fired")
    assert o.status == 100
    assert flash(sandbox.client.get("/dashboard").text) is None  # shown once


def flash_time(page: str) -> str:
    m = re.search(r"Clock advanced to ([^;]+);", page)
    assert m
    return m.group(1)


def test_errors_look_like_errors(sandbox: Sandbox) -> None:
    bad = do(sandbox, "advance", partner="demo", by="soon")
    assert bad.status_code == 200
    kind, text = flash(bad.text) or ("", "")
    assert kind == "error" and text.startswith("Error: ") and "cannot read duration" in text
    assert flash(do(sandbox, "set_clock", partner="demo", to="2020-01-01T00:00:00Z").text)[0] == (
        "error"
    )
    assert "forward" in flash(do(sandbox, "set_clock", partner="demo", to="2020-01-01").text)[1]
    assert flash(do(sandbox, "nonsense").text) == ("error", "Error: Unknown action nonsense")
    missing = flash(do(sandbox, "advance", by="1d").text)
    assert missing is not None and missing[0] == "error" and "partner is required" in missing[1]


def test_set_clock_and_mode(sandbox: Sandbox) -> None:
    now = sandbox.now()
    assert (
        flash(do(sandbox, "set_clock", partner="demo", to="2026-12-24T09:00:00+07:00").text)[0]
        == "ok"
    )
    assert sandbox.now() > now
    page = do(sandbox, "clock_mode", partner="demo", mode="scaled", rate="120").text
    assert flash(page) == ("ok", "Clock mode: scaled")
    clock = sandbox.control("GET", "/sandbox/partners/demo/clock")
    assert clock["mode"] == "scaled" and clock["rate"] == 120
    assert 'hx-trigger="every 2s"' in page  # a moving clock: the page refreshes itself
    assert flash(do(sandbox, "clock_mode", partner="demo", mode="scaled", rate="x").text)[0] == (
        "error"
    )


def test_a_manual_clock_page_does_not_poll(sandbox: Sandbox) -> None:
    assert "hx-trigger" not in sandbox.client.get("/dashboard").text


def test_reset_and_callback_url_and_pause(sandbox: Sandbox, loan) -> None:
    loan("gone", SUFFIX["approve"]).create()
    assert flash(do(sandbox, "reset", partner="demo").text) == ("ok", "Reset: 1 orders deleted")
    page = do(sandbox, "callback_url", partner="demo", callback_url="http://127.0.0.1:9").text
    assert flash(page) == ("ok", "Callback URL set to http://127.0.0.1:9")
    assert "<code>http://127.0.0.1:9</code>" in page
    assert "Resume callbacks" in do(sandbox, "pause", partner="demo").text
    assert sandbox.control("GET", "/sandbox/partners/demo")["callbacks_paused"] is True
    do(sandbox, "resume", partner="demo")
    assert sandbox.control("GET", "/sandbox/partners/demo")["callbacks_paused"] is False
    bad = flash(do(sandbox, "callback_url", partner="demo", callback_url="ftp://x").text)
    assert bad is not None and bad[0] == "error" and "http(s)" in bad[1]
    assert flash(do(sandbox, "callback_url", partner="demo", callback_url="").text) == (
        "ok",
        "Callback URL removed",
    )


def test_transition_forces_a_trigger_or_says_why_not(sandbox: Sandbox, loan) -> None:
    o = loan("force", SUFFIX["review_stuck"]).create().submit()
    back = f"/dashboard/orders/{o.order_no}?partner=demo"
    page = do(sandbox, "transition", back, partner="demo", order_no=o.order_no, trigger="approve")
    page_text = page.text
    assert flash(page_text) == ("ok", "approve: done, the order is now 100")
    assert o.status == 100 and f"<h1>{o.order_no}" in page_text  # back on the order's page
    refused = do(sandbox, "transition", back, partner="demo", order_no=o.order_no, trigger="settle")
    assert flash(refused.text)[0] == "error" and "allowed:" in refused.text and o.status == 100
    reduced = loan("reduced", SUFFIX["review_stuck"]).create().submit()
    do(
        sandbox,
        "transition",
        partner="demo",
        order_no=reduced.order_no,
        trigger="approve",
        amount="500000",
    )
    assert sandbox.detail(reduced.order_no)["approved_amount"] == 500_000
    bad = do(
        sandbox, "transition", partner="demo", order_no=reduced.order_no, trigger="x", amount="lots"
    )
    assert "amount must be a whole number" in flash(bad.text)[1]


def test_pay_a_code_from_the_order_page(sandbox: Sandbox, loan) -> None:
    o = loan("pay", SUFFIX["approve"]).disbursed()
    code = o.code()["repay_code"]
    back = f"/dashboard/orders/{o.order_no}?partner=demo"
    assert f'name="repay_code" value="{code}"' in sandbox.client.get(back).text  # a Pay button
    page = do(sandbox, "pay", back, repay_code=code).text
    assert flash(page)[0] == "ok" and "the order is now 200" in flash(page)[1]
    assert o.status == 200
    assert f'name="repay_code" value="{code}"' not in page  # paid: no button
    assert flash(do(sandbox, "pay", back, repay_code=code).text)[0] == "error"


def test_redeliver_a_callback(sandbox: Sandbox, loan) -> None:
    o = loan("again", SUFFIX["approve"]).create().submit()
    sink = deliver(sandbox)
    first = sandbox.control("GET", f"/sandbox/callbacks?order_no={o.order_no}")[0]
    back = f"/dashboard/orders/{o.order_no}?partner=demo"
    page = do(sandbox, "redeliver", back, id=str(first["id"])).text
    assert flash(page) == ("ok", f"Callback #{first['id']} will be sent again")
    deliver_now(sandbox.lender, sink)
    assert len(sink.received("callback-order-status")) == 2
    assert flash(do(sandbox, "redeliver", back, id="999999").text)[0] == "error"


def test_add_and_delete_a_fault(sandbox: Sandbox) -> None:
    page = do(
        sandbox,
        "add_fault",
        partner="demo",
        kind="business_error",
        path="/get-order-status",
        count="1",
        probability="1",
        ms="250",  # not a field of business_error: left out
        status="",
        code="10099",
    ).text
    kind, text = flash(page) or ("", "")
    assert kind == "ok" and text.endswith(": business_error")
    rules = sandbox.control("GET", "/sandbox/faults")["rules"]
    assert len(rules) == 1 and rules[0]["code"] == 10099 and rules[0]["partner_token"] == "demo"
    assert "ms" not in rules[0] or rules[0]["ms"] is None
    faults = page.split('id="faults"')[1].split('id="requests"')[0]
    assert "business_error" in faults and "/get-order-status" in faults
    sandbox.err("/get-order-status", {"order_no": "ORD-ANY-0001", "product_id": "1001"}, 10099)
    bad = do(
        sandbox, "add_fault", partner="demo", kind="latency", path="", count="", probability="2"
    )
    assert flash(bad.text)[0] == "error" and "probability" in flash(bad.text)[1]
    assert flash(do(sandbox, "delete_fault", id=str(rules[0]["id"])).text)[0] == "ok"
    assert sandbox.control("GET", "/sandbox/faults")["rules"] == []


def test_a_form_only_goes_back_to_the_dashboard(sandbox: Sandbox) -> None:
    for back in ("https://evil.example/", "//evil.example/dashboard", "/sandbox/reset", ""):
        r = sandbox.client.post(
            "/dashboard/do/advance",
            data={"partner": "demo", "by": "1m", "back": back, "csrf": csrf(sandbox)},
            follow_redirects=False,
        )
        assert r.headers["location"] == "/dashboard", back


def test_only_post_changes_anything(sandbox: Sandbox) -> None:
    assert sandbox.client.get("/dashboard/do/reset?partner=demo").status_code == 405


# ---- languages ----


def test_chinese_is_a_switch_that_sticks(sandbox: Sandbox, loan) -> None:
    o = loan("zh", SUFFIX["approve"]).create().submit()
    en = sandbox.client.get("/dashboard").text
    assert "Orders" in en and 'href="/dashboard?lang=zh"' in en
    zh = sandbox.client.get("/dashboard?lang=zh")
    assert "订单" in zh.text and "合作方" in zh.text and "90 审批中" in zh.text
    assert zh.text.startswith('<!doctype html>\n<html lang="zh-CN">')
    assert "订单" in sandbox.client.get(f"/dashboard/orders/{o.order_no}?partner=demo").text
    assert "订单" in sandbox.client.get("/dashboard").text  # the cookie keeps it
    back = sandbox.client.get("/dashboard?lang=en").text
    assert "Orders" in back and "订单" not in back.replace(">中文<", "")


def test_accept_language_picks_chinese_first(sandbox: Sandbox) -> None:
    page = sandbox.client.get("/dashboard", headers={"accept-language": "zh-CN,zh;q=0.9"})
    assert "仪表盘" in page.text


def test_flash_messages_are_translated(sandbox: Sandbox) -> None:
    sandbox.client.get("/dashboard?lang=zh")
    page = do(sandbox, "advance", partner="demo", by="1m").text
    assert flash(page)[1].startswith("时钟已推进到")
    assert flash(do(sandbox, "advance", partner="demo", by="x").text)[1].startswith("出错:")


# the words that reach `_()` from data, not from a template literal
DYNAMIC = {
    *("real", "scaled", "manual"),  # clock modes
    *("pending", "delivered", "dead", "paused"),  # deliveries
    *("open", "paid", "void", "expired", "spent"),  # payment codes, fault rules
    i18n.ENVELOPE,
    i18n.DEBUG,
    i18n.FAULTS,
    i18n.ERRORS,
}


def catalog_keys() -> set[str]:
    """Every text the templates and the form handler pass to `_()`."""
    found: set[str] = set()
    for path in (ROOT / "sandbox" / "web" / "templates").glob("*.html"):
        text = path.read_text("utf-8")
        found |= set(re.findall(r'_\("((?:[^"\\]|\\.)*)"', text))
        found |= set(re.findall(r"_\('((?:[^'\\]|\\.)*)'", text))
    handler = (ROOT / "sandbox" / "web" / "dashboard_actions.py").read_text("utf-8")
    found |= set(re.findall(r'return \(?"([^"]+)", \(', handler))
    found |= set(re.findall(r'\("([^"]+)", \(\)', handler))
    found |= set(re.findall(r'_flash\(back, "error", "([^"]+)"', handler))
    return found


def test_every_text_has_its_chinese_and_the_catalog_has_nothing_else() -> None:
    keys = catalog_keys()
    assert len(keys) > 100
    assert sorted(keys - i18n.ZH.keys()) == []
    assert sorted(i18n.ZH.keys() - keys - DYNAMIC) == []


def test_the_chinese_uses_the_aggregators_words() -> None:
    text = " ".join(i18n.ZH.values())
    assert "合作者" not in text and "合作方" in text


# ---- the vendored script ----


def test_htmx_is_served_from_the_package_unchanged(sandbox: Sandbox) -> None:
    r = sandbox.client.get("/static/htmx.min.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert hashlib.sha256(r.content).hexdigest() == HTMX_SHA256
    assert "htmx 2.0.11" in (ROOT / "sandbox" / "web" / "static" / "VENDORED.md").read_text()
    page = sandbox.client.get("/dashboard").text
    assert '<script src="/static/htmx.min.js" defer></script>' in page
    assert "cdn" not in page.lower() and "https://" not in page.split("<body>")[0]


@pytest.mark.parametrize("name", ["ui.js", "htmx.LICENSE.txt"])
def test_the_other_static_files(sandbox: Sandbox, name: str) -> None:
    assert sandbox.client.get(f"/static/{name}").status_code == 200
