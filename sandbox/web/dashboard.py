"""The dashboard: a partner at a glance, an order with every callback attempt and a partner's
acceptance report, in English or 中文, refreshing itself while its clock moves (htmx, vendored
under /static; the pages work without it).

Pages read `services.overview`. Every form posts to /dashboard/do/{action} and is handled in
one place (`act`): read the form, run the action (a row of ACTIONS, through the services) in
the thread pool, and go back to the page the form was on with a flash message saying what
happened — or, looking like an error, what went wrong. Guarded like /sandbox/* (web.app).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, get_args
from urllib.parse import parse_qsl, quote, unquote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..core import enums
from ..core.banks import PAYOUT_FAILURES
from ..core.clock import ClockError
from ..core.control_models import ClockAdvance, ClockSet, parse
from ..core.errors import ControlError, SandboxError
from ..core.faultrules import FAULT_KINDS, READ_ONLY, Rule
from ..core.lifecycle import Status
from ..core.protocol import PATHS
from ..services import conformance, control, deliveries, faults, overview, payments
from ..services.lender import Lender
from . import i18n
from .pages import render

Form = dict[str, str]
FLASH = "lender_sandbox_flash"
COMMON_RULE_FIELDS = {"kind", "path", "partner_token", *READ_ONLY}


# ---- reading a form ----


async def _form(request: Request) -> Form:
    """The forms post a few urlencoded fields: the stdlib parses them (no multipart)."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace")))


def _text(f: Form, name: str) -> str:
    value = f.get(name, "").strip()
    if not value:
        raise ControlError("missing_field", f"{name} is required")
    return value


def _number(f: Form, name: str, kind: type = int) -> Any:
    """An optional number field: None when empty."""
    value = f.get(name, "").strip()
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ControlError("invalid_field", f"{name} must be {what}, not {value!r}") from None


def _given(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


# ---- the actions: (lender, form) -> (message, args) ----

Done = tuple[str, tuple[Any, ...]]


def _advance(lender: Lender, f: Form) -> Done:
    seconds = parse(ClockAdvance, {"by": f.get("by", "")}).total
    out = control.advance_clock(lender, _text(f, "partner"), seconds)
    return "Clock advanced to {0}; {1} events fired", (out["now"], out["events_fired"])


def _set_clock(lender: Lender, f: Form) -> Done:
    to = parse(ClockSet, {"to": _text(f, "to")}).instant
    out = control.set_clock(lender, _text(f, "partner"), to)
    return "Clock set to {0}; {1} events fired", (out["now"], out["events_fired"])


def _clock_mode(lender: Lender, f: Form) -> Done:
    mode = _text(f, "mode")
    rate = _number(f, "rate", float) if mode == "scaled" else None
    control.update_partner(lender, _text(f, "partner"), _given(clock_mode=mode, clock_rate=rate))
    return "Clock mode: {0}", (mode,)


def _reset(lender: Lender, f: Form) -> Done:
    out = control.reset(lender, _text(f, "partner"))
    return "Reset: {0} orders deleted", (out["orders_deleted"],)


def _callback_url(lender: Lender, f: Form) -> Done:
    url = f.get("callback_url", "").strip()
    control.update_partner(lender, _text(f, "partner"), {"callback_url": url})
    return ("Callback URL set to {0}", (url,)) if url else ("Callback URL removed", ())


def _pause(lender: Lender, f: Form) -> Done:
    control.update_partner(lender, _text(f, "partner"), {"callbacks_paused": True})
    return "Callbacks paused", ()


def _resume(lender: Lender, f: Form) -> Done:
    control.update_partner(lender, _text(f, "partner"), {"callbacks_paused": False})
    return "Callbacks resumed", ()


def _transition(lender: Lender, f: Form) -> Done:
    trigger = _text(f, "trigger")
    body = _given(
        partner_token=_text(f, "partner"),
        trigger=trigger,
        amount=_number(f, "amount"),
        reason=f.get("reason", "").strip() or None,
        delay_term=_number(f, "delay_term"),
    )
    out = control.transition(lender, _text(f, "order_no"), body)
    return "{0}: done, the order is now {1}", (trigger, out["status"])


def _pay(lender: Lender, f: Form) -> Done:
    out = payments.pay(lender, _text(f, "repay_code"))
    return "Paid {0} with {1}: the order is now {2}", (
        out["amount"],
        out["repay_code"],
        out["order_status"],
    )


def _redeliver(lender: Lender, f: Form) -> Done:
    out = deliveries.redeliver(lender, _number(f, "id") or 0)
    return "Callback #{0} will be sent again", (out["id"],)


def _add_fault(lender: Lender, f: Form) -> Done:
    kind = _text(f, "kind")
    own = {"ms": _number(f, "ms"), "status": _number(f, "status"), "code": _number(f, "code")}
    rule = _given(
        kind=kind,
        path=f.get("path", ""),
        partner_token=_text(f, "partner"),
        count=_number(f, "count"),
        probability=_number(f, "probability", float),
        **{k: v for k, v in own.items() if k in _kind_fields(kind)},
    )
    out = faults.add_rules(lender, rule)
    return "Fault rule #{0} added: {1}", (out["rules"][-1]["id"], kind)


def _delete_fault(lender: Lender, f: Form) -> Done:
    faults.clear_rules(lender, _number(f, "id") or 0)
    return "Fault rule #{0} deleted", (f.get("id"),)


def _new_run(lender: Lender, f: Form) -> Done:
    out = conformance.reset(lender, _text(f, "partner"))
    return "A new acceptance run started; {0} orders kept", (out["orders_kept"],)


ACTIONS: dict[str, Callable[[Lender, Form], Done]] = {
    "advance": _advance,
    "set_clock": _set_clock,
    "clock_mode": _clock_mode,
    "reset": _reset,
    "callback_url": _callback_url,
    "pause": _pause,
    "resume": _resume,
    "transition": _transition,
    "pay": _pay,
    "redeliver": _redeliver,
    "add_fault": _add_fault,
    "delete_fault": _delete_fault,
    "new_run": _new_run,
}


# kind -> its model: the form's ms/status/code go only to the kinds that have them
RULE_MODELS = {
    get_args(model.model_fields["kind"].annotation)[0]: model
    for model in get_args(get_args(Rule)[0])
}


def _kind_fields(kind: str) -> set[str]:
    model = RULE_MODELS.get(kind)
    return set(model.model_fields) & {"ms", "status", "code"} if model else set()


# ---- coming back to the page ----


def _back(target: str) -> str:
    """Only back to a dashboard page (never elsewhere: the form field is user input)."""
    if target.startswith("/dashboard") and not target.startswith("//"):
        return target
    return "/dashboard"


def _flash(response: Response, kind: str, text: str, args: tuple[Any, ...] = ()) -> Response:
    doc = json.dumps({"kind": kind, "text": text, "args": [str(a) for a in args]})
    response.set_cookie(FLASH, quote(doc), max_age=60, httponly=True, samesite="lax")
    return response


def _read_flash(request: Request, _: i18n.Gettext) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH)
    if not raw:
        return None
    try:
        doc = json.loads(unquote(raw))
        return {"kind": str(doc["kind"]), "text": _(str(doc["text"]), *doc["args"])}
    except (ValueError, KeyError, TypeError):
        return None


