"""Fault injection (design.md "Control API": PUT/POST/GET/DELETE /sandbox/faults) and its effects.

A rule targets a lender path (or all), a partner (or all) and optionally one `order_no`, fires
with a `probability` (seeded when `seed` is given) and at most `count` times. Rules live in
the store, so every process of a shared instance applies the same rules and a count is
spent exactly once. Two layers apply them:
- HTTP faults (latency, http_error, drop, timeout, malformed) exist only over HTTP: the web
  layer's lender endpoint calls `serve`, which wraps `api.handle`;
- business faults (business_error, review_stuck, confirm_unknown, callback_first,
  payout_retry) are applied inside `api.handle` (`before_handler`, `after_handler`), so the
  in-process harness sees them too.
Every applied fault is named in the request's journal entry (`fault`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union

import anyio
import httpx
from pydantic import (BaseModel, ConfigDict, Field, TypeAdapter, ValidationError,
                      field_validator, model_validator)
from sqlalchemy import bindparam, delete, exists, or_, select, update
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from . import callbacks, journal
from . import clock as clockmod
from .control import ControlError
from .crypto import Codec, CryptoError
from .errors import BY_CODE, BY_NAME, SandboxError
from .lender import Lender
from .lifecycle import Status
from .protocol import parse_envelope, render
from .scenarios import rng_for
from .store import Callback, DueEvent, FaultRule, Order, Partner

MAX_LATENCY_MS = 60_000
MAX_HOLD_MS = 120_000
MAX_RULES = 100


@dataclass(frozen=True)
class FaultKind:
    """One kind of fault, as documented in GET /docs and /openapi.json."""
    name: str
    layer: str         # "http": the web layer only; "business": inside api.handle (in-process too)
    fields: str        # the kind's own fields (besides the common ones)
    handler_runs: str  # whether the lender really processes the request
    effect: str        # what the client sees


FAULT_KINDS: tuple[FaultKind, ...] = (
    FaultKind("latency", "http", "`ms` (0-60000) or `ms_range` [a, b]", "yes, after the delay",
              "The normal answer, `ms` later (asyncio.sleep: no worker thread is held)."),
    FaultKind("http_error", "http", "`status` 500 | 502 | 503 (default 503); `after_handler`",
              "no (yes with `after_handler`)",
              "An nginx-style HTML error page with that HTTP status instead of the envelope."),
    FaultKind("drop", "http", "`after_handler`", "no (yes with `after_handler`)",
              "The connection closes without a complete answer: the client gets a connection "
              "error (httpx RemoteProtocolError, curl error 18), never a body."),
    FaultKind("timeout", "http", "`ms` (1-120000, default 30000); `after_handler`",
              "no (yes with `after_handler`)",
              "The request is held `ms` (or until the client hangs up), then HTTP 504 "
              "Gateway Time-out."),
    FaultKind("malformed", "http", "`style` truncated | php_notice (default truncated)", "yes",
              "HTTP 200 with a body that is not JSON: the real answer cut in half, or preceded "
              "by a PHP notice."),
    FaultKind("business_error", "business", "`code` (default 10011), `message`", "no",
              "The envelope with that code and message (HTTP 200), before validation; "
              "nothing changes."),
    FaultKind("review_stuck", "business", "none; path /push-supplement-info", "yes",
              "The order's review never decides (it stays 90) until a transition is forced. "
              "A rule naming an order already under review applies when it is PUT."),
    FaultKind("confirm_unknown", "business",
              "`answer` http_504 | business_error (default http_504), `code`, `message`; "
              "path /push-order-confirm", "yes, and commits",
              "The confirm is carried out (the payout starts) but the answer is HTTP 504 or an "
              "error code: the unknown outcome. Retrying the confirm is idempotent."),
    FaultKind("callback_first", "business", "none", "yes",
              "The partner's pending callbacks are delivered before the synchronous answer "
              "leaves (over HTTP; in-process callbacks always arrive first)."),
    FaultKind("payout_retry", "business", "none; path /push-order-confirm", "yes",
              "The order's first payout fails (169); after re-binding a card (08) and "
              "confirming again (11) it succeeds."),
)
KIND_NAMES = tuple(k.name for k in FAULT_KINDS)
HTTP_KINDS = frozenset(k.name for k in FAULT_KINDS if k.layer == "http")
BEFORE_KINDS = frozenset({"business_error"})
AFTER_KINDS = frozenset(KIND_NAMES) - HTTP_KINDS - BEFORE_KINDS
HTTP_ANSWERS = frozenset({"http_error", "drop", "timeout", "malformed"})
READ_ONLY = ("id", "remaining", "matched", "applied", "spent", "created_at")


def lender_paths() -> tuple[str, ...]:
    from .api import ENDPOINTS  # api imports this module for its hooks
    return tuple(e.path for e in ENDPOINTS)


# ---- rules: one pydantic model per kind ----

Ms = Annotated[int, Field(ge=0, le=MAX_LATENCY_MS)]
Code = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class RuleBase(BaseModel):
    """The fields every rule has."""
    model_config = ConfigDict(extra="forbid")
    FIXED_PATH: ClassVar[str] = ""

    path: str = Field("", description='A lender endpoint path such as "/push-order-confirm", '
                                      'or "" for every path.')
    partner_token: str = Field("", max_length=64, description='"" for every partner.')
    order_no: str = Field("", max_length=32, description='Only requests about this order; '
                                                         '"" for any.')
    probability: float = Field(1.0, ge=0, le=1, description="Chance that a matching request "
                                                            "gets the fault.")
    seed: str | None = Field(None, max_length=100, description="Makes the probability rolls "
                                                               "(and ms_range) reproducible.")
    count: int | None = Field(None, ge=1, le=1_000_000, description="Apply at most this many "
                                                                    "times, then the rule is spent.")

    @field_validator("path")
    @classmethod
    def _known_path(cls, v: str) -> str:
        v = v.strip()
        if not v:
            return ""
        v = v if v.startswith("/") else "/" + v
        if v not in lender_paths():
            raise ValueError(f"{v} is not a lender endpoint; use one of "
                             f"{', '.join(lender_paths())}, or \"\" for all")
        return v

    @field_validator("partner_token", "order_no")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()

    @model_validator(mode="after")
    def _fixed_path(self) -> "RuleBase":
        if self.FIXED_PATH:
            if self.path not in ("", self.FIXED_PATH):
                raise ValueError(f"this kind applies to {self.FIXED_PATH} only: leave path empty")
            self.path = self.FIXED_PATH
        return self


class Latency(RuleBase):
    kind: Literal["latency"]
    ms: Ms | None = None
    ms_range: tuple[Ms, Ms] | None = None

    @model_validator(mode="after")
    def _one_delay(self) -> "Latency":
        if (self.ms is None) == (self.ms_range is None):
            raise ValueError('give either "ms" or "ms_range": [a, b]')
        if self.ms_range and self.ms_range[0] > self.ms_range[1]:
            raise ValueError("ms_range must be [low, high]")
        return self


class HttpError(RuleBase):
    kind: Literal["http_error"]
    status: Literal[500, 502, 503] = 503
    after_handler: bool = False


class Drop(RuleBase):
    kind: Literal["drop"]
    after_handler: bool = False


class Timeout(RuleBase):
    kind: Literal["timeout"]
    ms: Annotated[int, Field(ge=1, le=MAX_HOLD_MS)] = 30_000
    after_handler: bool = False


class Malformed(RuleBase):
    kind: Literal["malformed"]
    style: Literal["truncated", "php_notice"] = "truncated"


class BusinessError(RuleBase):
    kind: Literal["business_error"]
    code: Code = BY_NAME["fault_injected"].code
    message: str = Field("", max_length=500, description="Default: the catalog's message.")

    @field_validator("code")
    @classmethod
    def _not_success(cls, v: int) -> int:
        if v == 0:
            raise ValueError("code 0 means success: use a non-zero code")
        return v


class ReviewStuck(RuleBase):
    FIXED_PATH: ClassVar[str] = "/push-supplement-info"
    kind: Literal["review_stuck"]


class ConfirmUnknown(BusinessError):
    FIXED_PATH: ClassVar[str] = "/push-order-confirm"
    kind: Literal["confirm_unknown"]  # type: ignore[assignment]
    answer: Literal["http_504", "business_error"] = "http_504"


class CallbackFirst(RuleBase):
    kind: Literal["callback_first"]


class PayoutRetry(RuleBase):
    FIXED_PATH: ClassVar[str] = "/push-order-confirm"
    kind: Literal["payout_retry"]


Rule = Annotated[Union[Latency, HttpError, Drop, Timeout, Malformed, BusinessError,  # noqa: UP007
                       ReviewStuck, ConfirmUnknown, CallbackFirst, PayoutRetry],
                 Field(discriminator="kind")]
RULE = TypeAdapter(Rule)


class RuleSet(BaseModel):
    """PUT/POST body with several rules; a top-level partner_token scopes them."""
    model_config = ConfigDict(extra="forbid")
    partner_token: str = Field("", max_length=64, description="Only this partner's rules are "
                               "replaced (PUT); the default partner_token of each rule.")
    rules: list[Rule] = Field(max_length=MAX_RULES, description="The rules, at most 100.")


# ---- parsing a PUT/POST body ----

def _first_error(e: ValidationError) -> str:
    err = e.errors(include_url=False)[0]
    parts = [p for p in err["loc"] if p not in KIND_NAMES]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] in ("union_tag_not_found", "union_tag_invalid"):
        msg = f"kind must be one of {', '.join(KIND_NAMES)}"
    return f"{where}: {msg}" if where else msg


def _validate(validate: Callable[[Any], Any], doc: Any) -> Any:
    try:
        return validate(doc)
    except ValidationError as e:
        raise ControlError("invalid_field", _first_error(e)) from None


def _writable(rule: Any) -> Any:
    """A rule as GET shows it can be PUT back: the read-only fields are dropped."""
    return {k: v for k, v in rule.items() if k not in READ_ONLY} if isinstance(rule, dict) else rule


def parse_body(body: dict[str, Any]) -> tuple[str | None, list[RuleBase]]:
    """(scope, rules): scope None = every partner's rules, else that partner's only."""
    if "rules" in body:
        rules = body["rules"]
        doc = {**body, "rules": [_writable(r) for r in rules]} if isinstance(rules, list) else body
        ruleset = _validate(RuleSet.model_validate, doc)
        scope = ruleset.partner_token.strip() or None
        for i, rule in enumerate(ruleset.rules):
            if scope and rule.partner_token not in ("", scope):
                raise ControlError("invalid_field", f"rules[{i}].partner_token differs from "
                                                    f"the top-level partner_token {scope!r}")
            rule.partner_token = scope or rule.partner_token
        return scope, ruleset.rules
    if "kind" in body:
        rule = _validate(RULE.validate_python, _writable(body))
        return rule.partner_token or None, [rule]
    raise ControlError("missing_field", 'send one rule {"kind": ...} or {"rules": [...]}; kinds: '
                                        + ", ".join(KIND_NAMES))


# ---- the stored rules ----

def rule_view(row: FaultRule) -> dict[str, Any]:
    state = row.rule
    return {"id": row.id, **state["spec"], "remaining": row.remaining,
            "matched": state["matched"], "applied": state["applied"],
            "spent": row.remaining == 0, "created_at": clockmod.iso(row.created_at)}


def _check_partners(s: Any, scope: str | None, rules: Sequence[RuleBase] = ()) -> None:
    for token in {scope or "", *(r.partner_token for r in rules)} - {""}:
        if s.get(Partner, token) is None:
            raise ControlError("unknown_partner", f"partner_token {token!r}", http_status=404)


def list_rules(lender: Lender, partner: str | None = None) -> dict[str, Any]:
    q = select(FaultRule).order_by(FaultRule.id)
    if partner:
        q = q.where(FaultRule.partner_token == partner)
    with lender.store.transaction() as s:
        _check_partners(s, partner)
        return {"rules": [rule_view(r) for r in s.scalars(q)]}


def _save(lender: Lender, s: Any, rules: list[RuleBase]) -> None:
    rows = [FaultRule(partner_token=r.partner_token, path=r.path, remaining=r.count,
                      rule={"spec": r.model_dump(mode="json"), "matched": 0, "applied": 0},
                      created_at=lender.wall()) for r in rules]
    s.add_all(rows)
    s.flush()
    for row in rows:
        _stick_reviewing_now(s, row)


def put_rules(lender: Lender, body: dict[str, Any]) -> dict[str, Any]:
    """PUT /sandbox/faults: replace the rules — all of them, or one partner's.

    The body is one rule or {"rules": [...]}; a top-level `partner_token` (the rule's own for
    a single rule) replaces only that partner's rules and is the default of each rule.
    Common fields: path ("" = all), partner_token ("" = all), order_no ("" = any),
    probability (0-1, default 1), seed, count (then spent). Kinds (FAULT_KINDS):
    - latency {ms | ms_range}: the normal answer, later;
    - http_error {status 500|502|503}: an HTML error page, the request is not processed;
    - drop: the connection closes without an answer;
    - timeout {ms, default 30000}: held, then HTTP 504;
    - malformed {style truncated|php_notice}: HTTP 200 with a body that is not JSON;
      (http_error, drop and timeout take `after_handler: true` to process the request first)
    - business_error {code, message}: the envelope with that code, nothing processed;
    - review_stuck: the order's review never decides (06);
    - confirm_unknown {answer http_504|business_error}: the confirm (11) is carried out, the
      answer says it failed;
    - callback_first: pending callbacks are delivered before the answer;
    - payout_retry: the first payout fails, the second succeeds (at 11).
    """
    scope, rules = parse_body(body)
    with lender.store.transaction() as s:
        _check_partners(s, scope, rules)
        q = delete(FaultRule)
        s.execute(q.where(FaultRule.partner_token == scope) if scope else q)
        _save(lender, s, rules)
    return list_rules(lender, scope)


def add_rules(lender: Lender, body: dict[str, Any]) -> dict[str, Any]:
    """POST /sandbox/faults: add rules (same body as PUT) without touching the others."""
    scope, rules = parse_body(body)
    with lender.store.transaction() as s:
        _check_partners(s, scope, rules)
        _save(lender, s, rules)
    return list_rules(lender, scope)


def clear_rules(lender: Lender, rule_id: int | None = None,
                partner: str | None = None) -> dict[str, Any]:
    """DELETE /sandbox/faults[?id=][&partner_token=]: one rule, one partner's, or all."""
    q = delete(FaultRule)
    if rule_id is not None:
        q = q.where(FaultRule.id == rule_id)
    if partner:
        q = q.where(FaultRule.partner_token == partner)
    with lender.store.transaction() as s:
        _check_partners(s, partner)
        deleted = s.execute(q).rowcount
    if rule_id is not None and not deleted:
        raise ControlError("not_found", f"no fault rule with id {rule_id}"
                                            + (f" for partner {partner!r}" if partner else ""),
                           http_status=404)
    return {"deleted": deleted}


