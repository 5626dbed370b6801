"""The one request pipeline: body bytes in, response envelope out, every request journaled.

The web layer and the in-process test harness both call `handle`, so a request behaves the
same with or without HTTP. One request: parse the envelope -> find the partner -> decrypt ->
validate -> catch up the partner's due events to `now` -> run the endpoint's handler in one
transaction -> render -> journal. Every failure becomes a catalog code; nothing escapes as a
500. This module is the only writer of the journal (`record`, `record_unprocessed`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ..core import validation as v
from ..core.crypto import Codec
from ..core.envelope import decrypt_payload, parse_envelope, render
from ..core.errors import BY_NAME, SandboxError
from ..core.faultrules import HttpPlan
from ..store import JournalEntry, Partner
from . import endpoints, faults
from .engine import ANY_DUE, process_due
from .lender import Lender

log = logging.getLogger("sandbox.api")


@dataclass
class Reply:
    body: dict[str, Any]
    http_status: int = 200
    partner_token: str = ""
    partner: Partner | None = None  # as read on arrival (detached), when it was known
    request: dict[str, Any] | None = None  # the decrypted payload, when it decrypted
    data: Any = None  # plain `data` (before any response encryption)
    fault: str = ""
    content_type: str | None = None  # the request's Content-Type header; None: not over HTTP
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> int:
        return int(self.body.get("code", 0))


def _codec(partner: Partner) -> Codec:
    return Codec(partner.aes_key, partner.aes_iv)


def handle(lender: Lender, path: str, body: bytes, *, journal: bool = True) -> Reply:
    reply = Reply(body={})
    endpoint = endpoints.BY_PATH.get(path)
    mode = lender.settings.responses.message_key
    try:
        if endpoint is None:
            raise SandboxError("bad_envelope", f"unknown path {path}")
        env = parse_envelope(body)
        reply.partner_token = env.partner_token
        partner, now, due, targeted = _arrival(lender, path, env.partner_token)
        reply.partner = partner
        codec = _codec(partner)
        reply.request = decrypt_payload(codec, env.encode_data)
        faults.before_handler(lender, path, reply, targeted)  # business_error answers instead
        request = v.parse(endpoint.spec.model, reply.request)
        if due:
            process_due(lender, partner.partner_token, now)
        with lender.store.transaction() as s:
            call = endpoints.Call(lender, s, lender.partner(s, partner.partner_token), now)
            reply.data = endpoint.handler(call, request)
        lender.on_outbox()
        out_codec = codec if lender.settings.responses.encrypt_data else None
        reply.body = render(path, 0, "success", reply.data, mode=mode, codec=out_codec)
        faults.after_handler(lender, path, reply)  # confirm_unknown, review_stuck, ...
    except SandboxError as e:
        reply.body = render(path, e.code, e.message, {}, mode=mode)
        reply.http_status = e.http_status
    except Exception:  # a sandbox bug must still answer in the protocol, never a bare 500
        log.exception("unexpected error on %s", path)
        internal = BY_NAME["internal"]
        reply.body = render(path, internal.code, internal.message, {}, mode=mode)
    if journal:
        record(lender, path, body, reply)
    return reply


# Asked with the partner read: has the partner events due by its `now` (the catch-up has work)?
# Does a live fault rule target this request? Usually neither, and both lookups are skipped.
PENDING_WORK = select(ANY_DUE, faults.TARGETED)


def _arrival(lender: Lender, path: str, token: str) -> tuple[Partner, float, bool, bool]:
    """(partner, its virtual now, events due?, fault rules targeted?) in one transaction."""
    with lender.store.transaction() as s:
        partner = lender.partner(s, token)
        now = lender.now(partner)
        due, targeted = s.execute(
            PENDING_WORK, {"token": token, "until": now, **faults.rule_params(path, token)}
        ).one()
    return partner, now, bool(due), bool(targeted)


def record(lender: Lender, path: str, body: bytes, reply: Reply, *, answered: bool = True) -> None:
    """Keep the request, decrypted, with the answer (GET /sandbox/journal); `answered` False:
    no envelope went back (an HTTP fault answered instead)."""
    virtual_at = None
    try:
        with lender.store.transaction() as s:
            partner = reply.partner or (
                s.get(Partner, reply.partner_token) if reply.partner_token else None
            )
            if partner is not None:
                virtual_at = lender.now(partner)
            s.add(
                JournalEntry(
                    partner_token=reply.partner_token if partner else "",
                    path=path,
                    at=lender.wall(),
                    virtual_at=virtual_at,
                    request_raw=body[:65536].decode("utf-8", "replace"),
                    request=reply.request,
                    response=reply.body if answered else None,
                    http_status=reply.http_status,
                    code=reply.code if answered else None,
                    fault=reply.fault,
                    content_type=reply.content_type,
                )
            )
    except Exception:  # the journal must never break an answer
        log.exception("could not write the journal")


def record_unprocessed(
    lender: Lender,
    path: str,
    body: bytes,
    plan: HttpPlan,
    http_status: int,
    content_type: str | None = None,
) -> None:
    """Journal a request the web layer answered with an HTTP fault before any handler ran.

    `http_status` 0 means no HTTP answer at all (the connection was dropped)."""
    reply = Reply(
        body={},
        http_status=http_status,
        partner_token=plan.partner_token,
        request=plan.request,
        fault=plan.describe(),
        content_type=content_type,
    )
    record(lender, path, body, reply, answered=False)
