"""A partner's Postman collection (v2.1; Apifox imports it) and its PHP-compatible scripts.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..core.clock import WIB
from ..core.errors import ControlError
from ..core.pricing import Product
from ..core.protocol import SPECS
from ..core.samples import SampleOrder, sample_order
from ..core.scenarios import ScenarioRule
from ..core.settings import Settings
from . import control
from .lender import Lender

SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
WHOLE_LOAN, ENDPOINTS, CONTROLS = "Whole loan", "Endpoints", "Sandbox controls"
HAPPY_SCENARIO = "approve"  # fixtures/scenarios.toml: approved in full, payout succeeds
JSON_HEADER = {"key": "Content-Type", "value": "application/json;charset=utf-8"}
ADMIN_HEADER = {
    "key": "Authorization",
    "value": "Bearer {{admin_token}}",
    "description": "Only needed when the sandbox has an admin token.",
}

# ---- the scripts (the crypto part is run against the PHP golden vectors by the tests) ----

CRYPTO_JS = r"""
// PHP's openssl_encrypt($json, 'AES-128-CBC', $key, 0, $iv) in CryptoJS (docs/protocol.md §2).
const cryptoJs = require('crypto-js');

// PHP uses the first 16 bytes of the key's UTF-8 bytes, NUL-padded when shorter (the same
// for the IV): the spec's 17-byte key "Loan@apis#123456@" is really "Loan@apis#123456".
function phpKey(text) {
  const hex = cryptoJs.enc.Utf8.parse(String(text)).toString(cryptoJs.enc.Hex).slice(0, 32);
  return cryptoJs.enc.Hex.parse(hex.padEnd(32, '0'));
}

function phpEncrypt(plain, key, iv) {
  return cryptoJs.AES.encrypt(cryptoJs.enc.Utf8.parse(plain), phpKey(key),
    {iv: phpKey(iv), mode: cryptoJs.mode.CBC, padding: cryptoJs.pad.Pkcs7}).toString();
}

function phpDecrypt(base64, key, iv) {
  const sealed = cryptoJs.lib.CipherParams.create(
    {ciphertext: cryptoJs.enc.Base64.parse(base64)});
  return cryptoJs.AES.decrypt(sealed, phpKey(key),
    {iv: phpKey(iv), mode: cryptoJs.mode.CBC, padding: cryptoJs.pad.Pkcs7})
    .toString(cryptoJs.enc.Utf8);
}
""".strip()

LENDER_JS = r"""
// Lender endpoints (02-18) take an envelope; everything else (/sandbox/...) is plain JSON.
const LENDER_PATHS = __PATHS__;
function isLenderCall() {
  const path = pm.request.url.getPath();
  return LENDER_PATHS.some(p => path === p || path.endsWith(p));
}
""".strip()

PRE_REQUEST_JS = r"""
// The body of a lender request is the plain JSON payload: encrypt it into
// {"partner_token": ..., "encode_data": ...} just before it is sent.
if (isLenderCall()) {
  const missing = ['partner_token', 'aes_key', 'aes_iv'].filter(n => !pm.variables.get(n));
  if (missing.length) {
    throw new Error('set the collection variables ' + missing.join(', '));
  }
  const text = pm.variables.replaceIn((pm.request.body && pm.request.body.raw) || '');
  let payload;
  try {
    payload = JSON.parse(text);
  } catch (e) {
    throw new Error(pm.info.requestName + ': the body must be the plain JSON payload ('
                    + e.message + ')');
  }
  const pasted = payload && typeof payload.encode_data === 'string'
    && typeof payload.partner_token === 'string';
  if (!pasted) {  // a pasted envelope goes as it is
    const envelope = {
      partner_token: pm.variables.get('partner_token'),
      encode_data: phpEncrypt(JSON.stringify(payload),
                              pm.variables.get('aes_key'), pm.variables.get('aes_iv')),
    };
    pm.request.body.update(JSON.stringify(envelope));
  }
}
""".strip()

TEST_JS = r"""
// Lender answers: code 0, and `data` decrypted when the lender encrypts it
// ([responses] encrypt_data); request tests read it from the local variable `data`.
const name = pm.info.requestName;
if (isLenderCall()) {
  let answer = null;
  pm.test(name + ': the answer is JSON', () => { answer = pm.response.json(); });
  if (answer) {
    pm.test(name + ': code 0', () => {
      pm.expect(answer.code, String(answer.message || answer.msg)).to.eql(0);
    });
    let data = answer.data === undefined ? null : answer.data;
    if (typeof data === 'string' && data !== '') {
      pm.test(name + ': data decrypts to JSON', () => {
        const key = pm.variables.get('aes_key'), iv = pm.variables.get('aes_iv');
        data = JSON.parse(phpDecrypt(data, key, iv));
      });
    }
    pm.variables.set('data', JSON.stringify(data));
  }
} else {
  pm.test(name + ': HTTP ' + pm.response.code + ' is a success', () => {
    pm.expect(pm.response.code, pm.response.text()).to.be.within(200, 299);
  });
}
""".strip()

NEW_BORROWER_JS = r"""
// A new borrower and order number for each run, so the folder runs again on the same sandbox
// (the same order_no twice is 11003; a person with an unsettled loan gets 11004). The NIK keeps
// the sample's region and birth date with a new serial; the mobile ends in __SUFFIX__, which
// picks the "__SCENARIO__" scenario (fixtures/scenarios.toml).
function digits(n, first) {
  let out = first ? String(1 + Math.floor(Math.random() * 9)) : '';
  while (out.length < n) out += String(Math.floor(Math.random() * 10));
  return out;
}
const serial = String(1 + Math.floor(Math.random() * 9999)).padStart(4, '0');
pm.collectionVariables.set('user_idcard', __NIK_HEAD__ + serial);
pm.collectionVariables.set('user_mobile',
                           __MOBILE_HEAD__ + digits(__MOBILE_DIGITS__, true) + __SUFFIX_JSON__);
