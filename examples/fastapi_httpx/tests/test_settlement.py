"""A loan from precheck to settlement through Kilat's own code — its API, its httpx client, its
callback route — against an in-process lender: no server, no port, no mock of Kilat's."""


async def test_a_loan_from_precheck_to_settlement(lender_sandbox, kilat, borrower):
    applicant = borrower("approve")  # a realistic borrower whom the lender approves

    offer = (await kilat.post("/offers", json=applicant)).json()  # Kilat calls 02 precheck
    assert offer == {"eligible": True, "amounts": [500_000, 1_000_000, 1_500_000, 2_000_000]}

    loan = (await kilat.post("/loans", json=applicant)).json()  # Kilat pushes 05 and 06
    order_no = loan["order_no"]
    sent = lender_sandbox.journal.last("push-basic-info")  # what Kilat sent, decrypted
    assert sent.get("order_info.order_no") == order_no
    assert sent.get("order_info.user_mobile") == applicant["mobile"]

    lender_sandbox.clock.advance(minutes=5)  # the review approves; callbacks 19 and 20 reach Kilat
    loan = (await kilat.get(f"/loans/{order_no}")).json()
    assert (loan["status_name"], loan["approved_amount"]) == ("approved", 1_000_000)

    account = {"bank_code": "BCA", "bank_card": "1234567890"}
    await kilat.post(f"/loans/{order_no}/disbursement", json=account)  # 08 and 11
    lender_sandbox.clock.advance(minutes=5)  # paid out; the repayment plan (21) reaches Kilat
    loan = (await kilat.get(f"/loans/{order_no}")).json()
    assert (loan["status_name"], loan["repay_amount"]) == ("repaying", 1_008_400)

    code = (await kilat.post(f"/loans/{order_no}/payment-code", json={"kind": "full"})).json()
    lender_sandbox.pay(code["code"])  # the borrower pays the virtual account
    loan = (await kilat.get(f"/loans/{order_no}")).json()
    assert loan["status_name"] == "settled"
    assert loan["history"] == [90, 100, 170, 200]  # every status callback, in order
