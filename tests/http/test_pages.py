"""Pages a borrower opens: one-click URL repayment (14's url_info) and product icons."""

from __future__ import annotations

from conftest import SUFFIX, Sandbox


def _repay_path(o) -> str:
    return o.get("/get-repay-plan")["url_info"].removeprefix("http://127.0.0.1:8000")


def test_one_click_repayment_settles_the_order(sandbox: Sandbox, loan) -> None:
    o = loan("urlpay", SUFFIX["approve"]).disbursed()
    path = _repay_path(o)
    r = sandbox.client.post(path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("&paid=1")
    assert o.status == 200
    page = sandbox.client.get(r.headers["location"])
    assert "Pembayaran berhasil" in page.text and "Bayar sekarang" not in page.text
    plan = o.get("/get-repay-plan")
    assert plan["repay_amount"] == 1_008_400 and plan["url_info"] == ""
    # the payment is recorded like any other, and callbacks went out
    detail = sandbox.client.get(f"/sandbox/orders/{o.order_no}?partner_token=demo").json()
    assert [p["source"] for p in detail["payments"]] == ["page"]
    assert detail["callbacks"][-1]["body"]["order_status"] == 200


def test_a_settled_or_tampered_link_pays_nothing(sandbox: Sandbox, loan) -> None:
    o = loan("urlpay2", SUFFIX["approve"]).disbursed()
    path = _repay_path(o)
    assert sandbox.client.post(path[:-4] + "0000").status_code == 404
    sandbox.client.post(path)
    again = sandbox.client.post(path)
    assert again.status_code == 409 and "tidak memiliki tagihan" in again.text


def test_product_icon_is_served(sandbox: Sandbox) -> None:
    r = sandbox.client.get("/assets/product/1001.svg")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert ">DK<" in r.text  # Dana Kilat
    assert sandbox.client.get("/assets/product/9999.svg").status_code == 404