pm.collectionVariables.set('order_no', 'PM' + Date.now() + digits(8, false));
console.log('borrower', pm.collectionVariables.get('user_mobile'),
            'order', pm.collectionVariables.get('order_no'));
""".strip()


def _script(listen: str, source: str) -> dict:
    # Postman runs every script of a run in one JavaScript realm: a top-level `const` of one
    # script would clash with the same name in the next, so each script is a function.
    lines = ["(function () {", *source.splitlines(), "})();"]
    return {"listen": listen, "script": {"type": "text/javascript", "exec": lines}}


def _fill(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace(f"__{name}__", value)
    return template


# ---- what the collection is built from ----


@dataclass(frozen=True)
class Plan:
    """Everything the collection needs besides the partner: the sample loan and the timings."""

    sample: SampleOrder
    delay_term: int  # the product's default extension term (15 repay_type 2, 17)
    method_code: str  # a virtual-account repayment method of 07 action_type 2
    review_seconds: float  # [lifecycle] review_delay: the sandbox step moves the clock this far
    payout_seconds: float  # [lifecycle] payout_delay
    mobile_suffix: str  # of the happy scenario


class PostmanError(ValueError):
    """The configuration cannot give a whole loan (no product with extensions, no VA method)."""


def loan_product(products: Mapping[str, Product]) -> Product:
    """The first product offering extensions: the whole loan extends once before it settles."""
    for p in products.values():
        if p.extension.enabled and p.extension.terms:
            return p
    raise PostmanError("no product offers extensions: the whole-loan folder extends the loan once")


def plan_for(
    settings: Settings, products: Mapping[str, Product], partner_token: str, today: date
) -> Plan:
    product = loan_product(products)
    methods = [m.method_code for m in settings.data.repay_methods if m.repay_method == 1]
    if not methods:
        raise PostmanError("no virtual-account repayment method (repay_method 1) in banks.toml")
    rules: list[ScenarioRule] = settings.data.rules
    suffix = {r.name: r.mobile_suffix for r in rules}.get(HAPPY_SCENARIO)
    if suffix is None:
        raise PostmanError(f"no scenario rule named {HAPPY_SCENARIO!r} in scenarios.toml")
    amount = min(product.default_amount or product.amount_min, product.amount_max_new)
    sample = sample_order(
        f"postman-{partner_token}",
        scenario=HAPPY_SCENARIO,
        product_id=product.product_id,
        amount=amount,
        term=product.default_term or product.terms[0],
        term_unit=product.term_unit,
        today=today,
        rules=rules,
    )
    return Plan(
        sample,
        product.extension.default_term,
        methods[0],
        settings.lifecycle.review_delay,
        settings.lifecycle.payout_delay,
        suffix,
    )


# ---- example payloads, with the borrower and order as {{variables}} ----

EXAMPLES: dict[str, Callable[[Plan], dict]] = {
    "/get-loan-precheck": lambda p: p.sample.precheck(),
    "/get-loan-amount": lambda p: {
        k: v for k, v in p.sample.precheck().items() if k != "user_name"
    },
    "/get-loan-interest": lambda p: p.sample.interest(),
    "/push-basic-info": lambda p: p.sample.basic_info(),
    "/push-supplement-info": lambda p: p.sample.supplement_info(),
    "/get-bank-list": lambda p: {"product_id": p.sample.product_id, "action_type": 1},
    "/push-bind-bank": lambda p: p.sample.bind_bank(),
    "/get-bind-bank": lambda p: p.sample.order(),
    "/get-loan-contract": lambda p: p.sample.order(),
    "/push-order-confirm": lambda p: p.sample.confirm(),
    "/get-order-status": lambda p: p.sample.order(),
    "/get-approval-result": lambda p: p.sample.order(),
    "/get-repay-plan": lambda p: p.sample.order(),
    "/get-repay-detail": lambda p: p.sample.repay_detail(1, method_code=p.method_code),
    "/get-delay-list": lambda p: p.sample.order(),
    "/get-delay-interest": lambda p: p.sample.order(delay_term=p.delay_term),
    "/get-delay-detail": lambda p: p.sample.order(),
}

# docs/protocol.md §4: the statuses an order must be in (the others answer 11002).
NEEDS = {
    "/push-supplement-info": "80",
    "/push-bind-bank": "80, 90, 100 or 169",
    "/push-order-confirm": "100 (approved, not yet confirmed) or 169 after a re-bind",
    "/get-repay-plan": "170, 180 or 200",
    "/get-repay-detail": "170 or 180",
    "/get-delay-list": "170, 180 or 200",
    "/get-delay-interest": "170 or 180",
    "/get-delay-detail": "170, 180 or 200",
}


def identity(sample: SampleOrder) -> dict[str, str]:
    """Variable name -> the sample's value, for the values a new run replaces."""
    p = sample.person
    return {
        "order_no": sample.order_no,
        "user_mobile": p.mobile,
        "user_idcard": p.nik,
        "user_name": p.name,
    }


