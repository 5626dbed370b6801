"""The OpenAPI 3.1 document of the sandbox and its offline reference page (/openapi.json, /docs).

Built from the code wherever the code knows: the lender endpoints from `SPECS` with
the decrypted payload schema of each request model, the error catalog from
`errors.CATALOG`, fault rules from the pydantic models and `FAULT_KINDS` of `faults`,
callback chaos keys from `CHAOS_KEYS`. Response shapes and the control routes are
described in the tables below (a test checks that every /sandbox route is in `CONTROL`).
/docs renders the same dict with Jinja2 templates: no CDN, no script, works offline.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core import faultrules, samples, validation
from ..core.chaos import CHAOS_KEYS
from ..core.crypto import Codec
from ..core.errors import CATALOG
from ..core.lifecycle import TRIGGERS, Status
from ..core.protocol import SPECS, Spec
from ..services.lender import Lender
from ..services.outbox import STATES

REF = "#/components/schemas/{model}"
SPEC_KEY, SPEC_IV = "Loan@apis#123456@", "loan#654321@apis"  # the demo partner's (protocol.md §2)
LENDER_TAG = "Lender API (02-18)"


# ---- schema shorthands ----

def integer(desc: str = "", **kw: Any) -> dict:
    return {"type": "integer", "description": desc, **kw}


def string(desc: str = "", **kw: Any) -> dict:
    return {"type": "string", "description": desc, **kw}


def number(desc: str = "", **kw: Any) -> dict:
    return {"type": "number", "description": desc, **kw}


def boolean(desc: str = "", **kw: Any) -> dict:
    return {"type": "boolean", "description": desc, **kw}


def arr(items: dict, desc: str = "") -> dict:
    return {"type": "array", "items": items, "description": desc}


def obj(desc: str = "", required: tuple[str, ...] = (), **props: dict) -> dict:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if desc:
        out["description"] = desc
    if required:
        out["required"] = list(required)
    return out


def ref(name: str) -> dict:
    return {"$ref": REF.format(model=name)}


ANY = {"description": "any JSON value"}
TIME = "YYYY-MM-DD HH:MM:SS in WIB (UTC+7), protocol.md §6"
IDR = "rupiah, whole"


# ---- the lender's answers (views.py / service.py) ----

LOAN_RANGE = arr(obj(amount=integer(IDR), term=arr(integer(), "terms offered")),
                 "the amount levels offered, each with its terms")
STATUS_DATA = obj(order_no=string(), order_status=integer("80 90 100 110 161 169 170 180 200"),
                  update_time=integer("unix seconds of the last status change"))
APPROVAL_DATA = obj(
    "13 / callback 20. Figures only once approved; `order_remark` says why otherwise.",
    order_no=string(), order_status=integer(), order_remark=string("reason or summary"),
    approval_time=string(f"approval moment, {TIME}"), loan_time=string(f"payout moment, {TIME}"),
    approval_amount=integer(IDR), approval_term=integer(), term_unit=integer("1 days, 2 months"),
    interest_amount=integer(IDR), interest_rate=string("per unit, e.g. 0.0006"),
    actual_amount=integer("paid out: approval_amount - admin_amount"),
    admin_amount=integer(IDR), repay_amount=integer("approval_amount + interest_amount"))
PLAN_DATA = obj(
    "14 / callback 21: the repayment plan at the time of the call.",
    order_no=string(), order_status=integer(), loan_time=string(TIME), loan_amount=integer(IDR),
    loan_term=integer(), term_unit=integer(), interest_amount=integer("interest of the period"),
    interest_rate=string(), expiry_time=string(f"due date, {TIME}"),
    expiry_amount=integer("late fee so far"), is_overdue=integer("0/1"),
    overdue_days=integer(), admin_amount=integer(IDR),
    repay_amount=integer("what settles the loan now (paid amount once settled)"),
    url_repay=integer("1: url_info is a repayment page"), url_info=string("signed URL or ''"),
    delay_repay=integer("1: an extension is possible"),
    delay_status={"type": ["integer", "null"],
                  "description": "null never tried, 0 code pending, 1 paid, 2 expired"})
QUOTE_DATA = obj(
    order_no=string(), loan_amount=integer(IDR), interest_amount=integer(IDR),
    expiry_amount=integer("late fee"), admin_amount=integer("extension fee"),
    delay_amount=integer("to pay for the extension: interest + late fee + fee"),
    repay_amount=integer("to settle instead"), expiry_time=string(f"new due date, {TIME}"),
    start_time=string(TIME), end_time=string(TIME), delay_times=integer("extensions so far"),
    limit_times=integer(), delay_term=arr(integer(), "extension terms offered (days)"),
    default_value=integer(), term_unit=integer("always 1 (days)"))
DATA: dict[str, dict] = {
    "/get-loan-precheck": obj(is_reloan=integer("1: the person has a settled loan here"),
                              loan_range=LOAN_RANGE, term_unit=integer("1 days, 2 months")),
    "/get-loan-amount": obj(loan_range=LOAN_RANGE, term_unit=integer(),
                            default_amount=integer(IDR), default_term=integer()),
    "/get-loan-interest": obj(interest_amount=integer(IDR),
                              admin_amount=integer("deducted from the payout"),
                              actual_amount=integer("paid out"),
                              repay_amount=integer("amount + interest"),
                              expiry_time=string(f"due date, {TIME}")),
    "/push-basic-info": obj("empty: {}"),
    "/push-supplement-info": obj("empty: {}"),
    "/get-bank-list": obj(banklist=arr(obj(
        bank_code=string(), bank_name=string("action_type 1"),
        method_code=string("action_type 2: what 15 takes"),
        repay_method=integer("action_type 2: 1 bank VA, 2 convenience store")))),
    "/push-bind-bank": obj("empty: {}"),
    "/get-bind-bank": obj(order_no=string(), card_list=arr(obj(
        bank_code=string(), bank_card=string(), extra_info=string()))),
    "/get-loan-contract": obj(contract_url=string("a readable HTML contract page"),
                              contract_desc=string()),
    "/push-order-confirm": obj("empty: {}"),
    "/get-order-status": STATUS_DATA,
    "/get-approval-result": APPROVAL_DATA,
    "/get-repay-plan": PLAN_DATA,
    "/get-repay-detail": obj(order_no=string(), repay_amount=integer(IDR),
                             repay_code=string("virtual account or store code"),
                             expire_time=string(TIME), bank_code=string(), method_code=string(),
                             merchant_name=string("store name for repay_method 2")),
    "/get-delay-list": obj(order_no=string(), delay_times=integer(), delay_list=arr(obj(
        loan_amount=integer(), delay_amount=integer(), delay_term=integer(), term_unit=integer(),
        delay_time=string(TIME), expiry_time=string(TIME)))),
    "/get-delay-interest": QUOTE_DATA,
    "/get-delay-detail": obj(order_no=string(), repay_amount=integer(), delay_amount=integer(),
                             delay_term=integer(), term_unit=integer(), expiry_time=string(TIME),
                             delay_times=integer(), limit_times=integer()),
}
CALLBACKS = (("/callback-order-status", "19: every status change", "GetOrderStatusData"),
             ("/callback-approval-result", "20: approve or reject", "GetApprovalResultData"),
             ("/callback-repay-plan", "21: payout, extension, overdue, settlement",
              "GetRepayPlanData"))


def component_name(path: str) -> str:
    return "".join(w.capitalize() for w in path.strip("/").split("-")) + "Data"


# ---- the control API (design.md "Control API") ----

@dataclass(frozen=True)
class Op:
    method: str
    path: str
    tag: str
    summary: str
    description: str = ""
    query: tuple[tuple[str, dict], ...] = ()
    body: dict | None = None
    answer: dict | None = None


PARTNER_BODY = obj(
    partner_token=string("generated when absent"), aes_key=string("generated: 16 characters"),
    aes_iv=string("generated: 16 characters"), callback_url=string("http(s) base URL or ''"),
    name=string(), clock_mode=string(enum=["real", "scaled", "manual"]), clock_rate=number(),
    encrypt_callbacks=boolean("false: plain JSON callbacks"))
PATCH_BODY = obj(
    "Only these keys; each optional.", name=string(), callback_url=string(),
    encrypt_callbacks=boolean(), callbacks_paused=boolean(),
    chaos=obj("callback chaos (off when empty)",
              **{k: ANY | {"description": v} for k, v in CHAOS_KEYS.items()}),
    clock_mode=string(enum=["real", "scaled", "manual"]), clock_rate=number(),
    aes_key=string(), aes_iv=string())
CLOCK = obj(mode=string(), rate=number(), now=string("ISO 8601, WIB"), now_unix=number(),
            offset_seconds=number("virtual - wall"),
            next_event={"type": ["string", "null"], "description": "the next due event"},
            events_fired=integer("advance/set only: due events fired on the way"))
CODEC_FIELDS = {"partner_token": string("use this partner's key and IV"),
                "aes_key": string("or an explicit key (PHP string)"),
                "aes_iv": string("and IV (both needed)")}
Q_PARTNER = ("partner_token", string("a partner's token"))


def _q(name: str, desc: str, kind: str = "string") -> tuple[str, dict]:
    return name, {"type": kind, "description": desc}


CONTROL: tuple[Op, ...] = (
    Op("GET", "/sandbox/health", "Control: server", "Liveness, database and partner count",
       "Open even when an admin token protects the rest of /sandbox.",
       answer=obj(status=string(), database=string(), partners=integer())),
    Op("GET", "/sandbox/partners", "Control: partners", "Every partner (without secrets)",
       answer=arr(ref("PartnerView"))),
    Op("POST", "/sandbox/partners", "Control: partners", "Onboard a partner (spec §01)",
       "Creates a partner, generating what is not given; answers its credentials and the "
       "lender's product list.", body=PARTNER_BODY, answer=ref("PartnerView")),
    Op("GET", "/sandbox/partners/{token}", "Control: partners", "One partner",
       query=(_q("secrets", "1 or true: include aes_key and aes_iv"),),
       answer=ref("PartnerView")),
    Op("PATCH", "/sandbox/partners/{token}", "Control: partners",
       "Change a partner's callback URL, chaos, clock or keys", body=PATCH_BODY,
       answer=ref("PartnerView")),
    Op("GET", "/sandbox/partners/{token}/clock", "Control: clocks", "A partner's clock",
       answer=CLOCK),
    Op("POST", "/sandbox/partners/{token}/clock/advance", "Control: clocks",
       "Move the clock forward and fire every due event on the way",
       "Returns when the state is consistent: every event up to the new time has fired, in "
       "due-time order, each at its own virtual time.",
       body=obj(seconds=number("seconds"), by=string('or a duration: "8d", "2h30m", "90m"')),
       answer=CLOCK),
    Op("POST", "/sandbox/partners/{token}/clock/set", "Control: clocks",
       "Move the clock to an instant (forward only)",
       body=obj(required=("to",), to=string("ISO 8601; no zone = WIB")), answer=CLOCK),
    Op("POST", "/sandbox/partners/{token}/callbacks/pause", "Control: callbacks",
       "Hold a partner's callbacks", "Deliveries stay pending without using attempts.",
       answer=ref("PartnerView")),
    Op("POST", "/sandbox/partners/{token}/callbacks/resume", "Control: callbacks",
       "Deliver what was held, in order", answer=ref("PartnerView")),
    Op("GET", "/sandbox/orders", "Control: orders", "Orders, newest first",
       query=(Q_PARTNER, _q("status", "an order status", "integer"),
              _q("limit", "default 200", "integer")), answer=arr(ref("OrderSummary"))),
    Op("GET", "/sandbox/orders/{order_no}", "Control: orders",
       "An order with timeline, bank cards, codes, payments, extensions, events and callbacks",
       query=(Q_PARTNER,), answer=obj("the summary plus the details", allowed_triggers=arr(
           string()), timeline=arr(obj(**{"from": integer(), "to": integer(),
                                          "trigger": string(), "at": string(TIME),
                                          "cause": string()})))),
    Op("POST", "/sandbox/orders/{order_no}/transition", "Control: orders",
       "Force a legal transition",
       "Any trigger the state machine allows from the order's status; an illegal one is a "
       "409 naming the allowed triggers.",
       body=obj(required=("partner_token", "trigger"), partner_token=string(),
                trigger=string(enum=[t for t in TRIGGERS if t != "bind_card"]),
                amount=integer("approve: the approved amount"),
                reason=string("reject / fail_payout: the reason"),
                delay_term=integer("extend: days")),
       answer=obj("the order detail, as GET /sandbox/orders/{order_no}")),
    Op("GET", "/sandbox/orders/{order_no}/wait", "Control: orders",
       "Long-poll until an order reaches a status and/or its callbacks are acknowledged",
       query=(Q_PARTNER, _q("status", "the status to wait for", "integer"),
              _q("callback", "'acknowledged': wait until its callbacks are delivered"),
              _q("timeout", "seconds, default 10, at most 60", "number")),
       answer=obj("the order summary", reached=boolean())),
    Op("POST", "/sandbox/payments", "Control: payments", "A borrower pays a code from 15",
       "A full repayment settles the order (200); an extension fee extends it (back to 170).",
       body=obj(required=("repay_code",), repay_code=string(),
                amount=integer("optional: must equal the code's amount")),
       answer=obj(repay_code=string(), amount=integer(), repay_type=integer(),
                  order_no=string(), partner_token=string(), order_status=integer(),
                  paid_at=string(TIME))),
    Op("GET", "/sandbox/callbacks", "Control: callbacks", "Callback deliveries and attempts",
       "Newest `limit` (default 200), oldest first; each with its decrypted body, the body as "
       "sent, why it still waits, and every attempt.",
       query=(Q_PARTNER, _q("order_no", "one order"),
              _q("state", "pending, delivered or dead"), _q("limit", "1-1000", "integer")),
       answer=arr(ref("Delivery"))),
    Op("GET", "/sandbox/callbacks/{id}", "Control: callbacks", "One delivery",
       answer=ref("Delivery")),
    Op("POST", "/sandbox/callbacks/{id}/redeliver", "Control: callbacks", "Send again",
       "A new attempt cycle (pending, due now); the attempt log keeps the earlier attempts.",
       answer=ref("Delivery")),
    Op("GET", "/sandbox/journal", "Control: journal", "Requests received, decrypted",
       "Newest first. `http_status` 0: no HTTP answer (a `drop` fault).",
       query=(Q_PARTNER, _q("path", "a lender path, e.g. /push-order-confirm"),
              _q("limit", "1-1000, default 100", "integer")), answer=arr(ref("JournalEntry"))),
    Op("DELETE", "/sandbox/journal", "Control: journal", "Clear the journal (or a partner's)",
       query=(Q_PARTNER,), answer=obj(deleted=integer(), partner_token=string())),
    Op("GET", "/sandbox/faults", "Control: faults", "Fault rules, with remaining counts",
       query=(Q_PARTNER,), answer=ref("FaultRules")),
    Op("PUT", "/sandbox/faults", "Control: faults", "Replace the fault rules",
       "One rule or {\"rules\": [...]}. Replaces every rule, or only one partner's when a "
       "partner_token is given at the top level (a single rule's own partner_token counts). "
       "A rule as GET shows it can be PUT back. See the fault kinds table.",
       body={"oneOf": [ref("FaultRule"), ref("FaultRuleSet")]}, answer=ref("FaultRules")),
    Op("POST", "/sandbox/faults", "Control: faults", "Add fault rules",
       "Same body as PUT; the other rules stay.",
       body={"oneOf": [ref("FaultRule"), ref("FaultRuleSet")]}, answer=ref("FaultRules")),
    Op("DELETE", "/sandbox/faults", "Control: faults", "Delete fault rules",
       "All, one (`id`) or one partner's.",
       query=(_q("id", "a rule id", "integer"), Q_PARTNER), answer=obj(deleted=integer())),
    Op("POST", "/sandbox/reset", "Control: server", "Wipe orders and history, reload fixtures",
       "Of one partner (its clock restarts) or everything.",
       body=obj(partner_token=string("optional")),
       answer=obj(reset=string(), orders_deleted=integer())),
    Op("POST", "/sandbox/tools/encrypt", "Control: tools", "Encrypt a payload like PHP",
       "`data` as an object is JSON-encoded like PHP json_encode (escaped slashes and unicode "
       "unless `escape` is false); a string is encrypted as is.",
       body=obj(required=("data",), data=ANY, escape=boolean("default true"), **CODEC_FIELDS),
       answer=obj(encode_data=string(), plaintext=string("what was encrypted"),
                  envelope=ref("Envelope"))),
    Op("POST", "/sandbox/tools/decrypt", "Control: tools", "Decrypt an encode_data",
       "A whole envelope works as the body. A wrong key or IV is a 400 that says so "
       "(10003 undecryptable, 10004 not_json with a hex preview).",
       body=obj(required=("encode_data",), encode_data=string(), **CODEC_FIELDS),
       answer=obj(data=ANY, plaintext=string())),
)

PAGES: tuple[Op, ...] = (
    Op("GET", "/openapi.json", "Reference", "This document"),
    Op("GET", "/docs", "Reference", "This document as a readable page (offline)"),
    Op("GET", "/dashboard", "Pages", "The dashboard: partners, clocks, orders"),
    Op("GET", "/contract/{token}/{order_no}", "Pages", "The loan contract page (10)",
       query=(_q("sig", "signature from the contract_url"),)),
    Op("GET", "/repay/{token}/{order_no}", "Pages", "The URL repayment page (14 url_info)",
       query=(_q("sig", "signature from url_info"),)),
)


# ---- components ----

def _rule_text(schema: dict, leaf: str) -> dict:
    rule = validation.RULES.get(leaf)
    return {**schema, "description": rule} if rule and "description" not in schema else schema


def _with_rules(schema: dict) -> dict:
    """Add the human-readable field rules (validation.RULES) to the properties."""
    props = {k: _rule_text(v, k) for k, v in schema.get("properties", {}).items()}
    return {**schema, "properties": props} if props else schema


def request_schemas() -> dict[str, dict]:
    # Serialization mode keeps the patterns that the numeric-string coercion hides in
    # validation mode; numbers are accepted wherever a digit string is (protocol.md §3).
    models = sorted({e.model for e in SPECS}, key=lambda m: m.__name__)
    _, defs = models_json_schema([(m, "serialization") for m in models], ref_template=REF)
    return {name: _with_rules(s) for name, s in defs["$defs"].items()}


def fault_schemas() -> dict[str, dict]:
    schema = TypeAdapter(faultrules.Rule).json_schema(ref_template=REF)
    defs = schema.pop("$defs")
    defs["FaultRule"] = {**schema, "description": "One rule; `kind` chooses the fields."}
    rs = faultrules.RuleSet.model_json_schema(ref_template=REF)
    rs.pop("$defs", None)
    defs["FaultRuleSet"] = rs
    view = {"allOf": [ref("FaultRule")], "description": "A stored rule, with its counters.",
            "properties": {"id": integer(), "remaining": {"type": ["integer", "null"]},
                           "matched": integer("requests that matched"),
                           "applied": integer("times it fired"), "spent": boolean(),
                           "created_at": string("ISO 8601")}}
    defs["FaultRules"] = obj(rules=arr(view))
    return defs


def catalog_schema() -> dict:
    rows = "\n".join(f"| {e.code} | {e.name} | {e.message} | {e.meaning} |" for e in CATALOG)
    return {"type": "integer", "enum": [0, *(e.code for e in CATALOG)],
            "description": "0 is success; every other code is in this catalog "
                           "(sandbox/errors.py):\n\n| code | name | message | meaning |\n"
                           "|---|---|---|---|\n" + rows,
            "x-catalog": [{"code": e.code, "name": e.name, "message": e.message,
                           "meaning": e.meaning} for e in CATALOG]}


def base_schemas() -> dict[str, dict]:
    return {
        "Envelope": obj("Every request to the lender and every callback (protocol.md §1).",
                        ("partner_token", "encode_data"), partner_token=string(),
                        encode_data=string("base64(AES-128-CBC(JSON payload)) with the "
                                           "partner's key/IV, PKCS#7, like PHP openssl_encrypt")),
        "Answer": obj("The lender's answer. The text key is `msg` for 09, 10, 11 and 16 and "
                      "`message` elsewhere (a setting changes this); `data` is plain JSON "
                      "unless the lender encrypts it (a setting).", ("code", "data"),
                      code=ref("ErrorCode"), message=string("Indonesian; English detail after"),
                      msg=string("the same, under the spec's other key"), data=ANY),
        "ErrorCode": catalog_schema(),
        "ControlError": obj("Any 4xx of /sandbox: never a 500 for bad input.",
                            code=integer("the catalog code"), error=string("its name"),
                            message=string()),
        "PartnerView": obj(partner_token=string(), name=string(), callback_url=string(),
                           encrypt_callbacks=boolean(), callbacks_paused=boolean(),
                           chaos={"type": "object"}, clock=CLOCK,
                           products=arr(obj(product_id=string(), product_name=string(),
                                            amount_min=integer(), amount_max=integer(),
                                            interest_rate=string(), term_unit=integer(),
                                            terms=arr(integer()))),
                           aes_key=string("only with secrets / on creation"),
                           aes_iv=string("only with secrets / on creation")),
        "OrderSummary": obj(order_no=string(), partner_token=string(), product_id=string(),
                            status=integer(), status_name=string(
                                enum=[s.name.lower() for s in Status]),
                            user_name=string(), user_mobile=string(),
                            application_amount=integer(), application_term=integer(),
                            term_unit=integer(), approved_amount={"type": ["integer", "null"]},
                            scenario=ANY, created_at=string(TIME), updated_at=string(TIME),
                            due_at=string(TIME)),
        "Delivery": obj(id=integer(), partner_token=string(), order_no=string(), path=string(),
                        state=string(enum=list(STATES)),
                        waiting={"type": ["string", "null"]}, attempts=integer(),
                        body=ANY, request_body=string(), attempt_log=arr(obj(
                            at=string(), url=string(), status_code={"type": ["integer", "null"]},
                            response_body=string(), latency_ms=number(), error=string()))),
        "JournalEntry": obj(id=integer(), time=string("wall time, ISO 8601"),
                            virtual_time={"type": ["string", "null"]}, partner_token=string(),
                            path=string(), request=ANY | {"description": "decrypted payload"},
                            request_raw=string("the body as received"), response=ANY,
                            http_status=integer("0: no answer (dropped)"),
                            code={"type": ["integer", "null"]},
                            fault=string('e.g. "latency 300ms", "http_error 503", "drop"')),
    }


def components() -> dict[str, dict]:
    schemas = {**base_schemas(), **request_schemas(), **fault_schemas()}
    for path, data in DATA.items():
        schemas[component_name(path)] = data
    return {"schemas": schemas}


# ---- paths ----

def _params(op: Op) -> list[dict]:
    names = re.findall(r"{(\w+)}", op.path)
    out = [{"name": n, "in": "path", "required": True,
            "schema": {"type": "integer" if n == "id" else "string"}} for n in names]
    return out + [{"name": n, "in": "query", "required": False, "schema": s,
                   "description": s.get("description", "")} for n, s in op.query]


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def control_operation(op: Op) -> dict:
    out: dict[str, Any] = {
        "tags": [op.tag], "summary": op.summary, "description": op.description,
        "operationId": (op.method.lower() + re.sub(r"\W+", "_", op.path)).strip("_"),
        "parameters": _params(op),
        "responses": {"200": {"description": "OK", **(_json(op.answer) if op.answer else {})}},
    }
    if op.path.startswith("/sandbox"):
        out["responses"]["4XX"] = {"description": "Bad input, unknown partner/order, conflict",
                                   **_json(ref("ControlError"))}
    if op.body is not None:
        out["requestBody"] = {"required": True, **_json(op.body)}
    return out


def _payload_examples() -> dict[str, dict]:
    order = samples.sample_order("openapi-docs", today=date(2026, 3, 2), rules=[], suffix="001",
                                 order_no="ORD20260302000123")
    return order.payloads()


def lender_operation(e: Spec, example: dict) -> dict:
    codec = Codec(SPEC_KEY, SPEC_IV)
    envelope = {"partner_token": "demo", "encode_data": codec.encrypt_json(example)}
    data = component_name(e.path)
    return {
        "tags": [LENDER_TAG], "operationId": e.path.strip("/").replace("-", "_"),
        "summary": f"{e.number} {e.summary}",
        "description": f"Endpoint {e.number}. The body is the envelope; its `encode_data` "
                       f"decrypts to the **{e.model.__name__}** payload (schema in "
                       f"`x-payload`). Business errors answer HTTP 200 with a non-zero code.",
        "x-payload": ref(e.model.__name__), "x-payload-example": example,
        "x-answer-data": ref(data),
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": ref("Envelope"), "example": envelope}}},
        "responses": {
            "200": {"description": f"The answer; `data` is a {data} when `code` is 0",
                    **_json(ref("Answer"))},
            "404": {"description": "Unknown path (envelope, code 10001)", **_json(ref("Answer"))},
            "405": {"description": "Not a POST", **_json(ref("Answer"))},
            "413": {"description": "Body too large (code 10013)", **_json(ref("Answer"))},
        },
    }


def webhooks() -> dict[str, dict]:
    out = {}
    for path, summary, data in CALLBACKS:
        out[path.strip("/")] = {"post": {
            "tags": ["Callbacks (19-21)"], "summary": summary,
            "operationId": path.strip("/").replace("-", "_"),
            "description": f"Sent to the partner's callback_url + {path} in the envelope, "
                           f"encrypted with its key/IV (or plain JSON). Retried until the "
                           f"receiver answers code 0.",
            "x-payload": ref(data),
            "requestBody": {"required": True, **_json(ref("Envelope"))},
            "responses": {"200": {"description": 'Acknowledge with {"code": 0}',
                                  **_json(ref("Answer"))}}}}
    return out


def build(lender: Lender | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document (a dict) of the lender endpoints and the control API."""
    paths: dict[str, dict] = {}
    examples = _payload_examples()
    for e in SPECS:
        paths.setdefault(e.path, {})["post"] = lender_operation(e, examples[e.path])
    for op in CONTROL + PAGES:
        paths.setdefault(op.path, {})[op.method.lower()] = control_operation(op)
    url = lender.settings.public_url() if lender else "http://127.0.0.1:8000"
    return {
        "openapi": "3.1.0",
        "info": {"title": "Lender Sandbox", "version": "1",
                 "description": "A stateful mock lender for the partner lending API: the "
                                "lender endpoints 02-18 (encrypted envelopes), the callbacks "
                                "19-21 it sends, and the sandbox-only control API under "
                                "/sandbox."},
        "servers": [{"url": url}],
        "tags": [{"name": t} for t in dict.fromkeys(
            [LENDER_TAG, *(op.tag for op in CONTROL + PAGES)])],
        "paths": paths, "webhooks": webhooks(), "components": components(),
        "x-fault-kinds": [vars(k) for k in faultrules.FAULT_KINDS],
    }


