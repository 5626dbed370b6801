"""Sandbox-only operations behind /sandbox: partners, clocks, orders, forced transitions, reset.

Each operation is a plain function over a `Lender` taking a request model (or a mapping it
parses into one, `control_parsing.ensure`) and returning JSON-able values, so the web layer
and the in-process test harness share them, validation included. Errors are ControlError
(answered as HTTP 4xx JSON by the web layer, never a 500).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from ..core import clock as clockmod
from ..core import crypto
from ..core.control_models import FORCEABLE, PartnerCreate, PartnerPatch, Transition
from ..core.control_parsing import ensure
from ..core.errors import ControlError
from ..core.lifecycle import Status, allowed_triggers
from ..store import (
    BankCard,
    Callback,
    CallbackAttempt,
    ConformanceMark,
    DueEvent,
    ExtensionRow,
    FaultRule,
    JournalEntry,
    Order,
    Partner,
    Payment,
    RepayCode,
    TimelineRow,
    transient,
)
from ..store.tables import RetentionMark
from . import bodies, conformance, credentials, locks, outbox
from .due import next_due, process_due
from .engine import Ctx, apply
from .lender import Lender
from .senders import check_callback_url
from .unit import Unit, load_order


def _partner(lender: Lender, s: Any, token: str, *, lock: bool = False) -> Partner:
    return lender.partner_or_404(s, token, lock=lock)


# ---- partners ----


def product_list(lender: Lender) -> list[dict]:
    """Spec §01 "合作者提供" shape, plus each product's terms and unit."""
    base = lender.settings.public_url()
    return [
        {
            "product_id": p.product_id,
            "product_name": p.product_name,
            "product_icon": p.product_icon or f"{base}/assets/product/{p.product_id}.svg",
            "product_desc": p.product_desc,
            "amount_min": p.amount_min,
            "amount_max": p.amount_max,
            "interest_rate": bodies.rate_text(p.interest_rate),
            "gp_link": p.gp_link,
            "term_unit": p.term_unit,
            "terms": list(p.terms),
        }
        for p in lender.products.values()
    ]


def partner_view(lender: Lender, p: Partner, *, secrets: bool = False) -> dict:
    out: dict[str, Any] = {
        "partner_token": p.partner_token,
        "name": p.name,
        "callback_url": p.callback_url,
        "encrypt_callbacks": p.encrypt_callbacks,
        "callbacks_paused": p.callbacks_paused,
        "chaos": p.chaos or {},
        "clock": clockmod.describe(lender.clock_of(p), lender.wall()),
        "products": product_list(lender),
    }
    if secrets:
        out["aes_key"], out["aes_iv"] = p.aes_key, p.aes_iv
    return out


def get_partner(lender: Lender, token: str, secrets: bool = False) -> dict:
    with lender.store.transaction() as s:
        return partner_view(lender, _partner(lender, s, token), secrets=secrets)


def list_partners(lender: Lender) -> list[dict]:
    with lender.store.transaction() as s:
        return [
            partner_view(lender, p) for p in s.scalars(select(Partner).order_by(Partner.created_at))
        ]


def create_partner(lender: Lender, body: PartnerCreate | Mapping[str, Any]) -> dict:
    """POST /sandbox/partners: a new partner, generating token, key and IV when not given."""
    req = ensure(PartnerCreate, body)
    check_callback_url(lender.callback_policy, req.callback_url)  # [callbacks] allow
    token = req.partner_token or "pt_" + crypto.generate_key().lower()[:12]
    key = req.aes_key or crypto.generate_key()
    iv = req.aes_iv or crypto.generate_iv()
    with lender.store.transaction() as s:
        if s.get(Partner, token) is not None:
            raise ControlError("invalid_field", f"partner_token {token!r} exists", http_status=409)
        p = lender.new_partner(
            token,
            key,
            iv,
            name=req.name or "",
            callback_url=req.callback_url,
            clock_mode=req.clock_mode,
            clock_rate=req.clock_rate,
            encrypt_callbacks=req.encrypt_callbacks,
        )
        s.add(p)
        try:
            s.flush()
        except IntegrityError:  # another request (another process) created it meanwhile
            raise ControlError(
                "invalid_field", f"partner_token {token!r} exists", http_status=409
            ) from None
        view = partner_view(lender, p, secrets=True)
        view["control_token"] = credentials.issue(lender, s, token)  # answered this once only
        return view


