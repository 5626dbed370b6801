"""The lender's business: one handler per endpoint 02-18, on typed requests, at time `now`.

`ENDPOINTS` pairs each endpoint of the protocol (`core.protocol.SPECS`) with its handler.

A handler gets (Call, request model) and returns the response `data`; it raises SandboxError
for every refusal. It never reads the wall clock: `call.now` is the partner's virtual time,
taken once per request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, union_all, update

from ..core import banks, pricing, scenarios
from ..core import validation as v
from ..core.errors import SandboxError, invalid
from ..core.lifecycle import DISBURSED, Status
from ..core.pricing import Product
from ..core.protocol import SPECS, Spec
from ..store import fast
from ..store import tables as t
from ..store.records import ORDER_DATA_COLUMNS, OrderRec
from . import bodies, eligibility, payments
from .eligibility import HISTORY_COLUMNS, Call
from .engine import apply, record
from .unit import ORDERS, load_order

CARDS: Table = t.BankCard.__table__  # type: ignore[assignment]


def _order(
    call: Call, order_no: str, product_id: str | None = None, *, lock: bool = False
) -> OrderRec:
    order = load_order(call.unit, call.partner.partner_token, order_no, lock=lock)
    if order is None:
        raise SandboxError("order_not_found", f"order_no {order_no!r}")
    if product_id is not None and str(product_id) != order.product_id:
        raise SandboxError(
            "order_mismatch",
            f"product_id {product_id!r}: the order is for product {order.product_id!r}",
        )
    return order


# ---- 02 / 03 / 04: stateless ----


def precheck(call: Call, r: v.PrecheckReq) -> dict:
    product = call.lender.product(r.product_id)
    eligibility.check_nik(call, r.user_idcard, "user_idcard")
    reloan = eligibility.check_person(call, r.user_idcard, r.user_mobile)
    return {
        "is_reloan": int(reloan),
        "loan_range": eligibility.loan_range(product, product.max_amount(reloan)),
        "term_unit": product.term_unit,
    }


def loan_amount(call: Call, r: v.AmountReq) -> dict:
    product = call.lender.product(r.product_id)
    eligibility.check_nik(call, r.user_idcard, "user_idcard")
    reloan = eligibility.check_person(call, r.user_idcard, r.user_mobile)
    limit = product.max_amount(reloan)
    default_amount = min(product.default_amount or product.amount_min, limit)
    return {
        "loan_range": eligibility.loan_range(product, limit),
        "term_unit": product.term_unit,
        "default_amount": default_amount,
        "default_term": product.default_term or product.terms[0],
    }


def loan_interest(call: Call, r: v.InterestReq) -> dict:
    product = call.lender.product(r.product_id)
    reloan = eligibility.check_person(call, r.user_idcard, r.user_mobile)
    eligibility.check_terms(
        product, r.application_amount, r.application_term, r.term_unit, product.max_amount(reloan)
    )
    q = pricing.quote(product, r.application_amount, r.application_term)
    return {
        "interest_amount": q.interest,
        "admin_amount": q.admin,
        "actual_amount": q.actual,
        "repay_amount": q.repay,
        "expiry_time": call.lender.fmt(pricing.due_at(product, call.now, r.application_term)),
    }


# ---- 05 / 06: orders ----


def _hash(request: v.Req) -> str:
    """What makes two 05 pushes the same: the validated payload, in the model's field order
    (pydantic's own JSON, so 2 and "2" where a field takes either are the same push)."""
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


_WITH_HASH = (*HISTORY_COLUMNS, ORDERS.c.payload_hash)
ORDER_AND_PERSON = union_all(
    select(*_WITH_HASH).where(
        ORDERS.c.partner_token == bindparam("token"), ORDERS.c.order_no == bindparam("order_no")
    ),
    select(*_WITH_HASH).where(
        ORDERS.c.partner_token == bindparam("token"), ORDERS.c.user_mobile == bindparam("mobile")
    ),
    select(*_WITH_HASH).where(
        ORDERS.c.partner_token == bindparam("token"), ORDERS.c.user_idcard == bindparam("nik")
    ),
)
# What a new order's figures are until the review and the payout set them.
NEW_ORDER_FIGURES: dict[str, Any] = {
    "approved_amount": None,
    "approved_term": None,
    "interest_amount": None,
    "admin_amount": None,
    "remark": "",
    "confirmed": False,
    "payout_attempts": 0,
    "payout_error": "",
    "approval_time": None,
    "loan_time": None,
    "due_at": None,
    "interest_due": 0,
    "extensions": 0,
    "settled_at": None,
    "paid_amount": 0,
    "extension_paid": 0,
}


def push_basic_info(call: Call, r: v.BasicInfoReq) -> dict:
    info = r.order_info
    product = call.lender.product(r.product_id)
    if info.product_id != r.product_id:
        raise SandboxError(
            "order_mismatch",
            f"order_info.product_id {info.product_id!r} differs from product_id {r.product_id!r}",
        )
    digest = _hash(r)
    # The order_no and the person's orders in one read (a new order's usual case).
    rows = fast.rows(
        call.conn,
        call.lender.store.fast(ORDER_AND_PERSON),
        {
            "token": call.partner.partner_token,
            "order_no": info.order_no,
            "mobile": info.user_mobile,
            "nik": info.user_idcard,
        },
    )
    existing = next((row for row in rows if row.order_no == info.order_no), None)
    if existing is not None:
        if existing.payload_hash == digest:
            return {}  # docs/protocol.md §4: an identical replay is idempotent
        raise SandboxError("duplicate_order", f"order_no {info.order_no!r} exists with other data")
    eligibility.check_nik(call, info.user_idcard, "order_info.user_idcard")
    reloan = eligibility.check_person(call, info.user_idcard, info.user_mobile, history=rows)
    eligibility.check_terms(
        product,
        info.application_amount,
        info.application_term,
        info.term_unit,
        product.max_amount(reloan),
    )
    settings = call.lender.settings
    fate = scenarios.decide(
        settings.data.rules,
        settings.data.default,
        seed=settings.scenarios.seed,
        partner=call.partner.partner_token,
        order_no=info.order_no,
        mobile=info.user_mobile,
    )
    row = {
        "partner_token": call.partner.partner_token,
        "order_no": info.order_no,
        "product_id": product.product_id,
        "status": int(Status.NEW),
        "user_mobile": info.user_mobile,
        "user_idcard": info.user_idcard,
        "user_name": info.user_name,
        "is_reloan": int(reloan),
        "application_amount": info.application_amount,
        "application_term": info.application_term,
        "term_unit": info.term_unit,
        "payload_hash": digest,
        "device_ip": r.device_ip,
        "scenario": fate.as_dict(),
        **NEW_ORDER_FIGURES,
        "created_at": call.now,
        "updated_at": call.now,
    }
    data = {"basic_info": r.basic_info.model_dump(mode="json"), "supplement_info": None}
    order_id = fast.insert(call.conn, call.lender.store.fast(ORDER_INSERT), {**row, **data})
    order = call.unit.track(OrderRec(id=order_id, **row))
    order.saved()
    ctx = call.ctx("05 push-basic-info")
    record(ctx, order, None, int(Status.NEW), "create")
    ctx.schedule(order, "abandon", call.now + settings.lifecycle.abandon_after)
    return {}


ORDER_INSERT = insert(ORDERS).values(
    {k: bindparam(k) for k in (*OrderRec.columns()[1:], *ORDER_DATA_COLUMNS)}  # all but the id
)
SUPPLEMENT_OF = select(ORDERS.c.supplement_info).where(ORDERS.c.id == bindparam("_id"))
SET_SUPPLEMENT = update(ORDERS).where(ORDERS.c.id == bindparam("_id"))


def _supplement_of(call: Call, order: OrderRec) -> Any:
    return call.conn.execute(SUPPLEMENT_OF, {"_id": order.id}).scalar()


def push_supplement_info(call: Call, r: v.SupplementReq) -> dict:
    info = r.order_info
    order = _order(call, info.order_no, r.product_id, lock=True)
    for field in ("application_amount", "application_term", "term_unit", "user_mobile"):
        given = getattr(info, field)
        if given is not None and given != getattr(order, field):
            raise SandboxError(
                "order_mismatch",
                f"order_info.{field} {given!r} differs from the order's {getattr(order, field)!r}",
            )
    supplement = r.supplement_info.model_dump(mode="json")
    if order.status != Status.NEW and _supplement_of(call, order) == supplement:
        return {}  # an identical replay, whatever the order became since (docs/protocol.md §4)
    call.conn.execute(SET_SUPPLEMENT, {"_id": order.id, "supplement_info": supplement})
    face_ok = r.supplement_info.pass_face_photo == 1 and r.supplement_info.same_person == 1
    if not face_ok and order.scenario.get("rule") == "default":
        # a failed liveness / face match is a realistic reason to reject at review
        order.scenario = {
            **order.scenario,
            "review": "reject",
            "reject_reason": "Verifikasi wajah gagal",
        }
    apply(call.ctx("06 push-supplement-info"), order, "submit")
    return {}


# ---- 07-10: banks and contract ----


def bank_list(call: Call, r: v.BankListReq) -> dict:
    call.lender.product(r.product_id)
    data = call.lender.settings.data
    if r.action_type == 1:
        return {
            "banklist": [{"bank_code": b.bank_code, "bank_name": b.bank_name} for b in data.banks]
        }
    return {
        "banklist": [
            {"bank_code": m.bank_code, "method_code": m.method_code, "repay_method": m.repay_method}
            for m in data.repay_methods
        ]
    }


def _same_name(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def bind_bank(call: Call, r: v.BindBankReq) -> dict:
    order = _order(call, r.order_no, r.product_id, lock=True)
    bank = call.lender.banks.get(r.bank_code.upper())
    if bank is None:
        raise SandboxError("unknown_bank", f"bank_code {r.bank_code!r} (see 07 get-bank-list)")
    if not _same_name(r.user_name, order.user_name):
        raise SandboxError(
            "name_mismatch",
            f"user_name {r.user_name!r} differs from the order's {order.user_name!r}",
        )
    card = (bank.bank_code, r.bank_card)
    if any((c.bank_code, c.bank_card) == card for c in _active_cards(call, order)):
        return {}  # an identical replay: the account is bound, whatever the order became
    problem = banks.account_problem(bank.bank_code, r.bank_card)
    if problem and call.lender.settings.responses.strict_bank_account:
        raise invalid("bank_card", problem)  # off: it binds, and its payout fails (engine)
    apply(call.ctx("08 push-bind-bank"), order, "bind_card")
    call.conn.execute(
        update(CARDS)
        .where(CARDS.c.order_id == order.id, CARDS.c.active.is_(True))
        .values(active=False)
    )
    call.conn.execute(
        insert(CARDS),
        {
            "order_id": order.id,
            "bank_code": bank.bank_code,
            "bank_card": r.bank_card,
            "user_name": r.user_name,
            "active": True,
            "created_at": call.now,
        },
    )
    return {}


ACTIVE_CARDS = select(CARDS.c.bank_code, CARDS.c.bank_card).where(
    CARDS.c.order_id == bindparam("order_id"), CARDS.c.active.is_(True)
)


def _active_cards(call: Call, order: OrderRec) -> list[Any]:
    return list(call.conn.execute(ACTIVE_CARDS, {"order_id": order.id}))


def get_bind_bank(call: Call, r: v.OrderReq) -> dict:
    order = _order(call, r.order_no, r.product_id)
    return {
        "order_no": order.order_no,
        "card_list": [
            {"bank_code": c.bank_code, "bank_card": c.bank_card, "extra_info": ""}
            for c in _active_cards(call, order)
        ],
    }


def loan_contract(call: Call, r: v.OrderReq) -> dict:
    order = _order(call, r.order_no, r.product_id)
    product = call.lender.product(order.product_id)
    return {
        "contract_url": call.lender.contract_url(call.partner, order.order_no),
        "contract_desc": f"Perjanjian pinjaman {product.product_name} - {order.order_no}",
    }


# ---- 11-13: confirm and status ----


def order_confirm(call: Call, r: v.ConfirmReq) -> dict:
    order = _order(call, r.order_no, r.product_id, lock=True)
    product = call.lender.product(order.product_id)
    if _confirm_replayed(order, r):
        return {}  # a retried confirm (e.g. after a timeout) is idempotent, whatever followed
    if order.status == Status.APPROVED and order.confirmed:
        raise SandboxError(
            "wrong_state",
            f"order {order.order_no} in status {order.status} is already confirmed for "
            f"{order.approved_amount}/{order.approved_term}",
        )
    if order.status not in (Status.APPROVED, Status.PAYOUT_FAILED):
        apply(call.ctx("11 push-order-confirm"), order, "confirm")  # raises wrong_state
    approved = order.approved_amount or 0
    eligibility.check_terms(
        product, r.application_amount, r.application_term, r.term_unit, approved
    )
    if not _active_cards(call, order):
        detail = (
            "the payout failed: bind another account with 08 first"
            if order.status == Status.PAYOUT_FAILED
            else "bind an account with 08 first"
        )
        # the status named, like every wrong_state answer (the acceptance report reads it)
        raise SandboxError(
            "no_bank_card", f"order {order.order_no} in status {order.status}: {detail}"
        )
    apply(
        call.ctx("11 push-order-confirm"),
        order,
        "confirm",
        amount=r.application_amount,
        term=r.application_term,
    )
    return {}


def _confirm_replayed(order: OrderRec, r: v.ConfirmReq) -> bool:
    """Was this 11 accepted before? The same figures as confirmed, and the order confirmed:
    its payout pending, paid out, or paid out to a failure it was cancelled after. (In 169
    a confirm is a new one, after a re-bind.)"""
    figures = (r.application_amount, r.application_term, r.term_unit)
    if figures != (order.approved_amount, order.approved_term, order.term_unit):
        return False
    if order.status == Status.APPROVED:
        return order.confirmed
    if order.status == Status.CANCELLED:
        return order.payout_attempts > 0
    return order.status in DISBURSED


def order_status(call: Call, r: v.OrderReq) -> dict:
    return bodies.status_body(_order(call, r.order_no, r.product_id))


def approval_result(call: Call, r: v.OrderReq) -> dict:
    return bodies.approval(call.lender, _order(call, r.order_no, r.product_id))


# ---- 14-18: repayment and extension ----


def _disbursed(order: OrderRec, allowed: tuple[Status, ...] = tuple(DISBURSED)) -> None:
    if order.status not in allowed:
        names = "/".join(str(int(s)) for s in allowed)
        raise SandboxError(
            "wrong_state", f"order {order.order_no} is in status {order.status}; this needs {names}"
        )


def repay_plan(call: Call, r: v.OrderReq) -> dict:
    order = _order(call, r.order_no, r.product_id)
    _disbursed(order)
    return bodies.repay_plan(call.lender, call.conn, call.partner, order, call.now)


def _delay_term(product: Product, order: OrderRec, term: int | None) -> int:
    ext = product.extension
    if not ext.enabled:
        raise SandboxError(
            "extension_not_allowed", f"product {product.product_id} has no extension"
        )
    if order.extensions >= ext.limit:
        raise SandboxError(
            "extension_not_allowed", f"limit reached ({order.extensions}/{ext.limit})"
        )
    term = term or ext.default_term
    if term not in ext.terms:
        unit = "days" if ext.term_unit == 1 else "months"
        raise SandboxError(
            "extension_not_allowed", f"delay_term {term}: offered {list(ext.terms)} ({unit})"
        )
    return term


def repay_detail(call: Call, r: v.RepayDetailReq) -> dict:
    order = _order(call, r.order_no, r.product_id, lock=True)
    _disbursed(order, (Status.REPAYING, Status.OVERDUE))
    product = call.lender.product(order.product_id)
    method = call.lender.methods.get(r.method_code)
    if method is None or method.repay_method != r.repay_method:
        raise SandboxError(
            "unknown_bank",
            f"method_code {r.method_code!r} with repay_method "
            f"{r.repay_method} (see 07 get-bank-list action_type 2)",
        )
    delay_term = None
    if r.repay_type == 2:
        delay_term = _delay_term(product, order, r.delay_term)
        amount = bodies.extension_quote(call.lender, order, delay_term, call.now)["delay_amount"]
    else:
        amount = bodies.balance(order, product, call.now).total
    code = payments.issue_code(
        call.lender,
        call.conn,
        order,
        call.now,
        repay_type=r.repay_type,
        method=method,
        amount=amount,
        delay_term=delay_term,
    )
    return {
        "order_no": order.order_no,
        "repay_amount": code.amount,
        "repay_code": code.code,
        "expire_time": call.lender.fmt(code.expires_at),
        "bank_code": code.bank_code,
        "method_code": code.method_code,
        "merchant_name": code.merchant_name,
    }


def delay_list(call: Call, r: v.OrderReq) -> dict:
    order = _order(call, r.order_no, r.product_id)
    _disbursed(order)
    return bodies.delay_list(call.lender, call.conn, order)


def delay_interest(call: Call, r: v.DelayInterestReq) -> dict:
    order = _order(call, r.order_no, r.product_id)
    _disbursed(order, (Status.REPAYING, Status.OVERDUE))
    product = call.lender.product(order.product_id)
    term = _delay_term(product, order, r.delay_term)
    return bodies.extension_quote(call.lender, order, term, call.now)


def delay_detail(call: Call, r: v.OrderReq) -> dict:
    order = _order(call, r.order_no, r.product_id)
    _disbursed(order)
    return bodies.delay_detail(call.lender, call.conn, order, call.now)


# ---- the table ----


@dataclass(frozen=True)
class Endpoint:
    """An endpoint of the protocol and the handler that implements it."""

    spec: Spec
    handler: Callable[[Call, Any], dict]

    @property
    def path(self) -> str:
        return self.spec.path


HANDLERS: dict[str, Callable[[Call, Any], dict]] = {
    "/get-loan-precheck": precheck,
    "/get-loan-amount": loan_amount,
    "/get-loan-interest": loan_interest,
    "/push-basic-info": push_basic_info,
    "/push-supplement-info": push_supplement_info,
    "/get-bank-list": bank_list,
    "/push-bind-bank": bind_bank,
    "/get-bind-bank": get_bind_bank,
    "/get-loan-contract": loan_contract,
    "/push-order-confirm": order_confirm,
    "/get-order-status": order_status,
    "/get-approval-result": approval_result,
    "/get-repay-plan": repay_plan,
    "/get-repay-detail": repay_detail,
    "/get-delay-list": delay_list,
    "/get-delay-interest": delay_interest,
    "/get-delay-detail": delay_detail,
}
ENDPOINTS: tuple[Endpoint, ...] = tuple(Endpoint(spec, HANDLERS[spec.path]) for spec in SPECS)
BY_PATH: dict[str, Endpoint] = {e.path: e for e in ENDPOINTS}
