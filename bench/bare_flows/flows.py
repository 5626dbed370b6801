"""The example suites' four scenarios written against the bare `lender_sandbox` fixture: the
lender calls an aggregator makes, through `sandbox.client()`, callbacks into the MemorySink.

Not part of the test suite: bench/bench_examples.py times these against examples/.
"""

ACCOUNT = {"bank_code": "BCA", "bank_card": "1234567890"}


def applied(sandbox, scenario):
    api, loan = sandbox.client(), sandbox.sample_order(scenario=scenario)
    assert api.data("get-loan-precheck", loan.precheck())["is_reloan"] == 0
    api.data("push-basic-info", loan.basic_info())
    api.data("push-supplement-info", loan.supplement_info())
    return api, loan


def disbursed(sandbox, scenario):
    api, loan = applied(sandbox, scenario)
    sandbox.clock.advance(minutes=5)
    approved = api.data("get-approval-result", loan.order())["approval_amount"]
    api.data("push-bind-bank", {**loan.order(), **ACCOUNT, "user_name": loan.person.name})
    api.data("push-order-confirm", loan.confirm(approved))
    sandbox.clock.advance(minutes=5)
    return api, loan


def test_settlement(lender_sandbox):
    api, loan = disbursed(lender_sandbox, "approve")
    assert api.data("get-repay-plan", loan.order())["repay_amount"] == 1_008_400
    code = api.data("get-repay-detail", loan.repay_detail())
    lender_sandbox.pay(code["repay_code"])
    statuses = lender_sandbox.callbacks.received("callback-order-status")
    assert [c["order_status"] for c in statuses] == [90, 100, 170, 200]


def test_rejection(lender_sandbox):
    api, loan = applied(lender_sandbox, "reject_review")
    lender_sandbox.clock.advance(minutes=5)
    assert api.data("get-approval-result", loan.order())["order_status"] == 110
    assert api.call("get-loan-precheck", loan.precheck())["code"] == 11007


def test_overdue_extension(lender_sandbox):
    api, loan = disbursed(lender_sandbox, "overdue")
    lender_sandbox.clock.advance(days=16)
    assert api.data("get-repay-plan", loan.order())["order_status"] == 180
    code = api.data("get-repay-detail", loan.repay_detail(repay_type=2))
    lender_sandbox.pay(code["repay_code"])
    assert api.data("get-repay-plan", loan.order())["order_status"] == 170


def test_callback_retry(lender_sandbox):
    lender_sandbox.callbacks.fail_next(1)
    _, loan = applied(lender_sandbox, "approve")
    lender_sandbox.clock.advance(minutes=1)
    (delivery,) = lender_sandbox.order(loan.order_no)["callbacks"]
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)
