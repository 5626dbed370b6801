"""Pinjam's web app: the API our mobile app calls, and the route the lender's callbacks come to."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from flask import Flask, abort, current_app, jsonify, request

from .envelope import Envelope, EnvelopeError
from .lender import Lender, LenderRefused
from .store import Store

NOT_ELIGIBLE = {11004, 11007}  # an open loan; rejected in the last 30 days


def basic_info(order_no: str, a: dict, product_id: str) -> dict:
    """05 push-basic-info, from what the borrower entered in our app."""
    return {
        "product_id": product_id,
        "device_ip": request.remote_addr or "114.124.10.20",
        "is_reloan": 0,
        "basic_info": {
            "user_type": 1,
            "education": a["education"],
            "loan_remark": 2,
            "idcard_image_front": f"https://cdn.pinjam.example/{order_no}/ktp.jpg",
            "idcard_image_hand": f"https://cdn.pinjam.example/{order_no}/selfie.jpg",
            "month_income": a["month_income"],
            "religion": a["religion"],
        },
        "order_info": {
            "order_no": order_no,
            "application_amount": a["amount"],
            "application_term": a["term"],
            "term_unit": 1,
            "product_id": product_id,
            "user_name": a["name"],
            "user_mobile": a["mobile"],
            "user_idcard": a["nik"],
        },
    }


def supplement_info(order_no: str, a: dict, product_id: str) -> dict:
    """06 push-supplement-info: KYC, with our liveness check's result."""
    return {
        "product_id": product_id,
        "device_ip": request.remote_addr or "114.124.10.20",
        "supplement_info": {
            "is_charge": 2,
            "birthday": a["birthday"],
            "marital_status": a["marital_status"],
            "sex": a["sex"],
            "face_photo_image": [f"https://cdn.pinjam.example/{order_no}/face.jpg"],
            "pass_face_photo": 1,
            "same_person": 1,
            "confidence_score": "91.7",
            "work_type": 2,
            "company": a["employer"],
            "area": {
                "province": a["province"],
                "city": a["city"],
                "district": a["district"],
                "village": "-",
                "detail_address": "-",
            },
            "emergs": [
                {
                    "emergs_name": c["name"],
                    "emergs_phone": c["phone"],
                    "emergs_relation": c["relation"],
                }
                for c in a["contacts"]
            ],
            "device_info": {"os": "android"},
        },
        "order_info": {"order_no": order_no},
    }


def create_app(config: dict[str, Any]) -> Flask:
    app = Flask(__name__)
    app.config.update({"PRODUCT_ID": "1001", "DATABASE": ":memory:", **config})
    envelope = Envelope(app.config["PARTNER_TOKEN"], app.config["AES_KEY"], app.config["AES_IV"])
    app.extensions["store"] = Store(app.config["DATABASE"])
    app.extensions["lender"] = Lender(app.config["LENDER_URL"], envelope)
    app.extensions["envelope"] = envelope

    @app.errorhandler(LenderRefused)
    def refused(e: LenderRefused):
        return jsonify(error="lender_refused", code=e.code, message=e.message), 409

    app.add_url_rule("/offers", view_func=offers, methods=["POST"])
    app.add_url_rule("/loans", view_func=apply, methods=["POST"])
    app.add_url_rule("/loans/<order_no>", view_func=show)
    app.add_url_rule("/loans/<order_no>/disbursement", view_func=disburse, methods=["POST"])
    app.add_url_rule("/loans/<order_no>/payment-code", view_func=payment_code, methods=["POST"])
    app.add_url_rule("/lender/callbacks/<name>", view_func=callback, methods=["POST"])
    return app


def store() -> Store:
    return current_app.extensions["store"]


def lender() -> Lender:
    return current_app.extensions["lender"]


def product() -> str:
    return current_app.config["PRODUCT_ID"]


def loan_of(order_no: str) -> dict:
    return store().get(order_no) or abort(404, f"no loan {order_no}")


def offers():
    p = request.get_json()
    query = {
        "product_id": product(),
        "user_mobile": p["mobile"],
        "user_idcard": p["nik"],
        "user_name": p["name"],
    }
    try:
        offer = lender().call("/get-loan-precheck", query)
    except LenderRefused as e:
        if e.code not in NOT_ELIGIBLE:
            raise
        return {"eligible": False, "reason": e.message}
    return {"eligible": True, "amounts": [r["amount"] for r in offer["loan_range"]]}


def apply():
    a = request.get_json()
    order_no = "PJM" + uuid.uuid4().hex[:16].upper()
    store().add(order_no, a["name"], a["mobile"], a["amount"], a["term"])
    lender().call("/push-basic-info", basic_info(order_no, a, product()))
    lender().call("/push-supplement-info", supplement_info(order_no, a, product()))
    return loan_of(order_no), 201


def show(order_no: str):
    return loan_of(order_no)


def disburse(order_no: str):
    loan, account = loan_of(order_no), request.get_json()
    if loan["approved_amount"] is None:
        abort(409, "the loan is not approved")
    order = {"order_no": order_no, "product_id": product()}
    lender().call(
        "/push-bind-bank",
        {
            **order,
            "bank_code": account["bank_code"],
            "bank_card": account["bank_card"],
            "user_name": loan["name"],
        },
    )
    lender().call(
        "/push-order-confirm",
        {
            **order,
            "application_amount": loan["approved_amount"],
            "application_term": loan["term"],
            "term_unit": 1,
        },
    )
    return loan_of(order_no)


def payment_code(order_no: str):
    loan_of(order_no)
    kind = (request.get_json(silent=True) or {}).get("kind", "full")
    detail = lender().call(
        "/get-repay-detail",
        {
            "order_no": order_no,
            "product_id": product(),
            "repay_method": 1,
            "method_code": "1001",
            "repay_type": 2 if kind == "extension" else 1,
        },
    )
    return {
        "code": detail["repay_code"],
        "amount": detail["repay_amount"],
        "expires": detail["expire_time"],
    }


def callback(name: str):
    """The lender's callbacks 19-21. `code` 0 acknowledges; anything else is retried."""
    try:
        body = current_app.extensions["envelope"].open(request.get_json(silent=True))
        order_no = body["order_no"]
        if name == "callback-order-status":
            store().record_status(order_no, body["order_status"], body["update_time"])
        elif name == "callback-approval-result":
            store().record_approval(order_no, body)
        elif name == "callback-repay-plan":
            store().record_plan(order_no, body)
        else:
            raise KeyError(name)
    except (EnvelopeError, KeyError) as e:
        return {"code": 1, "message": f"cannot take it: {e}", "data": {}}
    except sqlite3.OperationalError:  # locked or busy: the lender will try again
        return {"code": 503, "message": "try again", "data": {}}, 503
    return {"code": 0, "message": "success", "data": {}}