def update_partner(lender: Lender, token: str, body: PartnerPatch | Mapping[str, Any]) -> dict:
    """PATCH /sandbox/partners/{token}: the fields given change, the others stay."""
    patch = ensure(PartnerPatch, body)
    check_callback_url(lender.callback_policy, patch.callback_url)  # [callbacks] allow
    given = patch.model_dump(exclude_unset=True)
    with lender.store.transaction() as s:
        p = _partner(lender, s, token, lock=True)  # a global reset may be deleting it
        for key in (
            "callback_url",
            "name",
            "aes_key",
            "aes_iv",
            "encrypt_callbacks",
            "callbacks_paused",
            "chaos",
        ):
            if given.get(key) is not None:
                setattr(p, key, given[key])
        if "clock_mode" in given or "clock_rate" in given:
            _save_clock(
                p,
                _clock_call(
                    lambda: clockmod.change_mode(
                        lender.clock_of(p),
                        lender.wall(),
                        patch.clock_mode or p.clock_mode,
                        patch.clock_rate,
                    )
                ),
            )
            s.flush()
            outbox.follow_clock(lender, s.connection(), token, lender.clock_of(p))
        view = partner_view(lender, p)
    lender.on_outbox()  # a new callback URL or an unpaused partner may have deliveries waiting
    return view


# ---- clocks ----


def _clock_call(fn: Any) -> clockmod.ClockState:
    try:
        return fn()
    except clockmod.ClockError as e:
        raise ControlError("invalid_field", str(e)) from None


def _save_clock(p: Partner, c: clockmod.ClockState) -> None:
    p.clock_mode, p.clock_rate = c.mode, c.rate
    p.clock_anchor_wall, p.clock_anchor_virtual = c.anchor_wall, c.anchor_virtual


def point_partners(lender: Lender, *, callback_url: str, clock_at: float) -> list[dict]:
    """Every partner's callbacks to `callback_url` and its clock at `clock_at`; their views
    with secrets. The in-process harness's template: fixture partners deliver to its sink and
    every test starts at the same virtual time."""
    wall = lender.wall()
    with lender.store.transaction() as s:
        partners = list(s.scalars(select(Partner).order_by(Partner.created_at)))
        for p in partners:
            p.callback_url = callback_url
            p.clock_anchor_wall, p.clock_anchor_virtual = wall, clock_at
        return [partner_view(lender, p, secrets=True) for p in partners]


def get_clock(lender: Lender, token: str) -> dict:
    with lender.store.transaction() as s:
        p = _partner(lender, s, token)
        out = clockmod.describe(lender.clock_of(p), lender.wall())
        nxt = next_due(s.connection(), token)
    out["next_event"] = clockmod.iso(nxt) if nxt is not None else None
    return out


def advance_clock(lender: Lender, token: str, seconds: float) -> dict:
    """Move the clock forward and fire every due event on the way; returns when consistent."""
    return _move_clock(lender, token, lambda c, wall: clockmod.advance(c, wall, seconds))


def set_clock(lender: Lender, token: str, to: float) -> dict:
    return _move_clock(lender, token, lambda c, wall: clockmod.set_to(c, wall, to))


def _move_clock(lender: Lender, token: str, move: Any) -> dict:
    """Move the clock, then fire what fell due. The move is saved first, compare-and-swap on
    the clock's anchor in one transaction: concurrent moves each take effect (none is lost),
    and a crash after it leaves due events behind the clock, where the next request or tick
    fires them — never ahead of it."""
    for _ in range(MOVE_TRIES):
        moved = _try_move(lender, token, move)
        if moved is not None:
            new, wall = moved
            break
    else:
        raise ControlError(
            "conflict", "the clock kept moving under this request: try again", http_status=409
        )
    lender.on_outbox()  # retries the move reached go out now
    fired = process_due(lender, token, clockmod.virtual_now(new, wall))
    out = get_clock(lender, token)
    out["events_fired"] = fired
    return out


def _try_move(lender: Lender, token: str, move: Any) -> tuple[clockmod.ClockState, float] | None:
    """One compare-and-swap of the clock, its retries re-timed; None: try again (another move
    came first, or PostgreSQL chose this one as a deadlock's victim: re-timing the retries
    updates rows the outbox may hold while it waits for others of them)."""
    try:
        with lender.store.begin() as conn:
            old = lender.stored_clock(conn, token)
            if old is None:
                raise ControlError("unknown_partner", f"partner_token {token!r}", http_status=404)
            wall = lender.wall()
            new = _clock_call(lambda: move(old, wall))
            if conn.execute(CLOCK_SWAP, _swap(token, old, new)).rowcount != 1:
                return None
            outbox.follow_clock(lender, conn, token, new)
            return new, wall
    except OperationalError as e:
        if transient(e):
            return None
        raise