async def act(lender: Lender, request: Request) -> Response:
    """POST /dashboard/do/{action}: the one place a dashboard form is handled."""
    form = await _form(request)
    back = RedirectResponse(_back(form.get("back", "")), status_code=303)
    action = ACTIONS.get(request.path_params["action"])
    if action is None:
        return _flash(back, "error", "Unknown action {0}", (request.path_params["action"],))
    try:
        text, args = await run_in_threadpool(action, lender, form)
    except (SandboxError, ClockError) as e:
        return _flash(back, "error", getattr(e, "message", str(e)))
    return _flash(back, "ok", text, args)


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


def _page(request: Request, name: str, http_status: int = 200, **ctx: Any) -> Response:
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
        **ctx,
    )
    if FLASH in request.cookies:
        response.delete_cookie(FLASH, httponly=True, samesite="lax")
    return i18n.remember(request, response)


def routes(lender: Lender) -> list[Route]:
    def index(request: Request) -> Response:
        partners = control.list_partners(lender)
        token = request.query_params.get("partner") or (
            partners[0]["partner_token"] if partners else ""
        )
        given = request.query_params.get("status", "")
        status = int(given) if given.isdigit() else None
        try:
            page = overview.partner_page(lender, token, status) if token else None
        except SandboxError as e:
            return _page(request, "dash_missing.html", 404, problem=e.message, token="")
        return _page(
            request,
            "dashboard.html",
            partners=partners,
            token=token,
            status_filter=status,
            statuses=[int(s) for s in Status],
            page=page,
            warnings=lender.warnings(),
        )

    def order(request: Request) -> Response:
        token = request.query_params.get("partner", "demo")
        order_no = request.path_params["order_no"]
        try:
            page = overview.order_page(lender, token, order_no)
        except SandboxError as e:
            return _page(request, "dash_missing.html", 404, problem=e.message, token=token)
        return _page(request, "dashboard_order.html", o=page["order"], page=page, token=token)

    def acceptance(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            page = overview.conformance_page(lender, token)
        except SandboxError as e:
            return _page(request, "dash_missing.html", 404, problem=e.message, token="")
        return _page(
            request,
            "dash_conformance.html",
            token=token,
            report=page["report"],
            sections=page["sections"],
            evidence_href=_evidence_href(token, page["delivery_orders"]),
        )

    async def do(request: Request) -> Response:
        return await act(lender, request)

    return [
        Route("/", lambda r: RedirectResponse("/dashboard"), methods=["GET"]),
        Route("/dashboard", index, methods=["GET"]),
        Route("/dashboard/orders/{order_no}", order, methods=["GET"]),
        Route("/dashboard/partners/{token}/conformance", acceptance, methods=["GET"]),
        Route("/dashboard/do/{action}", do, methods=["POST"]),
    ]
