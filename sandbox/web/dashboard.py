"""The dashboard: a browser view of partners, clocks, orders, timelines, callbacks and requests.

Read from the same control operations as the JSON API, plus two forms (advance a clock,
force a transition) that redirect back. Guarded like /sandbox/* (web.app).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..core.control_models import ClockAdvance, parse
from ..core.errors import SandboxError
from ..core.lifecycle import Status
from ..services import control, overview
from ..services.lender import Lender
from .pages import render


def _render(name: str, **ctx: Any) -> HTMLResponse:
    return render(name, **ctx)


async def _form(request: Request) -> dict[str, str]:
    """The two forms post a couple of urlencoded fields: the stdlib parses them."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace")))


def routes(lender: Lender) -> list[Route]:
    def index(request: Request) -> Response:
        partners = control.list_partners(lender)
        token = request.query_params.get("partner") or (
            partners[0]["partner_token"] if partners else ""
        )
        status = request.query_params.get("status")
        orders = control.list_orders(
            lender, token, int(status) if status and status.isdigit() else None, 100
        )
        return _render(
            "dashboard.html",
            partners=partners,
            token=token,
            orders=orders,
            counts=overview.order_counts(lender, token),
            statuses=list(Status),
            callbacks=overview.callback_states(lender, token),
            requests=overview.recent_requests(lender, token),
            fmt=lender.fmt,
            clock=control.get_clock(lender, token) if token else None,
            message=request.query_params.get("msg", ""),
            warnings=lender.warnings(),
        )

    def order(request: Request) -> Response:
        token = request.query_params.get("partner", "demo")
        try:
            detail = control.order_detail(lender, token, request.path_params["order_no"])
        except SandboxError as e:
            return HTMLResponse(f"<p>{e.message}</p>", status_code=404)
        return _render(
            "dashboard_order.html",
            o=detail,
            token=token,
            message=request.query_params.get("msg", ""),
        )

    def back(path: str, msg: str) -> RedirectResponse:
        sep = "&" if "?" in path else "?"
        return RedirectResponse(f"{path}{sep}msg={quote(msg)}", status_code=303)

    async def advance(request: Request) -> Response:
        form = await _form(request)
        token = str(form.get("partner", ""))
        try:
            seconds = parse(ClockAdvance, {"by": str(form.get("by", ""))}).total
            out = await run_in_threadpool(control.advance_clock, lender, token, seconds)
            msg = f"clock advanced to {out['now']}; {out['events_fired']} events fired"
        except SandboxError as e:
            msg = e.message
        return back(f"/dashboard?{urlencode({'partner': token})}", msg)

    async def force(request: Request) -> Response:
        form = await _form(request)
        token, order_no = str(form.get("partner", "")), request.path_params["order_no"]
        trigger = str(form.get("trigger", ""))
        try:
            await run_in_threadpool(
                control.transition, lender, order_no, {"partner_token": token, "trigger": trigger}
            )
            msg = f"{trigger}: done"
        except SandboxError as e:
            msg = e.message
        return back(f"/dashboard/orders/{order_no}?{urlencode({'partner': token})}", msg)

    return [
        Route("/", lambda r: RedirectResponse("/dashboard"), methods=["GET"]),
        Route("/dashboard", index, methods=["GET"]),
        Route("/dashboard/orders/{order_no}", order, methods=["GET"]),
        Route("/dashboard/clock", advance, methods=["POST"]),
        Route("/dashboard/orders/{order_no}/transition", force, methods=["POST"]),
    ]
