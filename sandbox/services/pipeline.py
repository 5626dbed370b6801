"""The one request pipeline: body bytes in, response envelope out, every request journaled.

The web layer and the in-process test harness both call `handle`, so a request behaves the
same with or without HTTP. One request: parse the envelope -> find the partner -> decrypt ->
validate -> run the endpoint's handler -> render -> journal, all in ONE transaction on the
common path (docs/architecture.md "One request"). Two things send a request round a slower
path first: due events that fell due on the partner's clock (fired before the handler runs,
each at its own virtual time) and fault rules that target it (rolled in transactions of their
own, so a count is spent even when the answer is an error). Every failure becomes a catalog
code; nothing escapes as a 500. This module is the only writer of the journal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, exists, func, insert, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from ..core import inputs
from ..core import validation as v
from ..core.envelope import Envelope, decrypt_payload, parse_envelope, render
from ..core.errors import BY_NAME, SandboxError
from ..core.faultrules import HttpPlan, Target, answer_status, order_no_of
from ..store import Store, fast, transient
from ..store import tables as t
from ..store.records import PartnerRec
from . import endpoints, faults, locks
from .due import process_due
from .lender import Lender
from .unit import EVENTS, PARTNER_COLUMNS, PARTNERS, Unit

log = logging.getLogger("sandbox.api")

JOURNAL: Table = t.JournalEntry.__table__  # type: ignore[assignment]
FAULTS: Table = t.FaultRule.__table__  # type: ignore[assignment]
JOURNAL_KEYS = (
    "partner_token",
    "path",
    "at",
    "virtual_at",
    "request_raw",
    "request",
    "response",
    "http_status",
    "code",
    "fault",
    "content_type",
)
JOURNAL_INSERT = insert(JOURNAL).values({k: bindparam(k) for k in JOURNAL_KEYS})
RAW_LIMIT = 65536  # characters of a request body kept in the journal
RACE_TRIES = 3  # answers to one request: the first, and again after another process won a race


@dataclass
class Reply:
    body: dict[str, Any]
    http_status: int = 200
    partner_token: str = ""
    partner: PartnerRec | None = None  # as read on arrival, when it was known
    request: dict[str, Any] | None = None  # the decrypted payload, when it decrypted
    data: Any = None  # plain `data` (before any response encryption)
    fault: str = ""
    http: HttpPlan | None = None  # HTTP faults the web layer carries out (`web.lender`)
    answered: bool = True  # False: an HTTP fault answers instead of the envelope
    content_type: str | None = None  # the request's Content-Type header; None: not over HTTP
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> int:
        return int(self.body.get("code", 0))


# The partner, its next pending due event, and whether a live fault rule targets this path
# and partner: one statement, so the common request (nothing due, no fault) reads once.
ARRIVAL = select(
    *PARTNER_COLUMNS,
    select(func.min(EVENTS.c.due_at))
    .where(EVENTS.c.partner_token == PARTNERS.c.partner_token, EVENTS.c.state == "pending")
    .scalar_subquery()
    .label("next_due"),
    exists()
    .where(
        or_(FAULTS.c.path == "", FAULTS.c.path == bindparam("path")),
        or_(FAULTS.c.partner_token == "", FAULTS.c.partner_token == PARTNERS.c.partner_token),
        or_(FAULTS.c.remaining.is_(None), FAULTS.c.remaining > 0),
    )
    .label("targeted"),
).where(PARTNERS.c.partner_token == bindparam("token"))


def _arrival(store: Store) -> Any:
    # The partner's row FOR KEY SHARE (services.locks): a reset of the partner waits for this
    # transaction, and this one for a reset in progress, so what the handler writes never
    # meets a half-wiped partner. Shared: the partner's other requests do not wait.
    return store.share_row(ARRIVAL, of=PARTNERS)


@dataclass(frozen=True)
class Arrival:
    partner: PartnerRec
    now: float
    due: bool  # due events wait on the partner's clock
    targeted: bool  # a live fault rule names this path and partner


def _arrive(lender: Lender, conn: Connection, path: str, token: str) -> Arrival:
    arrival = lender.store.fast(_arrival)
    row = locks.again_if_gone(
        lender.store, lambda: fast.first(conn, arrival, {"path": path, "token": token})
    )
    if row is None:
        raise SandboxError("unknown_partner", f"partner_token {token!r}")
    *columns, next_due, targeted = row
    partner = PartnerRec(*columns)
    now = lender.now(partner)
    return Arrival(partner, now, next_due is not None and next_due <= now, bool(targeted))


def handle(
    lender: Lender,
    path: str,
    body: bytes,
    *,
    journal: bool = True,
    http: bool = False,
    content_type: str | None = None,
) -> Reply:
    """Answer one lender request. `http`: the caller carries out HTTP faults (`reply.http`);
    `content_type`: the request's header, for the journal (None: not over HTTP)."""
    reply = Reply(body={}, content_type=content_type)
    mode = lender.settings.responses.message_key
    try:
        endpoint = endpoints.BY_PATH.get(path)
        if endpoint is None:
            raise SandboxError("bad_envelope", f"unknown path {path}")
        env = parse_envelope(body)
        reply.partner_token = env.partner_token
        for attempt in range(RACE_TRIES):
            try:
                if _fast(lender, path, body, env, endpoint, reply, journal):
                    return reply
                _slow(lender, path, env, endpoint, reply, http)
                break
            except (IntegrityError, OperationalError) as e:
                # Another request (another process) wrote the same order or person first; its
                # transaction has committed, so answering again reads it and follows the
                # rules: an identical replay answers 0, other data its error (11003, 11004).
                # PostgreSQL may also pick this transaction as a deadlock's victim: again too.
                if attempt == RACE_TRIES - 1 or not (isinstance(e, IntegrityError) or transient(e)):
                    raise
    except SandboxError as e:
        reply.body = render(path, e.code, e.message, {}, mode=mode)
        reply.http_status = e.http_status
        if http and reply.http is None and (reply.partner is None or reply.extra.get("targeted")):
            _plan_unknown(lender, path, reply)  # a bad request meets the same flaky network
    except Exception:  # a sandbox bug must still answer in the protocol, never a bare 500
        log.exception("unexpected error on %s", path)
        internal = BY_NAME["internal"]
        reply.body = render(path, internal.code, internal.message, {}, mode=mode)
    if journal:
        record(lender, path, body, reply)
    return reply


