"""Pages a person opens: the loan contract (10), URL repayment (14 url_info), product icons.

Links are signed with the partner's key (`Lender.sign`), so a page shows an order's personal
data only to someone holding a link the lender handed out.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from . import control, pricing, views
from .errors import SandboxError
from .lender import Lender
from .lifecycle import Status
from .store import BankCard, Order, Partner, RepayCode

TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(["html"]))


def _page(name: str, status: int = 200, **ctx: object) -> HTMLResponse:
    return HTMLResponse(TEMPLATES.get_template(name).render(**ctx), status_code=status)


def _error(message: str, status: int) -> HTMLResponse:
    return _page("message.html", status, title="Tidak tersedia", message=message)


def _signed_order(lender: Lender, s, request: Request, purpose: str) -> tuple[Partner, Order] | None:
    token, order_no = request.path_params["token"], request.path_params["order_no"]
    partner = s.get(Partner, token)
    if partner is None:
        return None
    if not hmac.compare_digest(lender.sign(partner, purpose, order_no), request.query_params.get("sig", "")):
        return None
    order = s.scalars(select(Order).where(Order.partner_token == token, Order.order_no == order_no)).first()
    return (partner, order) if order else None


def routes(lender: Lender) -> list[Route]:
    def contract(request: Request) -> Response:
        with lender.store.transaction() as s:
            found = _signed_order(lender, s, request, "contract")
            if found is None:
                return _error("Tautan kontrak tidak valid atau pesanan tidak ditemukan.", 404)
            partner, order = found
            product = lender.product(order.product_id)
            now = lender.now(partner)
            amount = order.approved_amount or order.application_amount
            term = order.approved_term or order.application_term
            q = pricing.quote(product, amount, term)
            card = s.scalars(select(BankCard).where(BankCard.order_id == order.id,
                                                    BankCard.active.is_(True))).first()
            due = order.due_at or pricing.due_at(product, now, term)
            return _page("contract.html", order=order, product=product, quote=q, card=card,
                         partner=partner, unit="hari" if product.term_unit == 1 else "bulan",
                         rate=views.rate_text(product.interest_rate * 100), today=lender.fmt(now),
                         due=lender.fmt(due), approved=order.approved_amount is not None,
                         overdue_rate=views.rate_text(product.overdue_rate * 100))

    def repay_page(request: Request) -> Response:
        with lender.store.transaction() as s:
            found = _signed_order(lender, s, request, "repay")
            if found is None:
                return _error("Tautan pembayaran tidak valid atau pesanan tidak ditemukan.", 404)
            partner, order = found
            now = lender.now(partner)
            payable = order.status in (Status.REPAYING, Status.OVERDUE)
            plan = views.repay_plan(lender, s, order, now) if order.loan_time else None
            return _page("repay.html", order=order, plan=plan, payable=payable,
                         paid=request.query_params.get("paid"), error=request.query_params.get("error"))

    async def repay_submit(request: Request) -> Response:
        # One click pays the full amount due now: a code is issued and paid at once.
        from starlette.concurrency import run_in_threadpool
        return await run_in_threadpool(_pay_now, request)

    def _pay_now(request: Request) -> Response:
        with lender.store.transaction() as s:
            found = _signed_order(lender, s, request, "repay")
            if found is None:
                return _error("Tautan pembayaran tidak valid.", 404)
            partner, order = found
            now = lender.now(partner)
            if order.status not in (Status.REPAYING, Status.OVERDUE):
                return _error("Pesanan ini tidak memiliki tagihan.", 409)
            amount = views.balance(order, lender.product(order.product_id), now).total
            code = RepayCode(code=f"URL{order.id}T{int(now)}", order_id=order.id,
                             partner_token=partner.partner_token, repay_type=1, delay_term=None,
                             amount=amount, repay_method=1, bank_code="URL", method_code="URL",
                             merchant_name="", created_at=now, expires_at=now + 3600, state="open")
            s.add(code)
            value = code.code
        sig = request.query_params.get("sig", "")
        base = f"/repay/{request.path_params['token']}/{request.path_params['order_no']}?sig={sig}"
        try:
            control.pay(lender, value, source="page")
        except SandboxError as e:
            return RedirectResponse(f"{base}&error={quote(e.detail or e.message)}", status_code=303)
        return RedirectResponse(f"{base}&paid=1", status_code=303)

    def icon(request: Request) -> Response:
        pid = request.path_params["product_id"]
        product = lender.products.get(pid)
        if product is None:
            return Response(status_code=404)
        letters = "".join(w[0] for w in product.product_name.split()[:2]).upper()
        svg = TEMPLATES.get_template("icon.svg").render(letters=letters,
                                                         hue=sum(map(ord, pid)) * 47 % 360)
        return Response(svg, media_type="image/svg+xml")

    return [
        Route("/contract/{token}/{order_no}", contract, methods=["GET"]),
        Route("/repay/{token}/{order_no}", repay_page, methods=["GET"]),
        Route("/repay/{token}/{order_no}", repay_submit, methods=["POST"]),
        Route("/assets/product/{product_id}.svg", icon, methods=["GET"]),
    ]