# ---- choosing the rules that fire for a request ----

@dataclass(frozen=True)
class Target:
    """What a request is about: rules match on these."""
    partner_token: str
    path: str
    order_no: str


@dataclass(frozen=True)
class Fired:
    """A rule that fires for one request (its count already spent)."""
    rule_id: int
    spec: dict[str, Any]
    ms: int | None = None  # latency / timeout: the delay chosen

    @property
    def kind(self) -> str:
        return str(self.spec["kind"])

    def describe(self) -> str:
        """The journal's `fault` text, e.g. "latency 300ms" or "http_error 503"."""
        s, k = self.spec, self.kind
        detail = {"latency": f" {self.ms}ms", "timeout": f" {self.ms}ms",
                  "http_error": f" {s.get('status')}", "malformed": f" {s.get('style')}",
                  "business_error": f" {s.get('code')}",
                  "confirm_unknown": f" {s.get('answer')}"}.get(k, "")
        return k + detail + (" after handler" if s.get("after_handler") else "")


def order_no_of(request: Any) -> str:
    """The order a decrypted request is about (05/06 nest it in order_info)."""
    if not isinstance(request, dict):
        return ""
    info = request.get("order_info")
    value = request.get("order_no") or (info.get("order_no") if isinstance(info, dict) else "")
    return str(value or "")