def _fast(
    lender: Lender,
    path: str,
    body: bytes,
    env: Envelope,
    endpoint: Any,
    reply: Reply,
    journal: bool,
) -> bool:
    """The common path in one transaction; False when due events or fault rules need the
    slow path (nothing was written then). A refusal raises: its transaction rolls back and
    `handle` journals it on its own."""
    for _ in range(2):
        enqueued = lender.enqueued
        with lender.store.begin() as conn:
            arrival = _arrive(lender, conn, path, env.partner_token)
            reply.partner = arrival.partner
            if arrival.targeted:
                reply.extra["targeted"] = True
                return False
            if not arrival.due:
                _answer(lender, conn, path, env, endpoint, reply, arrival)
                if journal:
                    _journal(lender, conn, path, body, reply)
        if not arrival.due:
            if lender.enqueued != enqueued:
                lender.on_outbox()
            return True
        process_due(lender, env.partner_token, arrival.now)  # then read the partner again
    return False


def _answer(
    lender: Lender,
    conn: Connection,
    path: str,
    env: Envelope,
    endpoint: Any,
    reply: Reply,
    arrival: Arrival,
) -> None:
    """Decrypt, validate, run the handler in the caller's transaction, render."""
    codec = lender.codec(arrival.partner)
    if reply.request is None:
        reply.request = decrypt_payload(codec, env.encode_data)
    request = v.parse(endpoint.spec.model, reply.request)
    unit = Unit(lender, conn)
    unit.partner = arrival.partner
    reply.data = endpoint.handler(
        endpoints.Call(lender, unit, arrival.partner, arrival.now), request
    )
    unit.flush()
    out_codec = codec if lender.settings.responses.encrypt_data else None
    reply.body = render(
        path, 0, "success", reply.data, mode=lender.settings.responses.message_key, codec=out_codec
    )


