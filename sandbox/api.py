"""The lender endpoints 02-18 as one table, and `handle`: body bytes in, response envelope out.

The web layer and the in-process test client both call `handle`, so a request behaves the
same with or without HTTP. One request: parse the envelope -> find the partner -> decrypt ->
validate -> catch up the partner's due events to `now` -> run the handler in one transaction
-> render -> journal. Every failure becomes a catalog code; nothing escapes as a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from . import faults, service, validation as v
from .crypto import Codec
from .errors import BY_NAME, SandboxError
from .lender import Lender
from .orders import ANY_DUE, process_due
from .protocol import decrypt_payload, parse_envelope, render
from .store import JournalEntry, Partner

log = logging.getLogger("sandbox.api")


@dataclass(frozen=True)
class Endpoint:
    number: str
    path: str
    model: type[v.Req]
    handler: Callable[[service.Call, Any], dict]
    summary: str


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("02", "/get-loan-precheck", v.PrecheckReq, service.precheck,
             "Can this person borrow? Offered amounts/terms and the reloan flag."),
    Endpoint("03", "/get-loan-amount", v.AmountReq, service.loan_amount,
             "Amount/term ranges with defaults."),
    Endpoint("04", "/get-loan-interest", v.InterestReq, service.loan_interest,
             "Trial calculation: interest, admin fee, payout, repay amount, due date."),
    Endpoint("05", "/push-basic-info", v.BasicInfoReq, service.push_basic_info,
             "First push: creates the order (status 80)."),
    Endpoint("06", "/push-supplement-info", v.SupplementReq, service.push_supplement_info,
             "Second push: KYC details; review starts (90)."),
    Endpoint("07", "/get-bank-list", v.BankListReq, service.bank_list,
             "action_type 1: banks for binding; 2: repayment methods."),
    Endpoint("08", "/push-bind-bank", v.BindBankReq, service.bind_bank,
             "Bind (or re-bind) the payout bank account."),
    Endpoint("09", "/get-bind-bank", v.OrderReq, service.get_bind_bank,
             "The bound account."),
    Endpoint("10", "/get-loan-contract", v.OrderReq, service.loan_contract,
             "Contract URL (a readable HTML page served by the sandbox)."),
    Endpoint("11", "/push-order-confirm", v.ConfirmReq, service.order_confirm,
             "Borrower confirms amount/term; payout starts."),
    Endpoint("12", "/get-order-status", v.OrderReq, service.order_status,
             "Current status and last update time."),
    Endpoint("13", "/get-approval-result", v.OrderReq, service.approval_result,
             "Reviewing / rejected (reason) / approved (figures)."),
    Endpoint("14", "/get-repay-plan", v.OrderReq, service.repay_plan,
             "Repayment plan: due date, amounts, overdue, extension."),
    Endpoint("15", "/get-repay-detail", v.RepayDetailReq, service.repay_detail,
             "Issue a payment code: full repayment (repay_type 1) or extension fee (2)."),
    Endpoint("16", "/get-delay-list", v.OrderReq, service.delay_list,
             "Extension records."),
    Endpoint("17", "/get-delay-interest", v.DelayInterestReq, service.delay_interest,
             "Extension trial calculation."),
    Endpoint("18", "/get-delay-detail", v.OrderReq, service.delay_detail,
             "The current/last extension."),
)
BY_PATH = {e.path: e for e in ENDPOINTS}


@dataclass
class Reply:
    body: dict[str, Any]
    http_status: int = 200
    partner_token: str = ""
    partner: Partner | None = None          # as read on arrival (detached), when it was known
    request: dict[str, Any] | None = None   # the decrypted payload, when it decrypted
    data: Any = None                        # plain `data` (before any response encryption)
    fault: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> int:
        return int(self.body.get("code", 0))


def _codec(partner: Partner) -> Codec:
    return Codec(partner.aes_key, partner.aes_iv)


def handle(lender: Lender, path: str, body: bytes, *, journal: bool = True) -> Reply:
    reply = Reply(body={})
    endpoint = BY_PATH.get(path)
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
        request = v.parse(endpoint.model, reply.request)
        if due:
            process_due(lender, partner.partner_token, now)
        with lender.store.transaction() as s:
            call = service.Call(lender, s, lender.partner(s, partner.partner_token), now)
            reply.data = endpoint.handler(call, request)
        lender.on_outbox()
        out_codec = codec if lender.settings.responses.encrypt_data else None
        reply.body = render(path, 0, "success", reply.data, mode=mode, codec=out_codec)
        faults.after_handler(lender, path, reply)   # confirm_unknown, review_stuck, ...
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
        due, targeted = s.execute(PENDING_WORK, {"token": token, "until": now,
                                                 **faults.rule_params(path, token)}).one()
    return partner, now, bool(due), bool(targeted)


def record(lender: Lender, path: str, body: bytes, reply: Reply) -> None:
    """Keep the request, decrypted, with the answer (GET /sandbox/journal)."""
    virtual_at = None
    try:
        with lender.store.transaction() as s:
            partner = reply.partner or (s.get(Partner, reply.partner_token)
                                        if reply.partner_token else None)
            if partner is not None:
                virtual_at = lender.now(partner)
            s.add(JournalEntry(partner_token=reply.partner_token if partner else "",
                               path=path, at=lender.wall(), virtual_at=virtual_at,
                               request_raw=body[:65536].decode("utf-8", "replace"),
                               request=reply.request, response=reply.body,
                               http_status=reply.http_status, code=reply.code, fault=reply.fault))
    except Exception:  # the journal must never break an answer
        log.exception("could not write the journal")