def _slot(kind: str) -> str:
    # At most one rule per slot fires per request: one answer, one delay, one of each effect.
    return "answer" if kind in HTTP_ANSWERS else kind


def _rng(spec: dict[str, Any], n: int) -> random.Random:
    if spec.get("seed") is None:
        return random.SystemRandom()
    return rng_for("fault", spec["seed"], n)


def _delay(spec: dict[str, Any], rng: random.Random) -> int | None:
    if spec.get("ms_range"):
        low, high = spec["ms_range"]
        return rng.randint(low, high)
    return spec.get("ms")


def _consider(row: FaultRule) -> Fired | None:
    """Roll a matching rule: count the match, and on a hit spend one of its `count`."""
    state = dict(row.rule)
    spec = state["spec"]
    rng = _rng(spec, state["matched"])
    state["matched"] += 1
    hit = spec["probability"] >= 1 or rng.random() < spec["probability"]
    if hit:
        state["applied"] += 1
        row.remaining = None if row.remaining is None else row.remaining - 1
    row.rule = state  # a new dict: SQLAlchemy sees the change
    return Fired(row.id, spec, _delay(spec, rng)) if hit else None


LIVE = or_(FaultRule.remaining.is_(None), FaultRule.remaining > 0)
# Built once (immutable SQL): statement construction costs more than the query itself.
LIVE_RULES = (select(FaultRule)
              .where(FaultRule.path.in_(bindparam("paths", expanding=True)),
                     FaultRule.partner_token.in_(bindparam("partners", expanding=True)), LIVE)
              .order_by(FaultRule.id))