def templated(payload: Any, sample: SampleOrder) -> Any:
    """The payload with the borrower's and order's values as {{variables}} (the order number
    also inside URLs such as the KTP image links)."""
    values = identity(sample)
    if isinstance(payload, dict):
        return {k: templated(v, sample) for k, v in payload.items()}
    if isinstance(payload, list):
        return [templated(v, sample) for v in payload]
    if isinstance(payload, str):
        for var, value in values.items():
            if payload == value:
                return "{{" + var + "}}"
        return payload.replace(sample.order_no, "{{order_no}}")
    return payload


def resolve(text: str, variables: Mapping[str, str]) -> str:
    """`{{name}}` -> value, as Postman resolves a body (unknown names stay)."""
    for name, value in variables.items():
        text = text.replace("{{" + name + "}}", value)
    return text


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
    headers = [JSON_HEADER, ADMIN_HEADER] if sandbox else [JSON_HEADER]
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
    events = ([_script("prerequest", prerequest)] if prerequest else []) + (
        [_script("test", tests)] if tests else []
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


DATA_JS = "const data = JSON.parse(pm.variables.get('data'));  // set by the collection's test\n"


def _expect(field: str, value: Any, label: str) -> str:
    return DATA_JS + (
        f"pm.test({json.dumps(label)}, () => pm.expect(data.{field}).to.eql({json.dumps(value)}));"
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


KEEP_CODE = DATA_JS + (
    "pm.test('a payment code', () => pm.expect(data.repay_code).to.be.a('string').and.not.empty);\n"
    "pm.collectionVariables.set('repay_code', data.repay_code);"
)
ONE_CARD = (
    DATA_JS + "pm.test('the bound account', () => pm.expect(data.card_list).to.have.lengthOf(1));"
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
        _lender(
            "12", plan, note=" (approved)", tests=_expect("order_status", 100, "approved: 100")
        ),
        _lender("07", plan),
        _lender("08", plan),
        _lender("09", plan, tests=ONE_CARD),
        _lender("10", plan),
        _lender("11", plan),
        _advance(plan.payout_seconds, "the payout goes through"),
        _lender(
            "12", plan, note=" (disbursed)", tests=_expect("order_status", 170, "disbursed: 170")
        ),
        _lender("13", plan, tests=_expect("approval_amount", s.amount, "approved in full")),
        _lender("14", plan),
        _lender(
            "15",
            plan,
            s.repay_detail(2, method_code=plan.method_code, delay_term=plan.delay_term),
            note=" (extension)",
            tests=KEEP_CODE,
        ),
        _pay("extension", 170),
        _lender("16", plan, tests=_expect("delay_times", 1, "one extension")),
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
        _lender("12", plan, note=" (settled)", tests=_expect("order_status", 200, "settled: 200")),
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
    lender_js = _fill(LENDER_JS, PATHS=json.dumps([e.path for e in SPECS]))
    mobile = plan.sample.person.mobile
    head, suffix = mobile[:3], plan.mobile_suffix
    new_borrower = _fill(
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
        "admin_token": "",
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
            _script("prerequest", "\n\n".join((CRYPTO_JS, lender_js, PRE_REQUEST_JS))),
            _script("test", "\n\n".join((CRYPTO_JS, lender_js, TEST_JS))),
        ],
        "variable": [{"key": k, "value": v, "type": "string"} for k, v in variables.items()],
    }


DESCRIPTION = """\
The partner lending API (endpoints 02-18) on the Lender Sandbox.

Each lender request's body is the plain JSON payload: the collection's pre-request script
encrypts it into {"partner_token", "encode_data"} with AES-128-CBC like PHP's openssl_encrypt
(the key and IV cut or NUL-padded to 16 bytes), and the collection's tests check code 0 and
decrypt `data` when the lender encrypts it. Variables: base_url, partner_token, aes_key,
aes_iv (the partner's), admin_token (only for a sandbox that has one), and the borrower and
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


def requests_of(collection: Mapping[str, Any]) -> Sequence[dict]:
    """Every request item, folders flattened, in order."""
    out: list[dict] = []
    for item in collection.get("item", []):
        out += requests_of(item) if "item" in item else [item]
    return out
