"""The other ways a loan goes: rejected at review, and overdue then extended."""


async def apply(kilat, applicant: dict) -> str:
    return (await kilat.post("/loans", json=applicant)).json()["order_no"]


async def loan(kilat, order_no: str) -> dict:
    return (await kilat.get(f"/loans/{order_no}")).json()


async def test_a_rejected_borrower_is_told_why_and_cannot_reapply(lender_sandbox, kilat, borrower):
    applicant = borrower("reject_review")
    order_no = await apply(kilat, applicant)
    lender_sandbox.clock.advance(minutes=5)  # the review rejects

    rejected = await loan(kilat, order_no)
    assert rejected["status_name"] == "rejected"
    assert rejected["remark"] == "Skor kredit tidak memenuhi syarat"  # from callback 20
    offer = (await kilat.post("/offers", json=applicant)).json()
    assert offer["eligible"] is False and "30" in offer["reason"]  # 11007: 30 days' cooldown


async def test_an_overdue_loan_is_extended(lender_sandbox, kilat, borrower):
    order_no = await apply(kilat, borrower("overdue"))  # disbursed, then never paid
    lender_sandbox.clock.advance(minutes=5)
    account = {"bank_code": "BCA", "bank_card": "1234567890"}
    await kilat.post(f"/loans/{order_no}/disbursement", json=account)
    lender_sandbox.clock.advance(minutes=5)
    due = (await loan(kilat, order_no))["due"]

    lender_sandbox.clock.advance(days=16)  # the 14-day term runs out unpaid
    overdue = await loan(kilat, order_no)
    assert overdue["status_name"] == "overdue"
    assert overdue["overdue_days"] >= 1 and overdue["late_fee"] > 0
    assert overdue["repay_amount"] == 1_008_400 + overdue["late_fee"]

    extension = await kilat.post(f"/loans/{order_no}/payment-code", json={"kind": "extension"})
    lender_sandbox.pay(extension.json()["code"])  # the borrower pays the extension fee
    extended = await loan(kilat, order_no)
    assert extended["status_name"] == "repaying" and extended["due"] > due
    assert extended["history"] == [90, 100, 170, 180, 170]