ANY_LIVE = (select(FaultRule.id)
            .where(FaultRule.path.in_(bindparam("paths", expanding=True)), LIVE).limit(1))
# Whether any live rule targets a path and partner (`rule_params`): `pick` would find rows.
TARGETED = exists().where(FaultRule.path.in_(bindparam("paths", expanding=True)),
                          FaultRule.partner_token.in_(bindparam("partners", expanding=True)), LIVE)


def rule_params(path: str, partner_token: str) -> dict[str, list[str]]:
    """LIVE_RULES' and TARGETED's parameters: rules for this path or all, this partner or all."""
    return {"paths": ["", path], "partners": ["", partner_token]}


def pick(lender: Lender, kinds: frozenset[str], t: Target) -> tuple[list[Fired], bool]:
    """(the rules of `kinds` that fire, oldest first, at most one per slot; whether any live
    rule of any kind targets this path and partner)."""
    fired: list[Fired] = []
    with lender.store.transaction() as s:
        rows = list(s.scalars(lender.store.lock_row(LIVE_RULES),
                              rule_params(t.path, t.partner_token)))
        for row in rows:
            spec = row.rule["spec"]
            if (spec["kind"] not in kinds or spec.get("order_no") not in ("", t.order_no)
                    or any(_slot(f.kind) == _slot(spec["kind"]) for f in fired)):
                continue
            hit = _consider(row)
            if hit is not None:
                fired.append(hit)
    return fired, bool(rows)


