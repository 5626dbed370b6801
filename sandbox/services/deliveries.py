"""What the control API shows of callbacks: deliveries with every attempt, why one still
waits, and redelivery (GET /sandbox/callbacks, GET /sandbox/callbacks/{id}, POST .../redeliver).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.chaos import Chaos
from ..core.errors import SandboxError
from ..core.inputs import INT32_MAX
from ..store import Callback, CallbackAttempt, Partner
from .lender import Lender
from .outbox import NEVER, STATES, request_content


def _wall_iso(lender: Lender, ts: float | None) -> str | None:
    if not ts:
        return None
    return datetime.fromtimestamp(ts, lender.tz).isoformat(timespec="milliseconds")


def _attempt_view(lender: Lender, a: CallbackAttempt) -> dict:
    return {
        "id": a.id,
        "at": _wall_iso(lender, a.at),
        "url": a.url,
        "request_body": a.request_body,
        "status_code": a.status_code,
        "response_body": a.response_body,
        "latency_ms": a.latency_ms,
        "error": a.error,
    }


def _blocker(s: Session, row: Callback) -> int | None:
    return s.scalar(
        select(Callback.id)
        .where(
            Callback.partner_token == row.partner_token,
            Callback.order_no == row.order_no,
            Callback.state == "pending",
            Callback.id < row.id,
        )
        .order_by(Callback.id)
        .limit(1)
    )


def _waiting(
    lender: Lender, s: Session, row: Callback, p: Partner | None, now: float
) -> str | None:
    """Why a pending delivery has not gone out yet, in words."""
    if row.state != "pending":
        return None
    token = row.partner_token
    if p is None or not p.callback_url:
        return f"no callback_url: set one with PATCH /sandbox/partners/{token}"
    if p.callbacks_paused:
        return f"callbacks paused: POST /sandbox/partners/{token}/callbacks/resume"
    if row.lease_until > now:
        return "in flight"
    blocker = _blocker(s, row) if lender.settings.callbacks.ordered else None
    if blocker is not None and not Chaos.of(p.chaos).reorder:
        return f"behind #{blocker} of the same order (ordered delivery)"
    if row.next_attempt_at >= NEVER:
        return (
            f"retry due at {lender.fmt(row.retry_at)} on the partner's manual clock: "
            f"advance it (POST /sandbox/partners/{token}/clock/advance)"
        )
    if row.next_attempt_at > now:
        return f"next attempt at {_wall_iso(lender, row.next_attempt_at)}"
    return "due now"


def delivery_view(
    lender: Lender,
    s: Session,
    row: Callback,
    partner: Partner | None,
    attempts: list[CallbackAttempt],
) -> dict:
    now = lender.wall()
    as_sent = (
        attempts[-1].request_body
        if attempts
        else (request_content(partner, row.body).decode("utf-8") if partner else None)
    )
    return {
        "id": row.id,
        "partner_token": row.partner_token,
        "order_no": row.order_no,
        "path": row.path,
        "state": row.state,
        "waiting": _waiting(lender, s, row, partner, now),
        "attempts": row.attempts,
        "max_attempts": lender.settings.callbacks.max_attempts,
        "created_at": lender.fmt(row.created_at),  # virtual: the transition's time
        "next_attempt_at": _wall_iso(lender, row.next_attempt_at)
        if row.state == "pending" and row.next_attempt_at < NEVER
        else None,
        "retry_at": lender.fmt(row.retry_at)
        if row.state == "pending" and row.attempts and row.retry_at is not None
        else None,
        "delivered_at": _wall_iso(lender, row.delivered_at),
        "last_error": row.last_error,
        "url": (partner.callback_url + row.path) if partner and partner.callback_url else None,
        "body": row.body,  # decrypted
        "request_body": as_sent,  # as sent (or as it will be)
        "attempt_log": [_attempt_view(lender, a) for a in attempts],
    }


def _views(lender: Lender, s: Session, rows: list[Callback]) -> list[dict]:
    ids = [r.id for r in rows]
    log_of: dict[int, list[CallbackAttempt]] = {i: [] for i in ids}
    for a in s.scalars(
        select(CallbackAttempt)
        .where(CallbackAttempt.callback_id.in_(ids))
        .order_by(CallbackAttempt.id)
    ):
        log_of[a.callback_id].append(a)
    partners = {t: s.get(Partner, t) for t in {r.partner_token for r in rows}}
    return [delivery_view(lender, s, r, partners[r.partner_token], log_of[r.id]) for r in rows]


def list_deliveries(
    lender: Lender,
    token: str | None = None,
    order_no: str | None = None,
    state: str | None = None,
    limit: int = 200,
) -> list[dict]:
    """The newest `limit` deliveries matching the filters, oldest first."""
    if state and state not in STATES:
        raise SandboxError(
            "invalid_field", f"state must be one of {', '.join(STATES)}", http_status=400
        )
    q = select(Callback).order_by(Callback.id.desc()).limit(max(1, min(limit, 1000)))
    for column, value in (
        (Callback.partner_token, token),
        (Callback.order_no, order_no),
        (Callback.state, state),
    ):
        if value:
            q = q.where(column == value)
    with lender.store.transaction() as s:
        return _views(lender, s, list(reversed(list(s.scalars(q)))))


def _row(s: Session, callback_id: int, *, lock: bool = False) -> Callback:
    """The delivery, or a 404; with `lock`, locked for update (PostgreSQL): a reset or the
    pruner deleting it first leaves none to find, rather than an update of a vanished row."""
    in_range = 0 < callback_id <= INT32_MAX  # its column's
    row = s.get(Callback, callback_id, with_for_update=lock) if in_range else None
    if row is None:
        raise SandboxError(
            "not_found", f"no callback delivery with id {callback_id}", http_status=404
        )
    return row


def get_delivery(lender: Lender, callback_id: int) -> dict:
    with lender.store.transaction() as s:
        return _views(lender, s, [_row(s, callback_id)])[0]


def redeliver(lender: Lender, callback_id: int) -> dict:
    """Send again: a new attempt cycle (pending, due now, attempt count from 0); the attempt
    log keeps the earlier attempts. A delivery in flight keeps its lease."""
    with lender.store.transaction() as s:
        row = _row(s, callback_id, lock=True)
        row.state, row.attempts, row.delivered_at = "pending", 0, None
        row.next_attempt_at = lender.wall()
        partner = s.get(Partner, row.partner_token)
        row.retry_at = lender.now(partner) if partner else None  # the cycle starts now
        row.last_error = "redelivery requested"
    lender.on_outbox()
    return get_delivery(lender, callback_id)
