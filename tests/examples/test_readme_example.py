"""The README's pytest example, verbatim: a loan from precheck to payout, with callbacks.

`lender_sandbox` comes from the plugin that installing lender-sandbox registers: a fresh
in-process lender for each test, on a manual clock, with callbacks recorded in memory.
"""


def test_loan_is_approved_and_disbursed(lender_sandbox):
    sandbox = lender_sandbox
    api = sandbox.client()  # the demo partner: encrypts requests, decrypts answers
    loan = sandbox.sample_order(scenario="approve")  # realistic borrower, mobile ends in 001

    assert api.data("get-loan-precheck", loan.precheck())["is_reloan"] == 0
    api.data("push-basic-info", loan.basic_info())  # order created (80)
    api.data("push-supplement-info", loan.supplement_info())  # under review (90)

    sandbox.clock.advance(minutes=5)  # the review decides
    approval = api.data("get-approval-result", loan.order())
    assert approval["order_status"] == 100

    api.data("push-bind-bank", loan.bind_bank())
    api.data("push-order-confirm", loan.confirm(approval["approval_amount"]))
    sandbox.clock.advance(minutes=5)  # the payout goes through
    assert api.data("get-order-status", loan.order())["order_status"] == 170

    # Every callback the lender pushed, already decrypted:
    statuses = sandbox.callbacks.received("callback-order-status")
    assert [cb["order_status"] for cb in statuses] == [90, 100, 170]
    plan = sandbox.callbacks.received("callback-repay-plan")[-1]
    assert plan["loan_amount"] == approval["approval_amount"]
    assert plan["repay_amount"] == approval["repay_amount"]