# ---- the page ----

@dataclass(frozen=True)
class Row:
    name: str
    type: str
    required: bool
    rule: str
    description: str


def resolve(schema: dict, doc: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _type_text(s: dict, doc: dict) -> str:
    kind = s.get("type", "object" if "allOf" in s or "oneOf" in s else "any")
    items = s.get("items")
    if kind == "array" and isinstance(items, dict):
        named = items.get("$ref", "").rsplit("/", 1)[-1]
        return f"array of {named or _type_text(items, doc)}"
    return " | ".join(kind) if isinstance(kind, list) else str(kind)


def _rule(s: dict) -> str:
    bits = [f"pattern {s['pattern']}"] if s.get("pattern") else []
    for key, label in (("minimum", ">="), ("maximum", "<="), ("minLength", "min length"),
                       ("maxLength", "max length"), ("minItems", "min items"),
                       ("maxItems", "max items"), ("const", "="), ("default", "default")):
        if key in s and s[key] not in (None, ""):
            bits.append(f"{label} {json.dumps(s[key], ensure_ascii=False)}")
    if "enum" in s:
        bits.append("one of " + ", ".join(map(str, s["enum"])))
    return "; ".join(bits)


def _optional(s: dict) -> tuple[dict, bool]:
    """anyOf [X, null] -> (X, nullable)."""
    options = [o for o in s.get("anyOf", []) if o.get("type") != "null"]
    if "anyOf" in s and len(options) == 1:
        merged = {**s, **options[0]}
        merged.pop("anyOf")
        return merged, True
    return s, False


def schema_rows(schema: dict, doc: dict, name: str = "", required: bool = True,
                depth: int = 0) -> list[Row]:
    """A schema as table rows: dotted field names, type, required, rule, description."""
    s, nullable = _optional(resolve(schema, doc))
    if depth > 8:
        return []
    if "oneOf" in s:
        return [r for v in s["oneOf"] for r in _variant_rows(v, doc, name, depth)]
    rows: list[Row] = []
    if name:
        rows.append(Row(name, _type_text(s, doc) + (" | null" if nullable else ""),
                        required and not nullable, _rule(s), s.get("description", "")))
    if s.get("type") == "array" and isinstance(s.get("items"), dict):
        rows += schema_rows(s["items"], doc, f"{name}[]", True, depth + 1)[1:] \
            if _is_object(s["items"], doc) else []
    for prop, sub in s.get("properties", {}).items():
        full = f"{name}.{prop}" if name else prop
        rows += schema_rows(sub, doc, full, prop in s.get("required", ()), depth + 1)
    return rows


def _is_object(schema: dict, doc: dict) -> bool:
    return resolve(schema, doc).get("type") == "object"


def _variant_rows(variant: dict, doc: dict, name: str, depth: int) -> list[Row]:
    v = resolve(variant, doc)
    if "oneOf" in v:  # a union of its own (a fault rule): one row, detailed in its section
        title = variant.get("$ref", "").rsplit("/", 1)[-1] or "one of several shapes"
        return [Row(name or "(body)", "object", True, "", f"a {title}: {v.get('description', '')}")]
    kind = v.get("properties", {}).get("kind", {}).get("const") or v.get("title", "")
    rows = schema_rows(v, doc, name, True, depth + 1)
    return [Row(f"[{kind}] {r.name}" if kind else r.name, r.type, r.required, r.rule,
                r.description) for r in rows]


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _op_view(path: str, method: str, op: dict, doc: dict) -> dict:
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    answer = op["responses"]["200"].get("content", {}).get("application/json", {})
    return {
        "id": op["operationId"], "method": method.upper(), "path": path,
        "summary": op.get("summary", ""), "description": op.get("description", ""),
        "params": op.get("parameters", []),
        "body_rows": schema_rows(body["schema"], doc) if "schema" in body else [],
        "payload_rows": schema_rows(op["x-payload"], doc) if "x-payload" in op else [],
        "payload_example": _dump(op["x-payload-example"]) if "x-payload-example" in op else "",
        "envelope_example": _dump(body["example"]) if "example" in body else "",
        "answer_rows": schema_rows(op["x-answer-data"] if "x-answer-data" in op
                                   else answer.get("schema", {}), doc) if
        ("x-answer-data" in op or "schema" in answer) else [],
    }


def page_model(doc: dict) -> dict:
    """What docs.html shows: operations grouped by tag, the catalog and the fault kinds."""
    groups: dict[str, list[dict]] = {t["name"]: [] for t in doc["tags"]}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            groups[op["tags"][0]].append(_op_view(path, method, op, doc))
    hooks = [_op_view("/" + name, "post", item["post"], doc) | {
        "payload_rows": schema_rows(item["post"]["x-payload"], doc)}
        for name, item in doc["webhooks"].items()]
    return {"doc": doc, "groups": groups, "webhooks": hooks,
            "catalog": doc["components"]["schemas"]["ErrorCode"]["x-catalog"],
            "fault_kinds": doc["x-fault-kinds"],
            "fault_rows": schema_rows(doc["components"]["schemas"]["FaultRule"], doc)}


def md(text: Any) -> Markup:
    """The little Markdown the descriptions use: `code` and **bold** (escaped first)."""
    html = str(escape(text or ""))
    html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
    return Markup(re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html))


def render_docs(doc: dict) -> str:
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(["html"]))
    env.filters["md"] = md
    return env.get_template("docs.html").render(**page_model(doc))


def routes(lender: Lender) -> list[BaseRoute]:
    built: dict[str, Any] = {}  # this app's document and page, made on first request

    def document() -> dict:
        if "doc" not in built:
            built["doc"] = build(lender)
        return built["doc"]

    def openapi_json(request: Request) -> Response:
        return JSONResponse(document())

    def docs(request: Request) -> Response:
        if "html" not in built:
            built["html"] = render_docs(document())
        return HTMLResponse(built["html"])

    return [Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/docs", docs, methods=["GET"])]
