"""Fault rules at work (PUT/POST/GET/DELETE /sandbox/faults): stored, rolled, applied.

A rule targets a lender path (or all), a partner (or all) and optionally one `order_no`, fires
with a `probability` (seeded when `seed` is given) and at most `count` times. Rules live in
the store, so every process of a shared instance applies the same rules and a count is
spent exactly once. Two layers apply them:
- HTTP faults (latency, http_error, drop, timeout, malformed) exist only over HTTP: the web
  layer asks `plan_http` which fire and carries them out (`web.lender`);
- business faults (business_error, review_stuck, confirm_unknown, callback_first,
  payout_retry) are applied inside the request pipeline (`before_handler`, `after_handler`),
  so the in-process harness sees them too; those that change an order go through the engine.
Every applied fault is named in the request's journal entry (`fault`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, delete, or_, select, update
from sqlalchemy.engine import Connection

from ..core import clock as clockmod
from ..core.envelope import render
from ..core.errors import BY_CODE, BY_NAME, ControlError, SandboxError
from ..core.faultrules import (
    AFTER_KINDS,
    BEFORE_KINDS,
    HTTP_KINDS,
    Fired,
    HttpPlan,
    RuleBase,
    Target,
    _delay,
    _rng,
    _slot,
    join,
    order_no_of,
    parse_body,
)
from ..core.lifecycle import Status
from ..store import Callback, FaultRule
from ..store.records import OrderRec
from . import engine, outbox, unit
from .lender import Lender
from .senders import AiohttpSender

# ---- the stored rules ----


def rule_view(row: FaultRule) -> dict[str, Any]:
    state = row.rule
    return {
        "id": row.id,
        **state["spec"],
        "remaining": row.remaining,
        "matched": state["matched"],
        "applied": state["applied"],
        "spent": row.remaining == 0,
        "created_at": clockmod.iso(row.created_at),
    }


def _check_partners(
    lender: Lender, s: Any, scope: str | None, rules: Sequence[RuleBase] = ()
) -> None:
    for token in {scope or "", *(r.partner_token for r in rules)} - {""}:
        lender.partner_or_404(s, token)


def list_rules(lender: Lender, partner: str | None = None) -> dict[str, Any]:
    q = select(FaultRule).order_by(FaultRule.id)
    if partner:
        q = q.where(FaultRule.partner_token == partner)
    with lender.store.transaction() as s:
        _check_partners(lender, s, partner)
        return {"rules": [rule_view(r) for r in s.scalars(q)]}


def _save(lender: Lender, s: Any, rules: list[RuleBase]) -> None:
    rows = [
        FaultRule(
            partner_token=r.partner_token,
            path=r.path,
            remaining=r.count,
            rule={"spec": r.model_dump(mode="json"), "matched": 0, "applied": 0},
            created_at=lender.wall(),
        )
        for r in rules
    ]
    s.add_all(rows)
    s.flush()
    for row in rows:
        _stick_reviewing_now(lender, s.connection(), row.id)


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
        _check_partners(lender, s, scope, rules)
        q = delete(FaultRule)
        s.execute(q.where(FaultRule.partner_token == scope) if scope else q)
        _save(lender, s, rules)
    return list_rules(lender, scope)


def add_rules(lender: Lender, body: dict[str, Any]) -> dict[str, Any]:
    """POST /sandbox/faults: add rules (same body as PUT) without touching the others."""
    scope, rules = parse_body(body)
    with lender.store.transaction() as s:
        _check_partners(lender, s, scope, rules)
        _save(lender, s, rules)
    return list_rules(lender, scope)


def clear_rules(
    lender: Lender, rule_id: int | None = None, partner: str | None = None
) -> dict[str, Any]:
    """DELETE /sandbox/faults[?id=][&partner_token=]: one rule, one partner's, or all."""
    q = delete(FaultRule)
    if rule_id is not None:
        q = q.where(FaultRule.id == rule_id)
    if partner:
        q = q.where(FaultRule.partner_token == partner)
    with lender.store.transaction() as s:
        _check_partners(lender, s, partner)
        deleted = s.execute(q).rowcount  # type: ignore[attr-defined]  # a DELETE's CursorResult
    if rule_id is not None and not deleted:
        raise ControlError(
            "not_found",
            f"no fault rule with id {rule_id}" + (f" for partner {partner!r}" if partner else ""),
            http_status=404,
        )
    return {"deleted": deleted}


