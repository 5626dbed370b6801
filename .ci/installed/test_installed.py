"""Run by .ci/wheel against the installed wheel, from a folder outside the checkout: both
pytest fixtures work on the defaults the package carries (the aggregator-team set-up: the
sandbox in a project's test requirements)."""

from __future__ import annotations

import sandbox


def loan_flow(box) -> str:
    """Precheck, push, supplement, the review: an approved order; its order_no."""
    api = box.client()
    loan = box.sample_order(scenario="approve")
    assert api.data("get-loan-precheck", loan.precheck())["is_reloan"] == 0
    api.data("push-basic-info", loan.basic_info())
    api.data("push-supplement-info", loan.supplement_info())
    box.clock.advance(minutes=5)
    assert api.data("get-approval-result", loan.order())["order_status"] == 100
    return loan.order_no


def test_this_is_the_installed_package_not_a_checkout():
    assert "site-packages" in sandbox.__file__, sandbox.__file__


def test_in_process_fixture(lender_sandbox):
    loan_flow(lender_sandbox)
    statuses = lender_sandbox.callbacks.received("callback-order-status")
    assert [cb["order_status"] for cb in statuses] == [90, 100]


def test_server_fixture(lender_sandbox_server):
    order_no = loan_flow(lender_sandbox_server)
    lender_sandbox_server.wait_for(order_no, 100, callback="acknowledged")
    statuses = lender_sandbox_server.callbacks.received("callback-order-status")
    assert [cb["order_status"] for cb in statuses] == [90, 100]