MOVE_TRIES = 50
PARTNERS: Table = Partner.__table__  # type: ignore[assignment]
_P = PARTNERS.c
CLOCK_SWAP = (
    update(PARTNERS)
    .where(
        _P.partner_token == bindparam("token"),
        _P.clock_mode == bindparam("old_mode"),
        _P.clock_rate == bindparam("old_rate"),
        _P.clock_anchor_wall == bindparam("old_wall"),
        _P.clock_anchor_virtual == bindparam("old_virtual"),
    )
    .values(
        clock_mode=bindparam("new_mode"),
        clock_rate=bindparam("new_rate"),
        clock_anchor_wall=bindparam("new_wall"),
        clock_anchor_virtual=bindparam("new_virtual"),
    )
)


def _swap(token: str, old: clockmod.ClockState, new: clockmod.ClockState) -> dict[str, Any]:
    return {
        "token": token,
        "old_mode": old.mode,
        "old_rate": old.rate,
        "old_wall": old.anchor_wall,
        "old_virtual": old.anchor_virtual,
        "new_mode": new.mode,
        "new_rate": new.rate,
        "new_wall": new.anchor_wall,
        "new_virtual": new.anchor_virtual,
    }


# ---- orders ----


def _order(s: Any, token: str, order_no: str, store: Any = None) -> Order:
    """The order; with `store`, locked for update (another process may be changing it)."""
    q = select(Order).where(Order.partner_token == token, Order.order_no == order_no)
    o = s.scalars(store.lock_row(q) if store is not None else q).first()
    if o is None:
        raise ControlError(
            "order_not_found", f"order_no {order_no!r} of partner {token!r}", http_status=404
        )
    return o


def order_summary(lender: Lender, o: Order) -> dict:
    return {
        "order_no": o.order_no,
        "partner_token": o.partner_token,
        "product_id": o.product_id,
        "status": o.status,
        "status_name": Status(o.status).name.lower(),
        "user_name": o.user_name,
        "user_mobile": o.user_mobile,
        "application_amount": o.application_amount,
        "application_term": o.application_term,
        "term_unit": o.term_unit,
        "approved_amount": o.approved_amount,
        "scenario": o.scenario.get("rule"),
        "created_at": lender.fmt(o.created_at),
        "updated_at": lender.fmt(o.updated_at),
        "due_at": lender.fmt(o.due_at),
    }


def list_orders(
    lender: Lender, token: str | None = None, status: int | None = None, limit: int = 200
) -> list[dict]:
    with lender.store.transaction() as s:
        q = select(Order).order_by(Order.id.desc()).limit(limit)
        if token:
            q = q.where(Order.partner_token == token)
        if status is not None:
            q = q.where(Order.status == status)
        return [order_summary(lender, o) for o in s.scalars(q)]


def order_detail(lender: Lender, token: str, order_no: str) -> dict:
    with lender.store.transaction() as s:
        p = _partner(lender, s, token)
        now = lender.now(p)
        o = _order(s, token, order_no)
        out = order_summary(lender, o)
        out.update(
            {
                "allowed_triggers": allowed_triggers(o.status),
                # the last payout failure's reason code (Xendit-style), not in the protocol
                "payout_error": o.payout_error or None,
                "scenario": o.scenario,
                "approval": bodies.approval(lender, o),
                "repay_plan": bodies.repay_plan(lender, s.connection(), p, o, now)
                if o.loan_time
                else None,
                "timeline": [
                    {
                        "from": t.from_status,
                        "to": t.to_status,
                        "trigger": t.trigger,
                        "at": lender.fmt(t.at),
                        "cause": t.cause,
                    }
                    for t in s.scalars(
                        select(TimelineRow)
                        .where(TimelineRow.order_id == o.id)
                        .order_by(TimelineRow.id)
                    )
                ],
                "bank_cards": [
                    {"bank_code": c.bank_code, "bank_card": c.bank_card, "active": c.active}
                    for c in s.scalars(select(BankCard).where(BankCard.order_id == o.id))
                ],
                "repay_codes": [
                    {
                        "repay_code": c.code,
                        "repay_type": c.repay_type,
                        "amount": c.amount,
                        "method_code": c.method_code,
                        "state": _code_state(c, now),
                        "expire_time": lender.fmt(c.expires_at),
                        "delay_term": c.delay_term,
                    }
                    for c in s.scalars(select(RepayCode).where(RepayCode.order_id == o.id))
                ],
                "payments": [
                    {
                        "repay_code": pm.repay_code,
                        "repay_type": pm.repay_type,
                        "amount": pm.amount,
                        "at": lender.fmt(pm.at),
                        "source": pm.source,
                    }
                    for pm in s.scalars(select(Payment).where(Payment.order_id == o.id))
                ],
                "extensions": bodies.delay_list(lender, s.connection(), o)["delay_list"],
                "pending_events": [
                    {"kind": e.kind, "due_at": lender.fmt(e.due_at)}
                    for e in s.scalars(
                        select(DueEvent)
                        .where(DueEvent.order_id == o.id, DueEvent.state == "pending")
                        .order_by(DueEvent.due_at)
                    )
                ],
                "callbacks": [
                    {
                        "id": c.id,
                        "path": c.path,
                        "state": c.state,
                        "attempts": c.attempts,
                        "body": c.body,
                    }
                    for c in s.scalars(
                        select(Callback).where(Callback.order_id == o.id).order_by(Callback.id)
                    )
                ],
            }
        )
        return out