def _roll(
    rule_id: int, state: dict[str, Any], remaining: int | None
) -> tuple[Fired | None, dict[str, Any], int | None]:
    """Roll a matching rule: count the match, and on a hit spend one of its `count`.
    (what fired, the rule's new state, its new remaining count)"""
    state = dict(state)
    spec = state["spec"]
    rng = _rng(spec, state["matched"])
    state["matched"] += 1
    hit = spec["probability"] >= 1 or rng.random() < spec["probability"]
    if hit:
        state["applied"] += 1
        remaining = None if remaining is None else remaining - 1
    return (Fired(rule_id, spec, _delay(spec, rng)) if hit else None), state, remaining


RULES: Table = FaultRule.__table__  # type: ignore[assignment]
LIVE = or_(RULES.c.remaining.is_(None), RULES.c.remaining > 0)
LIVE_RULES = (
    select(RULES.c.id, RULES.c.rule, RULES.c.remaining)
    .where(
        or_(RULES.c.path == "", RULES.c.path == bindparam("path")),
        or_(RULES.c.partner_token == "", RULES.c.partner_token == bindparam("token")),
        LIVE,
    )
    .order_by(RULES.c.id)
)
RULE_STATE = (
    update(RULES)
    .where(RULES.c.id == bindparam("_id"))
    .values(rule=bindparam("_rule"), remaining=bindparam("_remaining"))
)


def _live_rules(store: Any) -> Any:
    return store.lock_row(LIVE_RULES)


def pick(lender: Lender, kinds: frozenset[str], t: Target) -> list[Fired]:
    """The rules of `kinds` that fire for `t`, oldest first, at most one per slot; their
    counts are spent in a transaction of their own."""
    fired: list[Fired] = []
    with lender.store.begin() as conn:
        rows = conn.execute(
            lender.store.prepared(_live_rules), {"path": t.path, "token": t.partner_token}
        )
        changes = []
        for rule_id, state, remaining in rows:
            spec = state["spec"]
            if (
                spec["kind"] not in kinds
                or spec.get("order_no") not in ("", t.order_no)
                or any(_slot(f.kind) == _slot(spec["kind"]) for f in fired)
            ):
                continue
            hit, state, remaining = _roll(rule_id, state, remaining)
            changes.append({"_id": rule_id, "_rule": state, "_remaining": remaining})
            if hit is not None:
                fired.append(hit)
        if changes:
            conn.execute(RULE_STATE, changes)
    return fired


# ---- HTTP faults: which fire (the web layer carries them out) ----


def plan_http(lender: Lender, t: Target, request: dict[str, Any] | None) -> HttpPlan:
    return HttpPlan(tuple(pick(lender, HTTP_KINDS, t)), t.partner_token, request)


# ---- business faults: hooks inside the request pipeline ----


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


def before_handler(lender: Lender, path: str, reply: Any) -> None:
    """After decryption, before validation: a business_error answers instead of the handler."""
    for f in pick(lender, BEFORE_KINDS, _target(path, reply)):
        reply.fault = join(reply.fault, f.describe())
        raise FaultAnswer(*_code_message(f.spec))


def after_handler(lender: Lender, path: str, reply: Any) -> None:
    """After a successful handler (committed): the faults that need its result."""
    if reply.code != 0:
        return
    t = _target(path, reply)
    for f in pick(lender, AFTER_KINDS, t):
        reply.fault = join(reply.fault, f.describe())
        AFTER_EFFECTS[f.kind](lender, t, f, reply)


