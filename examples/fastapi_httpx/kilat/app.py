"""Kilat's web app: the API our mobile app calls, and the route the lender's callbacks come to."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .envelope import Envelope, EnvelopeError
from .lender import Lender, LenderRefused
from .store import Loan, Loans, StoreUnavailable

NOT_ELIGIBLE = {11004, 11007}  # an open loan; rejected in the last 30 days


@dataclass(frozen=True)
class Settings:
    lender_url: str
    partner_token: str
    aes_key: str
    aes_iv: str
    product_id: str = "1001"


class Person(BaseModel):
    name: str
    mobile: str
    nik: str


class Contact(BaseModel):
    name: str
    phone: str
    relation: int


class Application(Person):
    amount: int
    term: int
    birthday: str
    sex: int
    religion: int
    education: int
    marital_status: int
    month_income: int
    employer: str
    province: str
    city: str
    district: str
    contacts: list[Contact] = Field(min_length=2)


class Account(BaseModel):
    bank_code: str
    bank_card: str


class Payment(BaseModel):
    kind: str = "full"  # or "extension"
    method_code: str = "1001"  # a virtual account at BNI


def basic_info(order_no: str, a: Application, product_id: str) -> dict:
    """05 push-basic-info, from what the borrower entered in our app."""
    return {
        "product_id": product_id,
        "device_ip": "114.124.10.20",
        "is_reloan": 0,
        "basic_info": {
            "user_type": 1,
            "education": a.education,
            "loan_remark": 2,
            "idcard_image_front": f"https://cdn.kilat.example/{order_no}/ktp.jpg",
            "idcard_image_hand": f"https://cdn.kilat.example/{order_no}/selfie.jpg",
            "month_income": a.month_income,
            "religion": a.religion,
        },
        "order_info": {
            "order_no": order_no,
            "application_amount": a.amount,
            "application_term": a.term,
            "term_unit": 1,
            "product_id": product_id,
            "user_name": a.name,
            "user_mobile": a.mobile,
            "user_idcard": a.nik,
        },
    }


def supplement_info(order_no: str, a: Application, product_id: str) -> dict:
    """06 push-supplement-info: KYC, with our liveness check's result."""
    return {
        "product_id": product_id,
        "device_ip": "114.124.10.20",
        "supplement_info": {
            "is_charge": 2,
            "birthday": a.birthday,
            "marital_status": a.marital_status,
            "sex": a.sex,
            "face_photo_image": [f"https://cdn.kilat.example/{order_no}/face.jpg"],
            "pass_face_photo": 1,
            "same_person": 1,
            "confidence_score": "93.1",
            "work_type": 2,
            "company": a.employer,
            "area": {
                "province": a.province,
                "city": a.city,
                "district": a.district,
                "village": "-",
                "detail_address": "-",
            },
            "emergs": [
                {"emergs_name": c.name, "emergs_phone": c.phone, "emergs_relation": c.relation}
                for c in a.contacts
            ],
            "device_info": {"os": "android"},
        },
        "order_info": {"order_no": order_no},
    }


def create_app(settings: Settings) -> FastAPI:
    envelope = Envelope(settings.partner_token, settings.aes_key, settings.aes_iv)
    loans = Loans()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.lender = Lender(settings.lender_url, envelope)
        yield
        await app.state.lender.aclose()

    app = FastAPI(lifespan=lifespan)
    app.state.loans = loans
    product = settings.product_id

    def lender(request: Request) -> Lender:
        return request.app.state.lender

    def loan_of(order_no: str) -> Loan:
        loan = loans.get(order_no)
        if loan is None:
            raise HTTPException(404, f"no loan {order_no}")
        return loan

    @app.exception_handler(LenderRefused)
    async def refused(request: Request, e: LenderRefused) -> JSONResponse:
        return JSONResponse(
            {"error": "lender_refused", "code": e.code, "message": e.message}, status_code=409
        )

    @app.post("/offers")
    async def offers(person: Person, request: Request) -> dict:
        query = {
            "product_id": product,
            "user_mobile": person.mobile,
            "user_idcard": person.nik,
            "user_name": person.name,
        }
        try:
            offer = await lender(request).call("/get-loan-precheck", query)
        except LenderRefused as e:
            if e.code not in NOT_ELIGIBLE:
                raise
            return {"eligible": False, "reason": e.message}
        return {"eligible": True, "amounts": [r["amount"] for r in offer["loan_range"]]}

    @app.post("/loans", status_code=201)
    async def apply(application: Application, request: Request) -> dict:
        order_no = "KLT" + uuid.uuid4().hex[:16].upper()
        loan = loans.add(
            Loan(
                order_no, application.name, application.mobile, application.amount, application.term
            )
        )
        await lender(request).call("/push-basic-info", basic_info(order_no, application, product))
        await lender(request).call(
            "/push-supplement-info", supplement_info(order_no, application, product)
        )
        return loan.view()

    @app.get("/loans/{order_no}")
    async def show(order_no: str) -> dict:
        return loan_of(order_no).view()

    @app.post("/loans/{order_no}/disbursement")
    async def disburse(order_no: str, account: Account, request: Request) -> dict:
        loan = loan_of(order_no)
        if loan.approved_amount is None:
            raise HTTPException(409, "the loan is not approved")
        order = {"order_no": order_no, "product_id": product}
        await lender(request).call(
            "/push-bind-bank",
            {
                **order,
                "bank_code": account.bank_code,
                "bank_card": account.bank_card,
                "user_name": loan.name,
            },
        )
        await lender(request).call(
            "/push-order-confirm",
            {
                **order,
                "application_amount": loan.approved_amount,
                "application_term": loan.term,
                "term_unit": 1,
            },
        )
        return loan.view()

    @app.post("/loans/{order_no}/payment-code")
    async def payment_code(order_no: str, payment: Payment, request: Request) -> dict:
        loan_of(order_no)
        detail = await lender(request).call(
            "/get-repay-detail",
            {
                "order_no": order_no,
                "product_id": product,
                "repay_method": 1,
                "method_code": payment.method_code,
                "repay_type": 2 if payment.kind == "extension" else 1,
            },
        )
        return {
            "code": detail["repay_code"],
            "amount": detail["repay_amount"],
            "expires": detail["expire_time"],
        }

    @app.post("/lender-callbacks/{name}")
    async def callback(name: str, request: Request) -> JSONResponse:
        """The lender's callbacks 19-21. `code` 0 acknowledges; anything else is retried."""
        try:
            body = envelope.open(await request.json())
            record = {
                "callback-order-status": lambda: loans.record_status(
                    body["order_no"], body["order_status"], body["update_time"]
                ),
                "callback-approval-result": lambda: loans.record_approval(body["order_no"], body),
                "callback-repay-plan": lambda: loans.record_plan(body["order_no"], body),
            }[name]
            record()
        except (EnvelopeError, ValueError, KeyError) as e:
            return JSONResponse({"code": 1, "message": f"cannot take it: {e}", "data": {}})
        except StoreUnavailable:
            return JSONResponse({"code": 503, "message": "try again", "data": {}}, 503)
        return JSONResponse({"code": 0, "message": "success", "data": {}})

    return app