def join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


# ---- business faults: hooks inside api.handle ----

class FaultAnswer(SandboxError):
    """business_error / confirm_unknown: an answer a rule chose, with any code."""

    def __init__(self, code: int, message: str):
        Exception.__init__(self, message)
        self.code, self.name, self.message = code, "fault_injected", message
        self.detail, self.http_status = None, 200


def _code_message(spec: dict[str, Any]) -> tuple[int, str]:
    code = int(spec.get("code") or BY_NAME["fault_injected"].code)
    entry = BY_CODE.get(code, BY_NAME["fault_injected"])
    return code, spec.get("message") or entry.message


def _target(path: str, reply: Any) -> Target:
    return Target(reply.partner_token, path, order_no_of(reply.request))


def before_handler(lender: Lender, path: str, reply: Any, targeted: bool = True) -> None:
    """After decryption, before validation: a business_error answers instead of the handler.

    `targeted=False`: the caller found no live rule for this path and partner (TARGETED),
    so neither hook needs to look them up."""
    fired, targeted = pick(lender, BEFORE_KINDS, _target(path, reply)) if targeted else ([], False)
    reply.extra["fault_rules"] = targeted  # none: after_handler need not look again
    for f in fired:
        reply.fault = join(reply.fault, f.describe())
        raise FaultAnswer(*_code_message(f.spec))


