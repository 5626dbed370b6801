"""A control route: its row in the table (`ControlRoute`), a request to it parsed (`Call`), and
its endpoint — who calls (web.guard), the body and query as their models, whether that caller
may (the row's `scope`, core.tenancy), the handler off the event loop, the answer as JSON.

The one place a control request is authorized: a row cannot be made without a scope, and
every request to it passes `permitted` before its handler runs.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..core import control_models as m
from ..core import inputs, paging
from ..core.control_parsing import parse
from ..core.errors import ControlError, SandboxError
from ..core.faultrules import RuleBody
from ..core.tenancy import ADMIN_CALLER, Caller, Scope, authorize
from ..services.lender import Lender
from .guard import caller


@dataclass(frozen=True)
class Call:
    """One control request, parsed: path parameters, body and query as their models."""

    lender: Lender
    path: dict[str, Any]
    body: Any = None
    query: Any = None
    base_url: str = ""  # how the client reached us (links when [server] public_url is unset)
    state: Any = None  # the app's state (the scheduler's heartbeat, for /health)


@dataclass(frozen=True)
class ControlRoute:
    method: str
    path: str  # under /sandbox
    tag: str
    summary: str
    handler: Callable[[Call], Any]
    answer: Any  # a model or list[model]: what the route answers (200)
    body: type[BaseModel] | Any | None = None  # the body's model (RuleBody: fault rules)
    query: type[m.Query] | None = None
    description: str = ""
    blocking: bool = True  # runs in the thread pool (it reads or writes the store)
    statuses: tuple[int, ...] = field(default=(400, 404))  # the 4xx (and 503) it may answer
    # Whose token it takes (core.tenancy): every row must say, so no route forgets it.
    scope: Scope = field(kw_only=True)

    @property
    def full_path(self) -> str:
        return "/sandbox" + self.path

    @property
    def paged(self) -> bool:
        """A list answered a page at a time (`limit`, `cursor`; the next page in headers)."""
        return self.query is not None and "cursor" in self.query.model_fields


# ---- whose request it is ----


def named_partner(scope: Scope, call: Call) -> str | None:
    """The partner a request names where its route's scope says (None: it names none)."""
    if scope.where == "path":
        value = call.path.get(scope.name)
    elif scope.where == "query":
        value = getattr(call.query, scope.name, None)
    elif scope.where == "body":
        body = call.body
        value = body.get(scope.name) if isinstance(body, dict) else getattr(body, scope.name, None)
    elif scope.where == "owner":
        assert scope.owner is not None
        value = scope.owner(call)
    else:
        value = None
    return value if isinstance(value, str) and (value or scope.where == "owner") else None


def _own(scope: Scope, call: Call, partner: str) -> Call:
    """The request as if it named `partner` where its route takes a partner."""
    if scope.where == "query":
        return replace(call, query=call.query.model_copy(update={scope.name: partner}))
    if isinstance(call.body, dict):  # fault rules: the partner of one rule, or of the set
        return replace(call, body={**call.body, scope.name: partner})
    return replace(call, body=call.body.model_copy(update={scope.name: partner}))


def permitted(route: ControlRoute, call: Call, who: Caller) -> Call:
    """`call`, if `who` may make it (with a partner's own partner filled in where the route
    takes one and none was named); ControlError 403 (or 404 for an object that is not the
    partner's) otherwise."""
    scope = route.scope
    named = named_partner(scope, call)
    if named is None and scope.absent == "own" and not who.admin:
        assert who.partner is not None
        call = _own(scope, call, who.partner)
        named = who.partner
    if scope.where == "owner" and named is None and not who.admin:
        raise ControlError(
            "not_found", f"partner {who.partner!r} has no such {scope.name}", http_status=404
        )
    authorize(who, scope, named)
    return call


# ---- the endpoint ----


def json_error(e: SandboxError) -> JSONResponse:
    status = e.http_status if e.http_status >= 400 else 400
    return JSONResponse({"code": e.code, "error": e.name, "message": e.message}, status_code=status)


def _json_body(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw, parse_float=inputs.number)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise ControlError("bad_envelope", "the body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ControlError("bad_envelope", "the body must be a JSON object")
    found = inputs.problem(doc, raw)
    if found is not None:
        raise ControlError("invalid_field", " ".join(found))
    return doc


def _check_path(values: Any) -> None:
    """Path values the store can look up: nothing is named by text it cannot hold (a %00),
    so 404 like any unknown name."""
    if bad := inputs.bad_text(values.items()):
        raise ControlError("not_found", f"nothing has a {bad[0]} that {bad[1]}", http_status=404)


def _check_query(values: Any) -> None:
    if bad := inputs.bad_text(values.multi_items()):
        raise ControlError("invalid_field", f"query parameter {bad[0]} {bad[1]}")


def _parse(route: ControlRoute, request: Request, raw: bytes) -> Call:
    _check_path(request.path_params)
    _check_query(request.query_params)
    body = None
    if route.body is RuleBody:
        body = _json_body(raw)  # fault rules: `faults.parse_body` reads one rule or a set
    elif route.body is not None:
        body = parse(route.body, _json_body(raw))
    query = parse(route.query, dict(request.query_params)) if route.query else None
    return Call(
        lender=request.app.state.lender,
        path=dict(request.path_params),
        body=body,
        query=query,
        base_url=str(request.base_url),
        state=request.app.state,
    )


def _run(route: ControlRoute, call: Call, who: Caller) -> Any:
    return route.handler(permitted(route, call, who))


def endpoint(route: ControlRoute) -> Callable[[Request], Awaitable[Response]]:
    """The ASGI endpoint of a route: who calls (401 before anything is read), parse (400),
    may they (403), run (off the loop when it blocks), answer JSON."""

    async def answer(request: Request) -> Response:
        try:
            who = ADMIN_CALLER if route.scope.kind == "public" else await caller(request)
            raw = await request.body() if route.body is not None else b""
            call = _parse(route, request, raw)
            if route.blocking:
                result = await run_in_threadpool(_run, route, call, who)
            else:  # its scope reads no store (a test holds the table to it)
                result = await route.handler(permitted(route, call, who))
        except SandboxError as e:
            return json_error(e)
        if isinstance(result, paging.Page):
            query = dict(request.query_params)
            return JSONResponse(
                result.body, headers=paging.headers(request.url.path, query, result)
            )
        return result if isinstance(result, Response) else JSONResponse(result)

    answer.__name__ = answer.__qualname__ = route.method.lower() + route.path.replace(
        "/", "_"
    ).replace("{", "").replace("}", "").replace(":", "_")
    return answer
