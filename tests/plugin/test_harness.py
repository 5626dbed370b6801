"""The harness without pytest fixtures: `Template`, `Sandbox`, `sample_order` (sandbox.testing).

Each test builds its sandbox from one module template, the way the plugin does per session.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from sandbox.client import LenderError
from sandbox.core.clock import WIB
from sandbox.core.errors import ControlError
from sandbox.testing import Sandbox, Template, WaitError, sample_order

START = datetime(2026, 3, 2, 9, 0, tzinfo=WIB)  # a Monday morning in Jakarta


@pytest.fixture(scope="module")
def template():
    t = Template(start=START)
    yield t
    t.close()


def apply(sb, scenario="approve", **kw):
    """Push 05 and 06 for a new sample order; the order."""
    loan = sb.sample_order(scenario=scenario, **kw)
    api = sb.client()
    api.data("push-basic-info", loan.basic_info())
    api.data("push-supplement-info", loan.supplement_info())
    return loan


def disburse(sb, scenario="approve"):
    loan = apply(sb, scenario)
    api = sb.client()
    sb.clock.advance(minutes=2)
    approved = api.data("get-approval-result", loan.order())["approval_amount"]
    api.data("push-bind-bank", loan.bind_bank())
    api.data("push-order-confirm", loan.confirm(approved))
    sb.clock.advance(minutes=1)
    return loan


# ---- isolation and lifetime ----


def test_each_sandbox_has_its_own_store(template):
    with Sandbox(template) as a, Sandbox(template) as b:
        loan = apply(a)
        assert [o["order_no"] for o in a.orders()] == [loan.order_no]
        assert b.orders() == []
        assert b.journal.entries() == []
        assert b.callbacks.received() == []


def test_the_template_fixes_the_clock(sb):
    assert sb.clock.now == START
    assert sb.clock.state()["mode"] == "manual"


def test_reset_goes_back_to_the_template(sb):
    apply(sb)
    sb.callbacks.fail_next(5)
    sb.reset()
    assert sb.orders() == [] and sb.journal.entries() == [] and sb.callbacks.records() == []
    assert sb.clock.now == START
    apply(sb)  # the sink answers normally again
    assert len(sb.callbacks.received("callback-order-status")) == 1


def test_a_sandbox_without_template_uses_the_default():
    with Sandbox() as sb:
        loan = sb.sample_order()
        assert sb.client().data("get-loan-precheck", loan.precheck())["is_reloan"] == 0


# ---- the client in-process ----


def test_business_errors_raise_with_code_and_message(sb):
    with pytest.raises(LenderError) as e:
        sb.client().data("get-order-status", {"order_no": "NOSUCHORDER1", "product_id": "1001"})
    assert e.value.code == 11001 and "NOSUCHORDER1" in e.value.message


def test_call_returns_the_envelope_and_an_unknown_path_is_a_404(sb):
    api = sb.client()
    doc = api.call("/get-bank-list", {"product_id": "1001", "action_type": 1})
    assert doc["code"] == 0 and doc["message"] == "success" and doc["data"]["banklist"]
    assert api.call("get-bind-bankz", {})["code"] == 10001
    with pytest.raises(LenderError) as e:
        api.data("get-bind-bankz", {})
    assert e.value.http_status == 404


# ---- clocks ----


def test_clock_advance_and_set(sb):
    sb.clock.advance(days=1, hours=2, minutes=3, seconds=4)
    assert sb.clock.now == START + timedelta(days=1, hours=2, minutes=3, seconds=4)
    sb.clock.set("2026-03-10T08:00:00")  # no zone: WIB
    assert sb.clock.now == datetime(2026, 3, 10, 8, 0, tzinfo=WIB)
    sb.clock.set(datetime(2026, 3, 11, 8, 0))
    assert sb.clock.now.day == 11
    with pytest.raises(ControlError, match="forward"):
        sb.clock.set(START)


def test_each_partner_has_its_own_clock(sb):
    other = sb.new_partner(partner_token="team-b")
    sb.clock_for(other.partner_token).advance(days=3)
    assert sb.clock.now == START
    assert sb.clock_for("team-b").now > START + timedelta(days=2)


# ---- callbacks ----


def test_callbacks_are_delivered_before_an_operation_returns(sb):
    loan = disburse(sb)
    paths = [r.path for r in sb.callbacks.records()]
    assert paths == [
        "/callback-order-status",  # 90
        "/callback-order-status",
        "/callback-approval-result",  # 100
        "/callback-order-status",
        "/callback-repay-plan",
    ]  # 170
    assert sb.callbacks.received("callback-repay-plan")[0]["order_no"] == loan.order_no


def test_a_refused_callback_is_retried_at_once(sb):
    sb.callbacks.fail_next(2)
    loan = apply(sb)
    assert [r.outcome for r in sb.callbacks.records()] == ["failed", "failed", "ok"]
    [delivery] = sb.order(loan.order_no)["callbacks"]
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 3)


def test_paused_callbacks_wait_and_are_delivered_on_resume(sb):
    sb.update_partner(callbacks_paused=True)
    loan = apply(sb)
    assert sb.callbacks.received() == []
    with pytest.raises(WaitError, match="not acknowledged"):
        sb.wait_for(loan.order_no, callback="acknowledged")
    sb.update_partner(callbacks_paused=False)
    assert sb.wait_for(loan.order_no, 90, callback="acknowledged")["reached"]
    assert len(sb.callbacks.received()) == 1


def test_a_new_partner_gets_its_own_keys_and_decrypted_callbacks(sb):
    team = sb.new_partner(name="Team B")
    assert team.partner_token.startswith("pt_") and team.aes_key != sb.partner.aes_key
    loan = sb.sample_order(scenario="approve")
    api = sb.client(team.partner_token)
    api.data("push-basic-info", loan.basic_info())
    api.data("push-supplement-info", loan.supplement_info())
    [record] = sb.callbacks.records()
    assert record.partner_token == team.partner_token and record.body["order_status"] == 90


def test_settlement_and_overdue(sb):
    loan = disburse(sb)
    code = sb.client().data("get-repay-detail", loan.repay_detail())
    assert sb.pay(code["repay_code"])["order_status"] == 200
    assert sb.callbacks.received("callback-repay-plan")[-1]["order_status"] == 200
    late = disburse(sb, "overdue")
    sb.clock.advance(days=15)
    assert sb.order(late.order_no)["status"] == 180
    last = sb.callbacks.received("callback-order-status")[-1]
    assert (last["order_no"], last["order_status"]) == (late.order_no, 180)


def test_callbacks_are_delivered_from_inside_an_event_loop(sb):
    async def in_a_loop():
        return apply(sb)

    asyncio.run(in_a_loop())
    assert len(sb.callbacks.received()) == 1


# ---- forced transitions and waiting ----


def test_transition_and_wait_for(sb):
    loan = apply(sb, "review_stuck")
    sb.clock.advance(days=1)
    assert sb.wait_for(loan.order_no, 90)["status_name"] == "reviewing"
    detail = sb.transition(loan.order_no, "reject", reason="Dokumen tidak lengkap")
    assert detail["status"] == 110 and detail["approval"]["order_remark"] == "Dokumen tidak lengkap"
    assert sb.callbacks.received("callback-approval-result")[-1]["order_status"] == 110


def test_wait_for_says_how_to_move_the_order(sb):
    loan = apply(sb)
    hint = r"is 90 \(reviewing\), not 100.*clock.advance\(minutes=2\)"
    with pytest.raises(WaitError, match=hint):
        sb.wait_for(loan.order_no, 100)
    sb.transition(loan.order_no, "reject")
    with pytest.raises(WaitError, match="final status: it will never reach 100"):
        sb.wait_for(loan.order_no, 100)


def test_wait_for_refuses_bad_arguments(sb):
    loan = apply(sb)
    with pytest.raises(ValueError, match="not an order status"):
        sb.wait_for(loan.order_no, 123)
    with pytest.raises(ValueError):
        sb.wait_for(loan.order_no)
    with pytest.raises(ControlError) as e:
        sb.wait_for("NOSUCHORDER1", 90)
    assert e.value.http_status == 404


# ---- the journal ----


def test_journal_finds_requests_by_decrypted_fields(sb):
    first, second = apply(sb), apply(sb, "approve_reduced")
    basics = sb.journal.entries("push-basic-info")
    assert [r.get("order_info.order_no") for r in basics] == [first.order_no, second.order_no]
    [found] = sb.journal.find("push-basic-info", order_info__order_no=second.order_no)
    assert found.request["order_info"]["user_mobile"].endswith("002")
    assert sb.journal.find(**{"order_info.order_no": first.order_no})[0].path == "/push-basic-info"
    assert sb.journal.last("/push-supplement-info").code == 0
    assert sb.journal.last().virtual_time == START
    with pytest.raises(LookupError):
        sb.journal.last("get-repay-plan")
    sb.journal.clear()
    assert sb.journal.entries() == []


# ---- sample orders ----


def test_sample_orders_follow_the_scenario_rules(template):
    rules = {r.name: r.mobile_suffix for r in template.settings.data.rules}
    today = template.today()
    for name, suffix in rules.items():
        assert sample_order("x", scenario=name, today=today).person.mobile.endswith(suffix)
    free = sample_order("x", scenario=None, today=today).person.mobile
    assert not any(free.endswith(s) for s in rules.values())
    assert sample_order("x", suffix="77", today=today).person.mobile.endswith("77")
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        sample_order("x", scenario="nope", today=today)


def test_sample_orders_are_deterministic_and_valid(sb):
    assert sample_order("same") == sample_order("same")
    assert sb.sample_order().order_no != sb.sample_order().order_no
    loan = sb.sample_order(scenario="reject_precheck")
    with pytest.raises(LenderError) as e:
        sb.client().data("get-loan-precheck", loan.precheck())
    assert e.value.code == 11007
    loan = sb.sample_order(product_id="1002", amount=2_000_000, term=3, term_unit=2)
    quote = sb.client().data("get-loan-interest", loan.interest())
    assert quote["actual_amount"] + quote["admin_amount"] == 2_000_000


def test_callback_retries_follow_the_partners_clock():
    """With the production backoff (10 s, 20 s, ...), a receiver failing twice costs no wall
    time: the retries wait for the clock, and advancing it a minute delivers."""
    backoff = {"first_delay": 10, "factor": 2, "max_delay": 600, "jitter": 0}
    template = Template(overrides={"callbacks": backoff})
    try:
        with Sandbox(template) as sb:
            sb.callbacks.fail_next(2)
            order = sb.sample_order()
            sb.client().call("push-basic-info", order.basic_info())
            sb.client().call("push-supplement-info", order.supplement_info())
            assert [r.outcome for r in sb.callbacks.records()] == ["failed"]
            sb.clock.advance(seconds=9)
            assert len(sb.callbacks.records()) == 1
            sb.clock.advance(minutes=1)  # due at +10 s, then +30 s
            assert [r.outcome for r in sb.callbacks.records()] == ["failed", "failed", "ok"]
            [delivery] = sb.order(order.order_no)["callbacks"]
            assert (delivery["state"], delivery["attempts"]) == ("delivered", 3)
    finally:
        template.close()
