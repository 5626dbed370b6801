"""Pages a person opens: the loan contract (10), URL repayment (14 url_info), product icons.

The data comes from `services.pages`, which checks the signed links; this module renders it
(Jinja2, autoescaped) and maps a bad link to a page that says so.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..core.errors import SandboxError
from ..services import pages
from ..services.lender import Lender
from .templates import TEMPLATES


def render(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    return HTMLResponse(TEMPLATES.get_template(name).render(**ctx), status_code=status)


def _error(message: str, status: int) -> HTMLResponse:
    return render("message.html", status, title="Tidak tersedia", message=message)


def _link(request: Request) -> pages.Link:
    return pages.Link(
        request.path_params["token"],
        request.path_params["order_no"],
        request.query_params.get("sig", ""),
    )


def routes(lender: Lender) -> list[Route]:
    def contract(request: Request) -> Response:
        try:
            data = pages.contract(lender, _link(request))
        except pages.BadLink:
            return _error("Tautan kontrak tidak valid atau pesanan tidak ditemukan.", 404)
        return render("contract.html", **data)

    def repay_page(request: Request) -> Response:
        try:
            data = pages.repayment(lender, _link(request))
        except pages.BadLink:
            return _error("Tautan pembayaran tidak valid atau pesanan tidak ditemukan.", 404)
        return render(
            "repay.html",
            **data,
            paid=request.query_params.get("paid"),
            error=request.query_params.get("error"),
        )

    async def repay_submit(request: Request) -> Response:
        link = _link(request)
        base = f"/repay/{quote(link.token)}/{quote(link.order_no)}?sig={quote(link.sig)}"
        try:
            await run_in_threadpool(pages.pay_now, lender, link)
        except pages.BadLink:
            return _error("Tautan pembayaran tidak valid.", 404)
        except pages.NothingToPay:
            return _error("Pesanan ini tidak memiliki tagihan.", 409)
        except SandboxError as e:
            return RedirectResponse(f"{base}&error={quote(e.detail or e.message)}", status_code=303)
        return RedirectResponse(f"{base}&paid=1", status_code=303)

    def icon(request: Request) -> Response:
        pid = request.path_params["product_id"]
        product = lender.products.get(pid)
        if product is None:
            return Response(status_code=404)
        letters = "".join(w[0] for w in product.product_name.split()[:2]).upper()
        svg = TEMPLATES.get_template("icon.svg").render(
            letters=letters, hue=sum(map(ord, pid)) * 47 % 360
        )
        return Response(svg, media_type="image/svg+xml")

    return [
        Route("/contract/{token}/{order_no}", contract, methods=["GET"]),
        Route("/repay/{token}/{order_no}", repay_page, methods=["GET"]),
        Route("/repay/{token}/{order_no}", repay_submit, methods=["POST"]),
        Route("/assets/product/{product_id}.svg", icon, methods=["GET"]),
    ]
