"""Kilat's callback route is the receiver: what it answers is what the lender acts on."""

from kilat.store import StoreUnavailable


async def test_a_callback_kilat_could_not_store_is_retried(
    lender_sandbox, kilat, app, borrower, monkeypatch
):
    loans, calls = app.state.loans, []
    store = loans.record_status

    def flaky(*args):  # the database is locked once
        calls.append(args)
        if len(calls) == 1:
            raise StoreUnavailable("database is locked")
        store(*args)

    monkeypatch.setattr(loans, "record_status", flaky)
    order_no = (await kilat.post("/loans", json=borrower("approve"))).json()["order_no"]
    lender_sandbox.clock.advance(minutes=1)  # the lender's retry is due within the minute

    assert len(calls) == 2  # Kilat answered 503 once, then took it
    assert (await kilat.get(f"/loans/{order_no}")).json()["status_name"] == "in_review"
    (delivery,) = lender_sandbox.order(order_no)["callbacks"]
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)


async def test_a_callback_kilat_cannot_read_is_not_acknowledged(lender_sandbox, kilat, borrower):
    lender_sandbox.update_partner(encrypt_callbacks=False)  # the lender sends plain JSON now
    order_no = (await kilat.post("/loans", json=borrower("approve"))).json()["order_no"]
    (delivery,) = lender_sandbox.order(order_no)["callbacks"]
    assert delivery["state"] != "delivered"  # Kilat answered code 1: not acknowledged
    assert (await kilat.get(f"/loans/{order_no}")).json()["status_name"] == "submitted"
