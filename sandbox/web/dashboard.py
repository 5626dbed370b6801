"""The dashboard: a partner at a glance, an order with every callback attempt and a partner's
acceptance report, in English or 中文, refreshing itself while its clock moves (htmx, vendored
under /static; the pages work without it).

Pages read `services.overview`; every form posts to /dashboard/do/{action}
(web.dashboard_actions). Who may see what: web.dashboard_session — open on a loopback sandbox
without an admin token; elsewhere a login with the admin token (everything) or a partner's
control token (that partner only).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..core import enums, inputs
from ..core.banks import PAYOUT_FAILURES
from ..core.errors import ControlError, SandboxError
from ..core.faultrules import FAULT_KINDS, READ_ONLY
from ..core.lifecycle import Status
from ..core.paging import MAX_LIMIT
from ..core.protocol import PATHS
from ..core.tenancy import Caller
from ..services import control, overview
from ..services.lender import Lender
from . import i18n
from .dashboard_actions import FLASH, act, back_to, read_form
from .dashboard_session import LoginNeeded, Session, Sessions, check_csrf, login_url
from .guard import error_body
from .pages import render

COMMON_RULE_FIELDS = {"kind", "path", "partner_token", *READ_ONLY}


def _read_flash(request: Request, _: i18n.Gettext) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH)
    if not raw:
        return None
    try:
        doc = json.loads(unquote(raw))
        return {"kind": str(doc["kind"]), "text": _(str(doc["text"]), *doc["args"])}
    except (ValueError, KeyError, TypeError):
        return None


# ---- the pages ----


def _here(request: Request) -> str:
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return request.url.path + (f"?{urlencode(query)}" if query else "")


def _status_label(lang: str) -> Callable[[int], str]:
    zh = enums.meanings("order_status", "zh")

    def label(code: int) -> str:
        if lang == "zh":
            return zh.get(int(code), str(code))
        try:
            return Status(int(code)).name.lower()
        except ValueError:
            return str(code)

    return label


def _fault_settings(rule: dict[str, Any]) -> dict[str, Any]:
    """What a stored rule says besides its kind, path and partner (shown on one line)."""
    shown = {k: v for k, v in rule.items() if k not in COMMON_RULE_FIELDS}
    return {k: v for k, v in shown.items() if v not in (None, "") and (k, v) != ("probability", 1)}


def _evidence_href(token: str, delivery_orders: dict[int, str]) -> Callable[[dict], str]:
    """Where the dashboard shows a piece of the acceptance report's evidence: an order's page,
    a callback attempt's row on its order's page; a journal entry is its control route."""
    partner = f"?partner={quote(token, safe='')}"

    def href(e: dict[str, Any]) -> str:
        if e["kind"] == "order":
            order_no: str | None = str(e["id"])
        else:  # an attempt's delivery, when the page knows its order; a request: no page
            order_no = delivery_orders.get(e.get("delivery") or 0)
        if order_no is None:
            return str(e["link"])
        anchor = f"#callback-{e['delivery']}" if e["kind"] == "attempt" else ""
        return f"/dashboard/orders/{quote(order_no, safe='')}{partner}{anchor}"

    return href


STATUSES = [int(s) for s in Status]


def _status_filter(given: str) -> int | None:
    """The `status` a partner page lists; any other text lists every status."""
    code = int(given) if given.isdecimal() and len(given) < 10 else None
    return code if code in STATUSES else None


def _page_size(given: str) -> int | None:
    """The `limit` a partner page was given (1-MAX_LIMIT orders a page); None: not given, or
    not a size (the page lists the usual number)."""
    size = int(given) if given.isdecimal() and len(given) < 10 else 0
    return size if 1 <= size <= MAX_LIMIT else None


def _count(n: int) -> str:
    """A count of the partner page: past overview.COUNT_CAP it says so ("10000+")."""
    return f"{overview.COUNT_CAP}+" if n > overview.COUNT_CAP else str(n)


def _orders_link(token: str, limit: int | None) -> Callable[..., str]:
    """The partner page's links to its orders: of a status (None: all), from a cursor (None:
    the newest); a page size given stays."""

    def link(status: int | None = None, cursor: str | None = None) -> str:
        query: list[tuple[str, str | int]] = [("partner", token)]
        query += [("status", status)] if status is not None else []
        query += [("limit", limit)] if limit is not None else []
        query += [("cursor", cursor)] if cursor else []
        return "/dashboard?" + urlencode(query)

    return link


@dataclass(frozen=True)
class Visit:
    """A page request: its session (new: the cookie goes out with the page) and who it is."""

    request: Request
    session: Session
    new: bool
    who: Caller


def _page(visit: Visit, name: str, http_status: int = 200, **ctx: Any) -> Response:
    request = visit.request
    lang = i18n.choose(request)
    _ = i18n.gettext(lang)
    here = _here(request)
    sep = "&" if "?" in here else "?"
    response = render(
        name,
        http_status,
        _=_,
        lang=lang,
        switch=[(code, label, f"{here}{sep}lang={code}") for code, label in i18n.LANGS.items()],
        here=here,
        flash=_read_flash(request, _),
        status_label=_status_label(lang),
        meaning=lambda field, code: enums.meanings(field, lang).get(code, ""),
        payout_reason=lambda code: PAYOUT_FAILURES.get(code, ""),
        fault_settings=_fault_settings,
        fault_kinds=FAULT_KINDS,
        lender_paths=PATHS,
        csrf=visit.session["csrf"],
        viewer=visit.who,
        logged_in="who" in visit.session,
        **ctx,
    )
    if FLASH in request.cookies:
        response.delete_cookie(FLASH, httponly=True, samesite="lax")
    return i18n.remember(request, response)


def _problem(visit: Visit, e: SandboxError, token: str = "") -> Response:
    """A page that cannot be shown: not found (404), or not this viewer's (403)."""
    status = 403 if e.http_status == 403 else 404
    return _page(
        visit, "dash_missing.html", status, problem=e.message, token=token, forbidden=status == 403
    )


