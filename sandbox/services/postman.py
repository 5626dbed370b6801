"""A partner's Postman collection (v2.1; Apifox imports it): its requests, folders, entry points.

Every endpoint 02-18 with a valid example, and a folder that plays a whole loan in order.

The requests keep their plain JSON payload as the body, so a tester reads and edits it; the
collection's pre-request script encrypts it into the envelope just before sending (CryptoJS,
the key and IV cut or NUL-padded to 16 bytes like PHP: docs/protocol.md §2) and its test
script checks `code` 0 and decrypts an encrypted `data`. The "Whole loan" folder plays the
happy path (a borrower whose mobile picks the approve scenario) on the sandbox, moving the
partner's clock through the sandbox-only control API so the review and the payout happen
at once; each run makes a new borrower and order number, so it can run again on the same
sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from ..core.clock import WIB
from ..core.errors import ControlError
from ..core.pricing import Product
from ..core.protocol import SPECS
from ..core.settings import Settings
from . import control
from .lender import Lender
from .postman_plan import (
    EXAMPLES,
    HAPPY_SCENARIO,
    NEEDS,
    Plan,
    PostmanError,
    identity,
    plan_for,
    templated,
)
from .postman_scripts import (
    CRYPTO_JS,
    KEEP_CODE,
    LENDER_JS,
    NEW_BORROWER_JS,
    ONE_CARD,
    PRE_REQUEST_JS,
    TEST_JS,
    expect,
    fill,
    script,
)

SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
WHOLE_LOAN, ENDPOINTS, CONTROLS = "Whole loan", "Endpoints", "Sandbox controls"
JSON_HEADER = {"key": "Content-Type", "value": "application/json;charset=utf-8"}
CONTROL_HEADER = {
    "key": "Authorization",
    "value": "Bearer {{control_token}}",
    "description": "Only needed where the sandbox asks for a token: the partner's control "
    "token (or the admin token).",
}


# ---- items ----


def _url(path: str) -> dict:
    path, _, query = path.partition("?")
    url: dict[str, Any] = {
        "raw": "{{base_url}}" + path + (f"?{query}" if query else ""),
        "host": ["{{base_url}}"],
        "path": [p for p in path.split("/") if p],
    }
    if query:
        pairs = [pair.partition("=") for pair in query.split("&")]
        url["query"] = [{"key": key, "value": value} for key, _, value in pairs]
    return url


def _request(
    name: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    description: str = "",
    tests: str = "",
    prerequest: str = "",
    sandbox: bool = False,
) -> dict:
    headers = [JSON_HEADER, CONTROL_HEADER] if sandbox else [JSON_HEADER]
    request: dict[str, Any] = {
        "method": method,
        "header": headers,
        "url": _url(path),
        "description": description,
    }
    if body is not None:
        request["body"] = {
            "mode": "raw",
            "raw": json.dumps(body, indent=2, ensure_ascii=False),
            "options": {"raw": {"language": "json"}},
        }
    item: dict[str, Any] = {"name": name, "request": request}
    events = ([script("prerequest", prerequest)] if prerequest else []) + (
        [script("test", tests)] if tests else []
    )
    if events:
        item["event"] = events
    return item


def _lender(
    number: str, plan: Plan, body: dict | None = None, *, note: str = "", tests: str = ""
) -> dict:
    e = next(e for e in SPECS if e.number == number)
    payload = templated(body if body is not None else EXAMPLES[e.path](plan), plan.sample)
    text = (
        f"{e.summary}\n\nThe body is the plain payload ({e.model.__name__}); the collection's "
        f"pre-request script encrypts it into the envelope. docs/protocol.md §4 {number}."
    )
    if e.path in NEEDS:
        text += f"\n\nThe order must be in status {NEEDS[e.path]}."
    return _request(
        f"{number} {e.path.strip('/')}{note}",
        "POST",
        e.path,
        payload,
        description=text,
        tests=tests,
    )


def duration(seconds: float) -> str:
    """120 -> "2m", 5400 -> "1h30m", 86400 -> "1d" (the control API's own notation)."""
    left, out = int(seconds), ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            out += f"{left // size}{unit}"
            left %= size
    return out or "0s"


def _advance(seconds: float, why: str) -> dict:
    return _request(
        f"Sandbox: advance the clock {duration(seconds)} ({why})",
        "POST",
        "/sandbox/partners/{{partner_token}}/clock/advance",
        {"seconds": seconds},
        sandbox=True,
        description=f"Sandbox-only (not part of the lender API): moves the partner's "
        f"virtual clock so that {why} now instead of after a wait; every "
        f"event due on the way fires before the answer.",
    )


def _pay(what: str, status: int) -> dict:
    test = (
        "pm.test('order_status " + str(status) + "', () => "
        "pm.expect(pm.response.json().order_status).to.eql(" + str(status) + "));"
    )
    return _request(
        f"Sandbox: the borrower pays the {what} code",
        "POST",
        "/sandbox/payments",
        {"repay_code": "{{repay_code}}"},
        sandbox=True,
        tests=test,
        description="Sandbox-only: the borrower pays the code 15 issued (a bank "
        "transfer to the virtual account in real life).",
    )


def whole_loan(plan: Plan, new_borrower: str) -> dict:
    s = plan.sample
    items = [
        _request(
            "Sandbox: a new borrower and order number",
            "GET",
            "/sandbox/health",
            prerequest=new_borrower,
            description="Its pre-request script picks a new order_no, NIK and mobile (ending "
            f"in {plan.mobile_suffix}: approved, paid out) for this run; the "
            "request itself checks that the sandbox is up.",
        ),
        *(_lender(n, plan) for n in ("02", "03", "04", "05", "06")),
        _advance(plan.review_seconds, "the review decides"),
        _lender("12", plan, note=" (approved)", tests=expect("order_status", 100, "approved: 100")),
        _lender("07", plan),
        _lender("08", plan),
        _lender("09", plan, tests=ONE_CARD),
        _lender("10", plan),
        _lender("11", plan),
        _advance(plan.payout_seconds, "the payout goes through"),
        _lender(
            "12", plan, note=" (disbursed)", tests=expect("order_status", 170, "disbursed: 170")
        ),
        _lender("13", plan, tests=expect("approval_amount", s.amount, "approved in full")),
        _lender("14", plan),
        _lender(
            "15",
            plan,
            s.repay_detail(2, method_code=plan.method_code, delay_term=plan.delay_term),
            note=" (extension)",
            tests=KEEP_CODE,
        ),
        _pay("extension", 170),
        _lender("16", plan, tests=expect("delay_times", 1, "one extension")),
        _lender("17", plan),
        _lender("18", plan),
        _lender(
            "15",
            plan,
            s.repay_detail(1, method_code=plan.method_code),
            note=" (repay in full)",
            tests=KEEP_CODE,
        ),
        _pay("repayment", 200),
        _lender("12", plan, note=" (settled)", tests=expect("order_status", 200, "settled: 200")),
    ]
    return {
        "name": WHOLE_LOAN,
        "item": items,
        "description": "A whole loan on the happy path, in order: precheck, pushes, review, "
        "bank binding, contract, confirmation, payout, plan, an extension paid, then the "
        'repayment that settles it. Steps named "Sandbox:" use the sandbox-only control API '
        "(move the clock, pay a code); a real lender has no such routes. Run the folder as a whole "
        '(Runner, or `newman run FILE --folder "Whole loan"`).',
    }


def endpoints(plan: Plan) -> dict:
    items = [_lender(e.number, plan) for e in SPECS]
    return {
        "name": ENDPOINTS,
        "item": items,
        "description": "Every lender endpoint 02-18 once, with a valid example payload for the "
        "order in {{order_no}} (the last whole-loan run's, or the sample's). Requests about "
        "an order answer 11002 when it is not in the status they need (see each description).",
    }


def controls() -> dict:
    items = [
        _request(
            "Order detail (timeline, codes, callbacks)",
            "GET",
            "/sandbox/orders/{{order_no}}?partner_token={{partner_token}}",
            sandbox=True,
        ),
        _request(
            "Advance the clock one day",
            "POST",
            "/sandbox/partners/{{partner_token}}/clock/advance",
            {"by": "1d"},
            sandbox=True,
        ),
        _request(
            "Pay the last payment code",
            "POST",
            "/sandbox/payments",
            {"repay_code": "{{repay_code}}"},
            sandbox=True,
        ),
    ]
    return {
        "name": CONTROLS,
        "item": items,
        "description": "Sandbox-only helpers for the Endpoints folder (reference: /docs).",
    }


def build(*, partner_token: str, aes_key: str, aes_iv: str, base_url: str, plan: Plan) -> dict:
    """The collection (a dict, Postman Collection v2.1)."""
    lender_js = fill(LENDER_JS, PATHS=json.dumps([e.path for e in SPECS]))
    mobile = plan.sample.person.mobile
    head, suffix = mobile[:3], plan.mobile_suffix
    new_borrower = fill(
        NEW_BORROWER_JS,
        NIK_HEAD=json.dumps(plan.sample.person.nik[:12]),
        MOBILE_HEAD=json.dumps(head),
        MOBILE_DIGITS=str(len(mobile) - len(head) - len(suffix)),
        SUFFIX_JSON=json.dumps(suffix),
        SUFFIX=suffix,
        SCENARIO=HAPPY_SCENARIO,
    )
    variables = {
        "base_url": base_url.rstrip("/"),
        "partner_token": partner_token,
        "aes_key": aes_key,
        "aes_iv": aes_iv,
        "control_token": "",  # never filled in: a collection is shared; set it in an environment
        **identity(plan.sample),
        "repay_code": "",
    }
    return {
        "info": {
            "name": f"Lender Sandbox - {partner_token}",
            "schema": SCHEMA,
            "description": DESCRIPTION,
        },
        "item": [whole_loan(plan, new_borrower), endpoints(plan), controls()],
        "event": [
            script("prerequest", "\n\n".join((CRYPTO_JS, lender_js, PRE_REQUEST_JS))),
            script("test", "\n\n".join((CRYPTO_JS, lender_js, TEST_JS))),
        ],
        "variable": [{"key": k, "value": v, "type": "string"} for k, v in variables.items()],
    }


DESCRIPTION = """\
The partner lending API (endpoints 02-18) on the Lender Sandbox.

Each lender request's body is the plain JSON payload: the collection's pre-request script
encrypts it into {"partner_token", "encode_data"} with AES-128-CBC like PHP's openssl_encrypt
(the key and IV cut or NUL-padded to 16 bytes), and the collection's tests check code 0 and
decrypt `data` when the lender encrypts it. Variables: base_url, partner_token, aes_key,
aes_iv (the partner's), control_token (the partner's control token, only for a sandbox that
asks for one: set it in a Postman environment, never in a shared file), and the borrower and
order of the last whole-loan run (order_no, user_mobile, user_idcard, user_name, repay_code).

Folders: "Whole loan" (run it as a whole: a new borrower each run), "Endpoints" (each endpoint
once), "Sandbox controls". Reference: docs/protocol.md of the lender-sandbox repository."""


# ---- entry points: a server's partner, or a configuration's ----


def partner_collection(lender: Lender, token: str, base_url: str) -> dict:
    """GET /sandbox/partners/{token}/postman.json: unknown partner -> ControlError 404."""
    partner = control.get_partner(lender, token, secrets=True)
    today = datetime.fromtimestamp(partner["clock"]["now_unix"], WIB).date()
    plan = _plan(lender.settings, lender.products, token, today)
    return build(
        partner_token=token,
        aes_key=partner["aes_key"],
        aes_iv=partner["aes_iv"],
        base_url=base_url,
        plan=plan,
    )


def _plan(settings: Settings, products: Mapping[str, Product], token: str, today: date) -> Plan:
    try:
        return plan_for(settings, products, token, today)
    except PostmanError as e:
        raise ControlError("invalid_field", str(e), http_status=409) from None


def config_collection(settings: Settings, token: str, today: date) -> dict:
    """The collection of a partner of the configuration (fixtures/partners.toml), offline."""
    for p in settings.partners:
        if p.partner_token == token:
            return build(
                partner_token=token,
                aes_key=p.aes_key,
                aes_iv=p.aes_iv,
                base_url=settings.public_url(),
                plan=plan_for(settings, settings.products(), token, today),
            )
    raise KeyError(token)


def resolve(text: str, variables: Mapping[str, str]) -> str:
    """`{{name}}` -> value, as Postman resolves a body (unknown names stay)."""
    for name, value in variables.items():
        text = text.replace("{{" + name + "}}", value)
    return text


def requests_of(collection: Mapping[str, Any]) -> Sequence[dict]:
    """Every request item, folders flattened, in order."""
    out: list[dict] = []
    for item in collection.get("item", []):
        out += requests_of(item) if "item" in item else [item]
    return out