def _slow(
    lender: Lender, path: str, env: Envelope, endpoint: Any, reply: Reply, http: bool
) -> None:
    """Fault rules target this request: roll them (each in its own transaction, so a count is
    spent whatever happens next), then answer as the rules say."""
    with lender.store.begin() as conn:
        arrival = _arrive(lender, conn, path, env.partner_token)
    reply.partner = arrival.partner
    reply.request = decrypt_payload(lender.codec(arrival.partner), env.encode_data)
    target = Target(env.partner_token, path, order_no_of(reply.request))
    if http:
        reply.http = faults.plan_http(lender, target, reply.request)
        reply.fault = reply.http.describe()
        if reply.http.answer is not None and not reply.http.runs_handler:
            reply.answered = False
            reply.http_status = answer_status(reply.http.answer)
            return
    faults.before_handler(lender, path, reply)  # business_error answers instead
    enqueued = lender.enqueued
    if arrival.due:
        process_due(lender, env.partner_token, arrival.now)
    with lender.store.begin() as conn:
        arrival = _arrive(lender, conn, path, env.partner_token)
        _answer(lender, conn, path, env, endpoint, reply, arrival)
    if lender.enqueued != enqueued:
        lender.on_outbox()
    faults.after_handler(lender, path, reply)  # confirm_unknown, review_stuck, ...
    if reply.http is not None and reply.http.answer is not None:
        if reply.http.answer.kind != "malformed":  # the handler ran: its answer is journaled
            reply.http_status = answer_status(reply.http.answer)


def _plan_unknown(lender: Lender, path: str, reply: Reply) -> None:
    """HTTP faults for a request refused before they were planned (bad envelope, unknown
    partner, undecryptable payload): a broken request meets the same flaky network."""
    if path not in endpoints.BY_PATH:
        return
    target = Target(reply.partner_token, path, order_no_of(reply.request))
    reply.http = faults.plan_http(lender, target, reply.request)
    reply.fault = reply.http.describe()
    if reply.http.answer is not None and reply.http.answer.kind != "malformed":
        reply.http_status = answer_status(reply.http.answer)
        reply.answered = reply.http.runs_handler


# ---- the journal ----


def _journal_row(lender: Lender, path: str, body: bytes, reply: Reply) -> dict[str, Any]:
    partner = reply.partner
    return {
        "partner_token": partner.partner_token if partner else "",
        "path": path,
        "at": lender.wall(),
        "virtual_at": lender.now(partner) if partner else None,
        "request_raw": inputs.raw_text(body[:RAW_LIMIT]),
        "request": reply.request,
        "response": reply.body if reply.answered else None,
        "http_status": reply.http_status,
        "code": reply.code if reply.answered else None,
        "fault": reply.fault,
        "content_type": reply.content_type,
    }


def _journal(lender: Lender, conn: Connection, path: str, body: bytes, reply: Reply) -> None:
    fast.run(conn, lender.store.fast(JOURNAL_INSERT), _journal_row(lender, path, body, reply))


PARTNER_ROW = select(*PARTNER_COLUMNS).where(PARTNERS.c.partner_token == bindparam("token"))


def record(lender: Lender, path: str, body: bytes, reply: Reply) -> None:
    """Keep the request, decrypted, with the answer (GET /sandbox/journal), in a transaction
    of its own: for requests refused (their transaction rolled back) or slowed by faults."""
    try:
        with lender.store.begin() as conn:
            if reply.partner is None and reply.partner_token:
                row = conn.execute(PARTNER_ROW, {"token": reply.partner_token}).first()
                reply.partner = PartnerRec.load(row) if row is not None else None
            _journal(lender, conn, path, body, reply)
    except Exception:  # the journal must never break an answer
        log.exception("could not write the journal")