def after_handler(lender: Lender, path: str, reply: Any) -> None:
    """After a successful handler (committed): the faults that need its result."""
    if reply.code != 0 or not reply.extra.get("fault_rules", True):
        return
    t = _target(path, reply)
    for f in pick(lender, AFTER_KINDS, t)[0]:
        reply.fault = join(reply.fault, f.describe())
        AFTER_EFFECTS[f.kind](lender, t, f, reply)


def _orders(s: Any, t: Target) -> list[Order]:
    return list(s.scalars(select(Order).where(Order.partner_token == t.partner_token,
                                              Order.order_no == t.order_no)))


def _hold_review(s: Any, order: Order) -> None:
    # The pending review event is voided (design.md: the event becomes a no-op); a forced
    # approve/reject still works, like the 009 scenario.
    order.scenario = {**order.scenario, "review": "stuck"}
    s.execute(update(DueEvent).where(DueEvent.order_id == order.id, DueEvent.kind == "review",
                                     DueEvent.state == "pending").values(state="void"))


def _stick_reviewing_now(s: Any, row: FaultRule) -> None:
    """A review_stuck rule naming an order already under review applies when it is saved."""
    spec = row.rule["spec"]
    if spec["kind"] != "review_stuck" or not spec["order_no"]:
        return
    q = select(Order).where(Order.order_no == spec["order_no"], Order.status == Status.REVIEWING)
    if row.partner_token:
        q = q.where(Order.partner_token == row.partner_token)
    for order in s.scalars(q):
        if row.remaining != 0 and _consider(row) is not None:
            _hold_review(s, order)


def _review_stuck(lender: Lender, t: Target, f: Fired, reply: Any) -> None:
    with lender.store.transaction() as s:
        for order in _orders(s, t):
            _hold_review(s, order)


def _payout_retry(lender: Lender, t: Target, f: Fired, reply: Any) -> None:
    # The payout due event reads the stored scenario when it fires: fail_once fails the
    # order's first payout attempt only (orders.py `_payout`).
    with lender.store.transaction() as s:
        for order in _orders(s, t):
            order.scenario = {**order.scenario, "payout": "fail_once"}


def _callback_first(lender: Lender, t: Target, f: Fired, reply: Any) -> None:
    reply.extra["callback_first"] = True  # the web layer delivers before answering (`serve`)


def _confirm_unknown(lender: Lender, t: Target, f: Fired, reply: Any) -> None:
    code, message = _code_message(f.spec)
    reply.body = render(t.path, code, message, {}, mode=lender.settings.responses.message_key)
    if f.spec.get("answer") == "http_504":
        reply.http_status = 504
        reply.extra["html"] = gateway_page(504)


AFTER_EFFECTS: dict[str, Callable[[Lender, Target, Fired, Any], None]] = {
    "review_stuck": _review_stuck, "payout_retry": _payout_retry,
    "callback_first": _callback_first, "confirm_unknown": _confirm_unknown,
}


def _unattempted(lender: Lender, token: str, seen: dict[int, int] | None = None) -> dict[int, int]:
    """{id: attempts} of the partner's callbacks due now and not attempted since `seen`."""
    q = select(Callback.id, Callback.attempts).where(
        Callback.partner_token == token, Callback.state == "pending",
        Callback.next_attempt_at <= lender.wall())
    if seen is not None:
        q = q.where(Callback.id.in_(list(seen)))
    with lender.store.transaction() as s:
        rows = {i: n for i, n in s.execute(q)}
    return rows if seen is None else {i: n for i, n in rows.items() if n == seen[i]}


async def deliver_first(lender: Lender, token: str) -> None:
    """callback_first: the partner's due callbacks are sent before the answer leaves.

    Flushes the outbox (callbacks.flush_until_idle with a sender of its own: the server's
    worker may race for the same rows, so it then waits, bounded, until each was attempted)."""
    due = await run_in_threadpool(_unattempted, lender, token)
    if not due:
        return
    async with callbacks.HttpxSender() as sender:
        await callbacks.flush_until_idle(lender, sender)
    loop = asyncio.get_running_loop()
    end = loop.time() + min(lender.settings.callbacks.timeout, 5.0) + 1.0
    while due and loop.time() < end:
        due = await run_in_threadpool(_unattempted, lender, token, due)
        if due:
            await asyncio.sleep(0.02)