def _orders(conn: Connection, t: Target) -> list[OrderRec]:
    rows = conn.execute(unit.ORDER_BY_NO, {"token": t.partner_token, "order_no": t.order_no})
    return [OrderRec.load(r) for r in rows]


def _stick_reviewing_now(lender: Lender, conn: Connection, rule_id: int) -> None:
    """A review_stuck rule naming an order already under review applies when it is saved."""
    row = conn.execute(
        select(RULES.c.rule, RULES.c.remaining, RULES.c.partner_token).where(RULES.c.id == rule_id)
    ).one()
    spec = row.rule["spec"]
    if spec["kind"] != "review_stuck" or not spec["order_no"]:
        return
    q = select(*unit.ORDER_COLUMNS).where(
        unit.ORDERS.c.order_no == spec["order_no"], unit.ORDERS.c.status == Status.REVIEWING
    )
    if row.partner_token:
        q = q.where(unit.ORDERS.c.partner_token == row.partner_token)
    state, remaining = row.rule, row.remaining
    for order in [OrderRec.load(r) for r in conn.execute(q)]:
        if remaining == 0:
            break
        hit, state, remaining = _roll(rule_id, state, remaining)
        if hit is not None:
            engine.override_outcome(conn, order, review="stuck")
    conn.execute(RULE_STATE, {"_id": rule_id, "_rule": state, "_remaining": remaining})


def _review_stuck(lender: Lender, t: Target, f: Fired, reply: Any) -> None:
    with lender.store.begin() as conn:
        for order in _orders(conn, t):
            engine.override_outcome(conn, order, review="stuck")


def _payout_retry(lender: Lender, t: Target, f: Fired, reply: Any) -> None:
    with lender.store.begin() as conn:
        for order in _orders(conn, t):
            engine.override_outcome(conn, order, payout="fail_once")


def _callback_first(lender: Lender, t: Target, f: Fired, reply: Any) -> None:
    reply.extra["callback_first"] = True  # the web layer delivers before answering (`serve`)


def _confirm_unknown(lender: Lender, t: Target, f: Fired, reply: Any) -> None:
    code, message = _code_message(f.spec)
    reply.body = render(t.path, code, message, {}, mode=lender.settings.responses.message_key)
    if f.spec.get("answer") == "http_504":
        reply.http_status = 504
        reply.extra["gateway"] = 504  # the web layer answers the proxy's error page


AFTER_EFFECTS: dict[str, Callable[[Lender, Target, Fired, Any], None]] = {
    "review_stuck": _review_stuck,
    "payout_retry": _payout_retry,
    "callback_first": _callback_first,
    "confirm_unknown": _confirm_unknown,
}


def _unattempted(lender: Lender, token: str, seen: dict[int, int] | None = None) -> dict[int, int]:
    """{id: attempts} of the partner's callbacks due now and not attempted since `seen`."""
    q = select(Callback.id, Callback.attempts).where(
        Callback.partner_token == token,
        Callback.state == "pending",
        Callback.next_attempt_at <= lender.wall(),
    )
    if seen is not None:
        q = q.where(Callback.id.in_(list(seen)))
    with lender.store.transaction() as s:
        rows = {i: n for i, n in s.execute(q)}
    return rows if seen is None else {i: n for i, n in rows.items() if n == seen[i]}


async def deliver_first(lender: Lender, token: str) -> None:
    """callback_first: the partner's due callbacks are sent before the answer leaves.

    Flushes the outbox (callbacks.flush_until_idle with a sender of its own: the server's
    worker may race for the same rows, so it then waits, bounded, until each was attempted)."""
    due = await asyncio.to_thread(_unattempted, lender, token)
    if not due:
        return
    async with AiohttpSender(policy=lender.callback_policy) as sender:
        await outbox.flush_until_idle(lender, sender)
    loop = asyncio.get_running_loop()
    end = loop.time() + min(lender.settings.callbacks.timeout, 5.0) + 1.0
    while due and loop.time() < end:
        due = await asyncio.to_thread(_unattempted, lender, token, due)
        if due:
            await asyncio.sleep(0.02)
