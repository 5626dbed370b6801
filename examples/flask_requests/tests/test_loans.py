"""Pinjam's loans through its own code — Flask views, a requests.Session, SQLite, its callback
route — against an in-process lender."""

import sqlite3

ACCOUNT = {"bank_code": "BCA", "bank_card": "1234567890"}


def apply(pinjam, applicant: dict) -> str:
    return pinjam.post("/loans", json=applicant).get_json()["order_no"]


def loan(pinjam, order_no: str) -> dict:
    return pinjam.get(f"/loans/{order_no}").get_json()


def disbursed(lender_sandbox, pinjam, applicant: dict) -> str:
    order_no = apply(pinjam, applicant)
    lender_sandbox.clock.advance(minutes=5)  # the review approves
    pinjam.post(f"/loans/{order_no}/disbursement", json=ACCOUNT)
    lender_sandbox.clock.advance(minutes=5)  # paid out
    return order_no


def test_a_loan_from_precheck_to_settlement(lender_sandbox, pinjam, borrower):
    applicant = borrower("approve")
    offer = pinjam.post("/offers", json=applicant).get_json()
    assert offer == {"eligible": True, "amounts": [500_000, 1_000_000, 1_500_000, 2_000_000]}

    order_no = disbursed(lender_sandbox, pinjam, applicant)
    sent = lender_sandbox.journal.last("push-order-confirm")  # what Pinjam sent, decrypted
    assert (sent.get("order_no"), sent.get("application_amount")) == (order_no, 1_000_000)
    repaying = loan(pinjam, order_no)
    assert (repaying["status_name"], repaying["repay_amount"]) == ("repaying", 1_008_400)

    code = pinjam.post(f"/loans/{order_no}/payment-code", json={"kind": "full"}).get_json()
    lender_sandbox.pay(code["code"])  # the borrower pays the virtual account
    settled = loan(pinjam, order_no)
    assert settled["status_name"] == "settled" and settled["history"] == [90, 100, 170, 200]


def test_a_rejected_borrower_is_told_why_and_cannot_reapply(lender_sandbox, pinjam, borrower):
    applicant = borrower("reject_review")
    order_no = apply(pinjam, applicant)
    lender_sandbox.clock.advance(minutes=5)  # the review rejects

    rejected = loan(pinjam, order_no)
    assert rejected["status_name"] == "rejected"
    assert rejected["remark"] == "Skor kredit tidak memenuhi syarat"  # from callback 20
    offer = pinjam.post("/offers", json=applicant).get_json()
    assert offer["eligible"] is False and "30" in offer["reason"]  # 11007: 30 days' cooldown


def test_an_overdue_loan_is_extended(lender_sandbox, pinjam, borrower):
    order_no = disbursed(lender_sandbox, pinjam, borrower("overdue"))
    due = loan(pinjam, order_no)["due"]

    lender_sandbox.clock.advance(days=16)  # the 14-day term runs out unpaid
    overdue = loan(pinjam, order_no)
    assert overdue["status_name"] == "overdue"
    assert overdue["overdue_days"] >= 1 and overdue["late_fee"] > 0
    assert overdue["repay_amount"] == 1_008_400 + overdue["late_fee"]

    code = pinjam.post(f"/loans/{order_no}/payment-code", json={"kind": "extension"}).get_json()
    lender_sandbox.pay(code["code"])  # the borrower pays the extension fee
    extended = loan(pinjam, order_no)
    assert extended["status_name"] == "repaying" and extended["due"] > due
    assert extended["history"] == [90, 100, 170, 180, 170]


def test_a_callback_pinjam_could_not_store_is_retried(
    lender_sandbox, pinjam, app, borrower, monkeypatch
):
    store, calls = app.extensions["store"], []
    record = store.record_status

    def locked_once(*args):
        calls.append(args)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        record(*args)

    monkeypatch.setattr(store, "record_status", locked_once)
    order_no = apply(pinjam, borrower("approve"))
    lender_sandbox.clock.advance(minutes=1)  # the lender's retry is due within the minute

    assert len(calls) == 2  # Pinjam answered 503 once, then took it
    assert loan(pinjam, order_no)["status_name"] == "in_review"
    (delivery,) = lender_sandbox.order(order_no)["callbacks"]
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)