# ---- HTTP faults: the web layer's lender endpoint ----

GATEWAY_REASONS = {500: "Internal Server Error", 502: "Bad Gateway",
                   503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}
# What PHP prints before the JSON when display_errors is on: a classic malformed answer.
PHP_NOTICE = ("<br />\n<b>Notice</b>:  Undefined index: extra_info in "
              "<b>/var/www/lender/app/Http/Controllers/ApiController.php</b> on line "
              "<b>214</b><br />\n")


def gateway_page(status: int) -> str:
    """The page nginx answers when the PHP backend fails: what a real lender's proxy sends."""
    title = f"{status} {GATEWAY_REASONS[status]}"
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            f"</body>\r\n</html>\r\n")


class ConnectionDropped(BaseException):
    """Raised on purpose by a `drop` fault so that the server closes the connection.

    A BaseException: Starlette's middleware and error handlers catch Exception and would
    complete the answer or turn it into a 500; this one reaches the server (uvicorn), which
    closes the connection and logs it (`quiet_drops` filters that log line)."""


def quiet_drops(record: logging.LogRecord) -> bool:
    """A logging filter for the server's error log: drops on purpose are not errors."""
    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, ConnectionDropped)


def _in_test_client(scope: Scope) -> bool:
    # Starlette's TestClient (the only ASGI client offering this extension) runs the app in
    # a portal that a BaseException would kill: there the client's own error is raised.
    return "http.response.debug" in scope.get("extensions", {})


class DroppedResponse(Response):
    """Starts an answer, then fails: the server closes the connection mid-answer.

    uvicorn answers 500 when an app fails before starting its response, so the status line
    and headers go out (chunked, no body) and the client sees a broken answer — httpx
    RemoteProtocolError, curl error 18 — like a PHP worker that crashed."""

    def __init__(self, rule_id: int):
        super().__init__(status_code=200)
        self.rule_id = rule_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        why = (f"fault rule {self.rule_id} (kind drop): the sandbox closed the connection "
               f"on purpose (PUT /sandbox/faults)")
        if _in_test_client(scope):
            raise httpx.RemoteProtocolError(why)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json;charset=utf-8")]})
        raise ConnectionDropped(why)


@dataclass(frozen=True)
class HttpPlan:
    """The HTTP faults chosen for one request, and what the request said."""
    fired: tuple[Fired, ...] = ()
    partner_token: str = ""
    request: dict[str, Any] | None = None

    @property
    def delay(self) -> Fired | None:
        return next((f for f in self.fired if f.kind == "latency"), None)

    @property
    def answer(self) -> Fired | None:
        return next((f for f in self.fired if f.kind in HTTP_ANSWERS), None)

    @property
    def runs_handler(self) -> bool:
        a = self.answer
        return a is None or a.kind == "malformed" or bool(a.spec.get("after_handler"))

    def describe(self) -> str:
        return join(*(f.describe() for f in self.fired))


def peek(lender: Lender, body: bytes) -> tuple[str, dict[str, Any] | None]:
    """(partner_token, decrypted payload or None) of a request, never raising."""
    try:
        env = parse_envelope(body)
    except SandboxError:
        return "", None
    with lender.store.transaction() as s:
        p = s.get(Partner, env.partner_token)
        codec = Codec(p.aes_key, p.aes_iv) if p is not None else None
    try:
        payload = codec.decrypt_json(env.encode_data) if codec else None
    except (CryptoError, RecursionError):  # RecursionError: JSON nested absurdly deep
        payload = None
    return env.partner_token, payload if isinstance(payload, dict) else None


def _any_live(lender: Lender, path: str) -> bool:
    with lender.store.transaction() as s:
        return s.scalar(ANY_LIVE, {"paths": ["", path]}) is not None


def plan_http(lender: Lender, path: str, body: bytes) -> HttpPlan:
    if not _any_live(lender, path):
        return HttpPlan()
    token, request = peek(lender, body)
    fired, _ = pick(lender, HTTP_KINDS, Target(token, path, order_no_of(request)))
    return HttpPlan(tuple(fired), token, request)


def _status(f: Fired) -> int:
    """The HTTP status the client gets; 0 = none (dropped)."""
    return {"http_error": int(f.spec.get("status") or 503), "timeout": 504, "drop": 0}[f.kind]