def _unreadable(visit: Visit) -> Response | None:
    """A page asked for by text nothing can be named by (a NUL, a lone surrogate: core.inputs)
    is not found, as on the control API; the store is never asked (PostgreSQL would refuse)."""
    request = visit.request
    bad = inputs.bad_text([*request.path_params.items(), *request.query_params.multi_items()])
    if bad is None:
        return None
    return _problem(visit, ControlError("not_found", f"nothing has a {bad[0]} that {bad[1]}"))


def _may_see(who: Caller, token: str) -> None:
    if not who.admin and token != who.partner:
        raise ControlError(
            "forbidden",
            f"you are logged in as partner {who.partner!r}: its pages only, not {token!r}'s",
            http_status=403,
        )


def routes(lender: Lender) -> list[Route]:
    sessions = Sessions(lender)

    def guarded(view: Callable[[Visit], Response]) -> Callable[[Request], Response]:
        """A page: the session (made on the first visit), who it is (or the login form)."""

        def page(request: Request) -> Response:
            session, new = sessions.ensure(request)
            try:
                who = sessions.caller(request)
            except LoginNeeded:
                return RedirectResponse(login_url(_here(request)), status_code=303)
            except ControlError as e:  # a bad bearer token (a script)
                return JSONResponse(error_body(e), status_code=e.http_status)
            visit = Visit(request, session, new, who)
            response = _unreadable(visit) or view(visit)
            return sessions.write(response, session) if new else response

        return page

    @guarded
    def index(visit: Visit) -> Response:
        who, query = visit.who, visit.request.query_params
        partners = (
            control.list_partners(lender)
            if who.admin
            else [control.get_partner(lender, str(who.partner))]
        )
        token = query.get("partner") or (partners[0]["partner_token"] if partners else "")
        status = _status_filter(query.get("status", ""))
        limit = _page_size(query.get("limit", ""))
        cursor = query.get("cursor") or None
        try:
            _may_see(who, token)
            page = (
                overview.partner_page(lender, token, status, cursor, limit or overview.ORDERS_PAGE)
                if token
                else None
            )
        except SandboxError as e:  # an unknown partner, another's, a cursor it never gave
            return _problem(visit, e)
        return _page(
            visit,
            "dashboard.html",
            partners=partners,
            token=token,
            status_filter=status,
            statuses=STATUSES,
            orders_link=_orders_link(token, limit),
            count=_count,
            page=page,
            warnings=lender.warnings(),
        )

    @guarded
    def order(visit: Visit) -> Response:
        own = visit.who.partner or "demo"
        token = visit.request.query_params.get("partner", own)
        order_no = visit.request.path_params["order_no"]
        try:
            _may_see(visit.who, token)
            page = overview.order_page(lender, token, order_no)
        except SandboxError as e:
            return _problem(visit, e, token)
        return _page(visit, "dashboard_order.html", o=page["order"], page=page, token=token)

    @guarded
    def acceptance(visit: Visit) -> Response:
        token = visit.request.path_params["token"]
        try:
            _may_see(visit.who, token)
            page = overview.conformance_page(lender, token)
        except SandboxError as e:
            return _problem(visit, e)
        return _page(
            visit,
            "dash_conformance.html",
            token=token,
            report=page["report"],
            sections=page["sections"],
            evidence_href=_evidence_href(token, page["delivery_orders"]),
        )

    def login_page(request: Request, http_status: int = 200, failed: bool = False) -> Response:
        session, new = sessions.ensure(request)
        who = Caller("")  # nobody yet: the page shows no partner
        target = back_to(request.query_params.get("next", ""))
        response = _page(
            Visit(request, session, new, who),
            "dash_login.html",
            http_status,
            target=target,
            failed=failed,
            open_access=sessions.open,
        )
        return sessions.write(response, session) if new else response

    async def login(request: Request) -> Response:
        form = await read_form(request)
        session = sessions.read(request)
        try:
            check_csrf(session, form)
        except ControlError:
            return login_page(request, 403, failed=True)
        fresh = await run_in_threadpool(sessions.log_in, session, form.get("token", "").strip())
        if fresh is None:
            return login_page(request, 401, failed=True)
        target = back_to(form.get("next", ""))
        return sessions.write(RedirectResponse(target, status_code=303), fresh)

    async def logout(request: Request) -> Response:
        form = await read_form(request)
        session = sessions.read(request)
        try:
            check_csrf(session, form)
        except ControlError:
            return RedirectResponse("/dashboard", status_code=303)
        out = RedirectResponse("/dashboard/login", status_code=303)
        return sessions.write(out, {"csrf": session["csrf"]})

    async def do(request: Request) -> Response:
        return await act(lender, sessions, request)

    return [
        Route("/", lambda r: RedirectResponse("/dashboard"), methods=["GET"]),
        Route("/dashboard", index, methods=["GET"]),
        Route("/dashboard/orders/{order_no}", order, methods=["GET"]),
        Route("/dashboard/partners/{token}/conformance", acceptance, methods=["GET"]),
        Route("/dashboard/login", login_page, methods=["GET"]),
        Route("/dashboard/login", login, methods=["POST"]),
        Route("/dashboard/logout", logout, methods=["POST"]),
        Route("/dashboard/do/{action}", do, methods=["POST"]),
    ]