def _code_state(c: RepayCode, now: float) -> str:
    return "expired" if c.state == "open" and c.expires_at <= now else c.state


def transition(lender: Lender, order_no: str, body: Transition | Mapping[str, Any]) -> dict:
    """Force any legal trigger (approve, reject, disburse, fail_payout, cancel, overdue, ...)."""
    req = ensure(Transition, body)
    token, trigger, kw = req.partner_token, req.trigger, req.params
    if trigger not in FORCEABLE:
        raise ControlError(
            "illegal_trigger", f"unknown trigger {trigger!r}; triggers: {', '.join(FORCEABLE)}"
        )
    with lender.store.transaction() as s:
        p = _partner(lender, s, token)
        now = lender.now(p)
    process_due(lender, token, now)
    with lender.store.begin() as conn:
        if not locks.share(lender.store, conn, token):  # first: a reset waits for us, or we for it
            raise ControlError("unknown_partner", f"partner_token {token!r}", http_status=404)
        unit = Unit(lender, conn)
        o = load_order(unit, token, order_no, lock=True)
        if o is None:
            raise ControlError(
                "order_not_found", f"order_no {order_no!r} of partner {token!r}", http_status=404
            )
        if trigger not in allowed_triggers(o.status):
            raise ControlError(
                "illegal_trigger",
                f"order {order_no} is {o.status} "
                f"({Status(o.status).name.lower()}); allowed: "
                f"{', '.join(allowed_triggers(o.status)) or 'none (final)'}",
                http_status=409,
            )
        apply(Ctx(unit, now, f"forced via control API: {trigger}"), o, trigger, **kw)
        unit.flush()
    lender.on_outbox()
    return order_detail(lender, token, order_no)


# ---- reset ----


def reset(lender: Lender, token: str | None = None) -> dict:
    """Wipe one partner's orders and history (or everything), then reload the fixtures.

    The partner's row is locked first (every partner's for a global reset; services.locks):
    its requests in flight finish before the wipe and those arriving wait for it, so nothing
    is written under the reset's feet (a foreign-key violation) and nothing it saw survives."""
    with lender.store.transaction() as s:
        conn = s.connection()
        if not locks.exclusive(lender.store, conn, token) and token:
            raise ControlError("unknown_partner", f"partner_token {token!r}", http_status=404)
        locks.marks(lender.store, conn)  # settle_marks below updates every partner's marks
        deleted = _wipe(s, token)
        conformance.settle_marks(s)  # the other partners' acceptance runs go on
        if token:
            p = _partner(lender, s, token)
            _save_clock(p, clockmod.start(p.clock_mode, lender.wall(), rate=p.clock_rate))
        else:
            s.execute(delete(Partner))
        lender.load_fixtures(s)  # in the same commit: no moment without the fixture partners
    return {"reset": token or "all", "orders_deleted": deleted}


BY_ORDER: tuple[Any, ...] = (TimelineRow, BankCard, DueEvent, RepayCode, ExtensionRow, Payment)
BY_PARTNER: tuple[Any, ...] = (Callback, JournalEntry, FaultRule, ConformanceMark, RetentionMark)


def _wipe(s: Any, token: str | None) -> int:
    """Delete the partner's rows (every partner's: None), children before parents; the number
    of orders deleted. Sub-selects, not id lists: a partner may have more orders than a
    statement takes parameters."""

    def mine(table: Any) -> Any:
        q = delete(table)
        return q.where(table.partner_token == token) if token else q

    def of_orders(table: Any) -> Any:
        q = delete(table)
        if token:
            q = q.where(table.order_id.in_(select(Order.id).where(Order.partner_token == token)))
        return q

    quiet = {"synchronize_session": False}  # no ORM objects of these tables are loaded
    # Attempts of every delivery of the partner (an order's, or one whose order is gone).
    callbacks = select(Callback.id).where(Callback.partner_token == token) if token else None
    attempts = delete(CallbackAttempt)
    if callbacks is not None:
        attempts = attempts.where(CallbackAttempt.callback_id.in_(callbacks))
    s.execute(attempts, execution_options=quiet)
    for table in BY_ORDER:
        s.execute(of_orders(table), execution_options=quiet)
    deleted = s.execute(mine(Order), execution_options=quiet).rowcount
    for table in BY_PARTNER:
        s.execute(mine(table), execution_options=quiet)
    return int(deleted)