async def _hold(request: Request, seconds: float) -> None:
    """Wait `seconds`, or less when the client hangs up first (its http.disconnect)."""
    with anyio.move_on_after(seconds):
        while (await request.receive())["type"] != "http.disconnect":
            await asyncio.sleep(0.05)  # the body was read: nothing else should come


async def _fault_answer(request: Request, f: Fired) -> Response:
    if f.kind == "drop":
        return DroppedResponse(f.rule_id)
    if f.kind == "timeout":
        await _hold(request, (f.ms or 0) / 1000)
    status = _status(f)
    return HTMLResponse(gateway_page(status), status_code=status)


def _malformed(reply: Any, f: Fired) -> Response:
    text = json.dumps(reply.body, ensure_ascii=False, separators=(",", ":"))
    text = PHP_NOTICE + text if f.spec.get("style") == "php_notice" else text[: len(text) // 2]
    return Response(text, status_code=200, media_type="application/json;charset=utf-8")


def _envelope(reply: Any, respond: Callable[[dict, int], Response]) -> Response:
    if reply.extra.get("html"):
        return HTMLResponse(reply.extra["html"], status_code=reply.http_status)
    return respond(reply.body, reply.http_status)


def _journal_unprocessed(lender: Lender, path: str, body: bytes, plan: HttpPlan,
                         answer: Fired) -> None:
    journal.add(lender, partner_token=plan.partner_token, path=path, body=body,
                request=plan.request, response=None, http_status=_status(answer),
                code=None, fault=plan.describe())


async def serve(lender: Lender, request: Request, path: str, body: bytes,
                respond: Callable[[dict, int], Response]) -> Response:
    """A lender endpoint with its HTTP faults: delay, then the answer or a fault's answer.

    `respond(body, status)` renders a protocol envelope (app.protocol_json)."""
    plan = await run_in_threadpool(plan_http, lender, path, body)
    if plan.delay is not None:
        await asyncio.sleep((plan.delay.ms or 0) / 1000)
    answer = plan.answer
    if answer is not None and not plan.runs_handler:
        await run_in_threadpool(_journal_unprocessed, lender, path, body, plan, answer)
        return await _fault_answer(request, answer)
    return await _processed(lender, request, path, body, plan, respond)


async def _processed(lender: Lender, request: Request, path: str, body: bytes, plan: HttpPlan,
                     respond: Callable[[dict, int], Response]) -> Response:
    """The lender handles the request; then its answer, or the fault's in its place."""
    from . import api  # api imports this module for its hooks
    reply = await run_in_threadpool(api.handle, lender, path, body, journal=False)
    if reply.extra.get("callback_first"):
        await deliver_first(lender, reply.partner_token)
    reply.fault = join(plan.describe(), reply.fault)
    answer = plan.answer
    if answer is not None and answer.kind != "malformed":
        reply.http_status = _status(answer)
    await run_in_threadpool(api.record, lender, path, body, reply)
    if answer is None:
        return _envelope(reply, respond)
    if answer.kind == "malformed":
        return _malformed(reply, answer)
    return await _fault_answer(request, answer)


# ---- routes ----

def _rule_id(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    if not value.isdigit() or int(value) >= 2**63:
        raise ControlError("invalid_field", "id must be a rule id (an integer)")
    return int(value)


def routes(lender: Lender) -> list[BaseRoute]:
    from .app import control_endpoint  # app gathers these routes, so import it lazily

    def get(r: Request) -> dict[str, Any]:
        return list_rules(lender, r.query_params.get("partner_token"))

    def delete_(r: Request) -> dict[str, Any]:
        q = r.query_params
        return clear_rules(lender, _rule_id(q.get("id")), q.get("partner_token"))

    return [
        Route("/sandbox/faults", control_endpoint(get), methods=["GET"]),
        Route("/sandbox/faults", control_endpoint(lambda r: put_rules(lender, r.state.json)),
              methods=["PUT"]),
        Route("/sandbox/faults", control_endpoint(lambda r: add_rules(lender, r.state.json)),
              methods=["POST"]),
        Route("/sandbox/faults", control_endpoint(delete_), methods=["DELETE"]),
    ]
