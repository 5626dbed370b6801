"""What each dashboard form does: the actions (a row of ACTIONS each: the function, through
the services, and whose token it takes — core.tenancy, as the control routes), and `act`, the
one handler every form posts to (/dashboard/do/{action}): its CSRF token, who sends it,
whether they may, the action in the thread pool, and back to the page the form was on with a
flash message saying what happened — or, looking like an error, what went wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args
from urllib.parse import parse_qsl, quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..core import inputs
from ..core.clock import ClockError
from ..core.control_models import ClockAdvance, ClockSet
from ..core.control_parsing import parse
from ..core.errors import ControlError, SandboxError
from ..core.faultrules import Rule
from ..core.inputs import INT32_MAX
from ..core.tenancy import Caller, Scope, authorize, owned, partner
from ..services import conformance, control, credentials, deliveries, faults, payments
from ..services.lender import Lender
from .dashboard_session import LoginNeeded, Sessions, check_csrf, login_url

Form = dict[str, str]
FLASH = "lender_sandbox_flash"


# ---- reading a form ----


async def read_form(request: Request) -> Form:
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


def _check_text(f: Form) -> None:
    """Every field is text the store can hold (no NUL, no lone surrogate), as on the control
    API (core.inputs): PostgreSQL refuses a NUL even in a lookup."""
    if bad := inputs.bad_text(f.items()):
        raise ControlError("invalid_field", f"{bad[0]} {bad[1]}")


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
    out = deliveries.redeliver(lender, _id(f))
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
    faults.clear_rules(lender, _id(f))
    return "Fault rule #{0} deleted", (f.get("id"),)


def _new_run(lender: Lender, f: Form) -> Done:
    out = conformance.reset(lender, _text(f, "partner"))
    return "A new acceptance run started; {0} orders kept", (out["orders_kept"],)


@dataclass(frozen=True)
class FormCall:
    """A dashboard form as an action sees it (a scope's `owner` reads it too)."""

    lender: Lender
    form: Form


def _id(f: Form) -> int:
    """The row a form names; 0 (no row) when it names none the id columns can hold."""
    value = f.get("id", "").strip()
    number = int(value) if value.isdecimal() and len(value) < 20 else 0
    return number if number <= INT32_MAX else 0  # past the id columns: names nothing


FORM_PARTNER = partner("form", "partner")
# name -> (the action, whose token it takes: core.tenancy, as the control routes)
ACTIONS: dict[str, tuple[Callable[[Lender, Form], Done], Scope]] = {
    "advance": (_advance, FORM_PARTNER),
    "set_clock": (_set_clock, FORM_PARTNER),
    "clock_mode": (_clock_mode, FORM_PARTNER),
    "reset": (_reset, FORM_PARTNER),
    "callback_url": (_callback_url, FORM_PARTNER),
    "pause": (_pause, FORM_PARTNER),
    "resume": (_resume, FORM_PARTNER),
    "transition": (_transition, FORM_PARTNER),
    "pay": (
        _pay,
        owned(
            "payment code", lambda c: credentials.owner_of_code(c.lender, c.form.get("repay_code"))
        ),
    ),
    "redeliver": (
        _redeliver,
        owned("callback delivery", lambda c: credentials.owner_of_callback(c.lender, _id(c.form))),
    ),
    "add_fault": (_add_fault, FORM_PARTNER),
    "delete_fault": (
        _delete_fault,
        owned("fault rule", lambda c: credentials.owner_of_rule(c.lender, _id(c.form))),
    ),
    "new_run": (_new_run, FORM_PARTNER),
}


def _permitted(who: Caller, scope: Scope, call: FormCall) -> None:
    if scope.where == "owner":
        assert scope.owner is not None
        owner = scope.owner(call)
        if owner is None and not who.admin:
            raise ControlError(
                "not_found", f"partner {who.partner!r} has no such {scope.name}", 404
            )
        if owner is not None:
            authorize(who, scope, owner)
        return
    authorize(who, scope, call.form.get(scope.name, "").strip() or None)


def _run(lender: Lender, who: Caller, name: str, form: Form) -> Done:
    action, scope = ACTIONS[name]
    _permitted(who, scope, FormCall(lender, form))
    return action(lender, form)


# kind -> its model: the form's ms/status/code go only to the kinds that have them
RULE_MODELS = {
    get_args(model.model_fields["kind"].annotation)[0]: model
    for model in get_args(get_args(Rule)[0])
}


def _kind_fields(kind: str) -> set[str]:
    model = RULE_MODELS.get(kind)
    return set(model.model_fields) & {"ms", "status", "code"} if model else set()


# ---- coming back to the page ----


def back_to(target: str) -> str:
    """Only back to a dashboard page (never elsewhere: the form field is user input)."""
    if target.startswith("/dashboard") and not target.startswith("//"):
        return target
    return "/dashboard"


def _flash(response: Response, kind: str, text: str, args: tuple[Any, ...] = ()) -> Response:
    doc = json.dumps({"kind": kind, "text": text, "args": [str(a) for a in args]})
    response.set_cookie(FLASH, quote(doc), max_age=60, httponly=True, samesite="lax")
    return response


async def act(lender: Lender, sessions: Sessions, request: Request) -> Response:
    """POST /dashboard/do/{action}: the one place a dashboard form is handled — its CSRF
    token, who sends it, whether they may, the action; back to its page with a message."""
    form = await read_form(request)
    back = RedirectResponse(back_to(form.get("back", "")), status_code=303)
    name = request.path_params["action"]
    try:
        check_csrf(sessions.read(request), form)
        _check_text(form)
        who = await run_in_threadpool(sessions.caller, request)
        if name not in ACTIONS:
            return _flash(back, "error", "Unknown action {0}", (name,))
        text, args = await run_in_threadpool(_run, lender, who, name, form)
    except LoginNeeded:
        return RedirectResponse(login_url(back_to(form.get("back", ""))), status_code=303)
    except (SandboxError, ClockError) as e:
        return _flash(back, "error", getattr(e, "message", str(e)))
    return _flash(back, "ok", text, args)
