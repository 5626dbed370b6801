"""A retried request that succeeded before answers 0 — whatever the order became since.

An aggregator whose 06, 08 or 11 timed out sends it again, maybe after the order moved on (the
review approved it, the payout went out). docs/protocol.md §4 / §9: an identical replay of 05,
06, 08 or 11 answers code 0 and changes nothing; a replay with other data keeps its error.
And one open loan per person, always (§4 02): an order still at 80 counts.
"""

from __future__ import annotations

from typing import Any

from conftest import (
    SUFFIX,
    Loan,
    basic_payload,
    bind_payload,
    confirm_payload,
    person,
    supplement_payload,
)

from sandbox.services import eligibility


def replay(loan: Loan, path: str, payload: dict[str, Any]) -> dict:
    return loan.sb.call(path, payload)


def supplement(loan: Loan) -> dict:
    return supplement_payload(loan.p, loan.order_no, amount=loan.amount, term=loan.term)


def test_06_replayed_after_the_review_and_the_payout_answers_0(loan):
    order = loan().create().submit()
    order.bind().review()
    assert order.status == 100
    assert replay(order, "/push-supplement-info", supplement(order))["code"] == 0
    order.confirm(order.get("/get-approval-result")["approval_amount"]).payout()
    assert order.status == 170
    assert replay(order, "/push-supplement-info", supplement(order))["code"] == 0
    assert order.status == 170  # nothing changed


def test_06_with_other_data_after_it_moved_on_keeps_its_error(loan):
    order = loan().create().submit().bind().review()
    other = supplement(order)
    other["supplement_info"]["company"] = "PT Lain Sekali"
    assert replay(order, "/push-supplement-info", other)["code"] == 11002


def test_08_replayed_after_the_payout_answers_0_and_binds_nothing_new(loan):
    order = loan().disbursed()
    assert replay(order, "/push-bind-bank", bind_payload(order.p, order.order_no))["code"] == 0
    cards = order.get("/get-bind-bank")["card_list"]
    assert len(cards) == 1


def test_08_with_another_account_after_the_payout_keeps_its_error(loan):
    order = loan().disbursed()
    other = bind_payload(order.p, order.order_no)
    other["bank_card"] = "1234567890"
    assert replay(order, "/push-bind-bank", other)["code"] == 11002


def test_11_replayed_after_the_payout_answers_0(loan):
    order = loan().disbursed()
    approved = order.get("/get-approval-result")["approval_amount"]
    same = confirm_payload(order.order_no, approved, order.term)
    assert replay(order, "/push-order-confirm", same)["code"] == 0
    assert order.status == 170
    lower = confirm_payload(order.order_no, approved - 100_000, order.term)
    assert replay(order, "/push-order-confirm", lower)["code"] == 11002


def test_11_replayed_after_a_failed_payout_was_cancelled_answers_0(sandbox):
    order = Loan(sandbox, person("replay-fail", SUFFIX["payout_fail"]), "ORD-REPLAY-FAIL1")
    order.create().submit().bind().review()
    approved = order.get("/get-approval-result")["approval_amount"]
    order.confirm(approved).payout()
    assert order.status == 169
    sandbox.advance(sandbox.lender.settings.lifecycle.payout_failed_expiry)
    assert order.status == 161
    same = confirm_payload(order.order_no, approved, order.term)
    assert replay(order, "/push-order-confirm", same)["code"] == 0


def test_a_person_with_an_order_at_80_cannot_open_a_second(sandbox):
    p = person("one-loan")
    Loan(sandbox, p, "ORD-ONELOAN-0001").create()  # never submitted: still 80
    second = Loan(sandbox, p, "ORD-ONELOAN-0002")
    answer = sandbox.call("/push-basic-info", _basic(second))
    assert answer["code"] == 11004 and "ORD-ONELOAN-0001" in answer["message"]


def test_the_database_holds_one_open_loan_when_the_check_races(sandbox, monkeypatch):
    """Two 05s for one person at once (two processes): both pass the check, the database's
    unique index refuses the second insert, and the request, answered again, says 11004."""
    p = person("race")
    Loan(sandbox, p, "ORD-RACE-000001").create()
    real, raced = eligibility.check_person, []

    def passes_once(*args: Any, **kw: Any) -> bool:
        if not raced:  # the first try misses the other order, as a concurrent one would
            raced.append(True)
            return False
        return real(*args, **kw)

    monkeypatch.setattr(eligibility, "check_person", passes_once)
    answer = sandbox.call("/push-basic-info", _basic(Loan(sandbox, p, "ORD-RACE-000002")))
    assert answer["code"] == 11004 and raced


def _basic(loan: Loan) -> dict:
    return basic_payload(loan.p, loan.order_no)


def test_a_payment_is_made_at_the_clock_another_request_moved_it_to(loan, monkeypatch):
    """Another process moves the partner's clock while a payment fires what fell due: the
    payment is made at the clock's new time, never at the one it first read (it would land in
    the timeline before events that already fired later: a settlement before an overdue)."""
    from sandbox.services import control, payments

    order = loan().create().submit()
    order.bind().review()
    order.confirm(order.get("/get-approval-result")["approval_amount"]).payout()
    code = order.code()["repay_code"]
    lender, token = order.sb.lender, order.sb.token
    moved: list[float] = []
    real = payments.process_due

    def meanwhile(*args: Any) -> Any:
        if not moved:  # once: the other process's advance, between reading and paying
            moved.append(control.advance_clock(lender, token, 3600.0)["now_unix"])
        return real(*args)

    monkeypatch.setattr(payments, "process_due", meanwhile)
    paid = order.sb.pay(code)
    assert moved and paid["paid_at"] == lender.fmt(moved[0])
    assert order.status == 200
