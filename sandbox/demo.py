"""`lender-sandbox demo`: a whole aggregator flow played against a sandbox, step by step.

Precheck to settlement with an extension on the way, then a rejected borrower who gets
11007 when they try again. It runs in process (a fresh in-memory sandbox with a manual clock:
`api.handle` and the control functions, no network) or against a running sandbox (`--url`:
the lender endpoints and the control API over HTTP). Every step prints its request and the
decrypted answer; the first unexpected answer stops the run with a non-zero exit. The
payload builders double as the examples of the OpenAPI document.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Protocol

import click

from .clock import WIB, parse_instant
from .crypto import Codec, CryptoError
from .people import Person, make_person
from .protocol import decode_response

PRODUCT = "1001"          # the demo product: days, with extensions
AMOUNT, TERM, UNIT = 1_000_000, 14, 1
DELAY_TERM = 7
APPROVE, REJECT = "001", "003"  # fixtures/scenarios.toml mobile suffixes


class DemoFailure(Exception):
    """A step got an answer the flow did not expect."""


# ---- realistic payloads (also the OpenAPI examples) ----

def borrower(seed: str, suffix: str, today: date) -> Person:
    """A consistent borrower whose mobile ends in a scenario `suffix`."""
    p = make_person(seed, today=today)
    return replace(p, mobile=p.mobile[:-len(suffix)] + suffix)


def order_info(p: Person, order_no: str, amount: int = AMOUNT, term: int = TERM) -> dict:
    return {"order_no": order_no, "application_amount": amount, "application_term": term,
            "term_unit": UNIT, "product_id": PRODUCT, "user_name": p.name,
            "user_mobile": p.mobile, "user_idcard": p.nik}


def basic_info(p: Person, order_no: str) -> dict:
    return {"product_id": PRODUCT, "device_ip": "114.124.10.20", "is_reloan": 0,
            "basic_info": {"user_type": 1, "education": p.education, "loan_remark": 2,
                           "idcard_image_front": f"https://cdn.example.id/ktp/{order_no}-f.jpg",
                           "idcard_image_hand": f"https://cdn.example.id/ktp/{order_no}-h.jpg",
                           "month_income": p.month_income, "religion": p.religion},
            "order_info": order_info(p, order_no)}


def supplement_info(p: Person, order_no: str) -> dict:
    emergs = [{"emergs_name": e.emergs_name, "emergs_phone": e.emergs_phone,
               "emergs_relation": e.emergs_relation} for e in p.emergs]
    return {"product_id": PRODUCT, "device_ip": "114.124.10.20",
            "supplement_info": {
                "is_charge": 2, "birthday": p.birth_date.isoformat(), "sex": p.sex,
                "marital_status": p.marital_status, "work_type": 2, "company": p.company,
                "face_photo_image": [f"https://cdn.example.id/face/{order_no}.jpg"],
                "pass_face_photo": 1, "same_person": 1, "confidence_score": "92.5",
                "area": {"province": p.province, "city": p.city, "district": p.district,
                         "village": "Sukamaju", "detail_address": "Jl. Merdeka No. 10"},
                "emergs": emergs, "device_info": {"os": "android", "model": "Redmi Note 12"}},
            "order_info": {"order_no": order_no, "application_amount": AMOUNT,
                           "application_term": TERM, "term_unit": UNIT, "user_mobile": p.mobile}}


def person_query(p: Person) -> dict:
    return {"product_id": PRODUCT, "user_mobile": p.mobile, "user_idcard": p.nik,
            "user_name": p.name}


def order_query(order_no: str, **extra: Any) -> dict:
    return {"product_id": PRODUCT, "order_no": order_no, **extra}


def bind_bank(p: Person, order_no: str) -> dict:
    return order_query(order_no, bank_card=p.bank_account, user_name=p.name,
                       bank_code=p.bank_code)


def confirm(order_no: str, amount: int = AMOUNT, term: int = TERM) -> dict:
    return order_query(order_no, application_amount=amount, application_term=term,
                       term_unit=UNIT)


def repay_detail(order_no: str, method_code: str = "1001", repay_type: int = 1,
                 delay_term: int | None = None) -> dict:
    extra = {"delay_term": delay_term} if delay_term else {}
    return order_query(order_no, repay_method=1, method_code=method_code,
                       repay_type=repay_type, **extra)


def example_requests(p: Person, order_no: str) -> dict[str, dict]:
    """A realistic decrypted payload for every lender endpoint (02-18)."""
    o = order_query(order_no)
    return {
        "/get-loan-precheck": person_query(p),
        "/get-loan-amount": {k: v for k, v in person_query(p).items() if k != "user_name"},
        "/get-loan-interest": {"product_id": PRODUCT, "user_mobile": p.mobile,
                               "user_idcard": p.nik, "application_amount": AMOUNT,
                               "application_term": TERM, "term_unit": UNIT},
        "/push-basic-info": basic_info(p, order_no),
        "/push-supplement-info": supplement_info(p, order_no),
        "/get-bank-list": {"product_id": PRODUCT, "action_type": 1},
        "/push-bind-bank": bind_bank(p, order_no),
        "/get-bind-bank": o, "/get-loan-contract": o,
        "/push-order-confirm": confirm(order_no),
        "/get-order-status": o, "/get-approval-result": o, "/get-repay-plan": o,
        "/get-repay-detail": repay_detail(order_no),
        "/get-delay-list": o,
        "/get-delay-interest": order_query(order_no, delay_term=DELAY_TERM),
        "/get-delay-detail": o,
    }


# ---- where the requests go ----

class Transport(Protocol):
    def call(self, path: str, payload: dict) -> dict: ...
    def clock(self) -> dict: ...
    def advance(self, seconds: float) -> dict: ...
    def pay(self, repay_code: str) -> dict: ...
    def status(self, order_no: str) -> int: ...
    def close(self) -> None: ...


def envelope(token: str, codec: Codec, payload: dict) -> bytes:
    return json.dumps({"partner_token": token, "encode_data": codec.encrypt_json(payload)}).encode()


def decoded(doc: dict, codec: Codec) -> dict:
    """The answer with its `data` decrypted when the lender encrypts it."""
    try:
        return {**doc, "data": decode_response(doc, codec)}
    except CryptoError as e:
        raise DemoFailure(f"the answer's data does not decrypt: {e}") from None


class InProcess:
    """A fresh in-memory sandbox with a manual clock; calls go to `api.handle` directly."""

    def __init__(self, partner: str, key: str | None, iv: str | None):
        from . import control
        from .app import create_lender
        from .config import load_settings
        from .errors import SandboxError
        overrides = {"database": {"url": "sqlite://"}, "clock": {"mode": "manual"}}
        self.lender = create_lender(load_settings(overrides=overrides, env={}))
        self.control, self.token = control, partner
        try:
            view = control.get_partner(self.lender, partner, secrets=True)
        except SandboxError:
            view = control.create_partner(self.lender, {"partner_token": partner})
        self.codec = Codec(key or view["aes_key"], iv or view["aes_iv"])

    def call(self, path: str, payload: dict) -> dict:
        from . import api
        reply = api.handle(self.lender, path, envelope(self.token, self.codec, payload))
        return decoded(reply.body, self.codec)

    def clock(self) -> dict:
        return self.control.get_clock(self.lender, self.token)

    def advance(self, seconds: float) -> dict:
        return self.control.advance_clock(self.lender, self.token, seconds)

    def pay(self, repay_code: str) -> dict:
        return self.control.pay(self.lender, repay_code)

    def status(self, order_no: str) -> int:
        return int(self.control.order_detail(self.lender, self.token, order_no)["status"])

    def close(self) -> None:
        self.lender.store.dispose()


class Remote:
    """A running sandbox: lender endpoints and the control API over HTTP (`http` injectable)."""

    def __init__(self, url: str, partner: str, key: str | None, iv: str | None,
                 admin_token: str | None, http: Any = None):
        import httpx
        self.httpx, self.base, self.token = httpx, url.rstrip("/"), partner
        self.headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        self.own = http is None
        self.http = http or httpx.Client(timeout=30, trust_env=False)
        if key is None or iv is None:
            view = self.control("GET", f"/sandbox/partners/{partner}", params={"secrets": "1"})
            key, iv = key or view["aes_key"], iv or view["aes_iv"]
        self.codec = Codec(key, iv)

    def _send(self, method: str, path: str, **kw: Any) -> Any:
        headers = {**self.headers, **kw.pop("headers", {})}
        try:
            return self.http.request(method, self.base + path, headers=headers, **kw)
        except self.httpx.HTTPError as e:
            raise DemoFailure(f"{method} {self.base}{path}: {type(e).__name__}: {e} "
                              f"(is a sandbox running there? `lender-sandbox serve`)") from None

    def control(self, method: str, path: str, **kw: Any) -> Any:
        r = self._send(method, path, **kw)
        if r.status_code >= 400:
            raise DemoFailure(f"{method} {path}: HTTP {r.status_code} {r.text[:300]}")
        return r.json()

    def call(self, path: str, payload: dict) -> dict:
        r = self._send("POST", path, content=envelope(self.token, self.codec, payload),
                       headers={"content-type": "application/json;charset=utf-8"})
        if r.status_code != 200:
            raise DemoFailure(f"HTTP {r.status_code} from {path}: {r.text[:300]}")
        return decoded(r.json(), self.codec)

    def clock(self) -> dict:
        return self.control("GET", f"/sandbox/partners/{self.token}/clock")

    def advance(self, seconds: float) -> dict:
        return self.control("POST", f"/sandbox/partners/{self.token}/clock/advance",
                            json={"seconds": seconds})

    def pay(self, repay_code: str) -> dict:
        return self.control("POST", "/sandbox/payments", json={"repay_code": repay_code})

    def status(self, order_no: str) -> int:
        detail = self.control("GET", f"/sandbox/orders/{order_no}",
                              params={"partner_token": self.token})
        return int(detail["status"])

    def close(self) -> None:
        if self.own:
            self.http.close()


# ---- printing ----

@dataclass
class Printer:
    total: int
    pretty: bool = False
    n: int = 0

    def dump(self, doc: Any) -> str:
        if self.pretty:
            return json.dumps(doc, ensure_ascii=False, indent=2)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))

    def start(self, title: str) -> None:
        self.n += 1
        click.echo(click.style(f"[{self.n}/{self.total}] ", fg="cyan") + title + " ... ", nl=False)

    def ok(self, sent: Any, got: Any, note: str = "") -> None:
        click.echo(click.style("ok", fg="green") + (f"  ({note})" if note else ""))
        if sent is not None:
            click.echo(click.style("  > ", fg="blue") + self.dump(sent))
        click.echo(click.style("  < ", fg="magenta") + self.dump(got))

    def failed(self, why: str) -> None:
        click.echo(click.style("FAILED", fg="red", bold=True))
        click.echo(click.style(f"  {why}", fg="red"))


# ---- the flow ----

Check = Callable[[dict], str]


def expect_code(code: int) -> Check:
    def check(doc: dict) -> str:
        if doc.get("code") != code:
            raise DemoFailure(f"expected code {code}, got {doc.get('code')}: "
                              f"{doc.get('message', doc.get('msg'))}")
        return "" if code == 0 else f"code {code} as expected"
    return check


def expect_status(status: int) -> Check:
    def check(doc: dict) -> str:
        expect_code(0)(doc)
        got = doc["data"].get("order_status")
        if got != status:
            raise DemoFailure(f"expected order_status {status}, got {got}")
        return f"order_status {status}"
    return check


@dataclass
class Flow:
    """The demo's state: who borrows, and what the lender handed out on the way."""
    t: Transport
    out: Printer
    seed: str
    today: date
    good: Person = field(init=False)
    bad: Person = field(init=False)
    order_no: str = field(init=False)
    bad_order: str = field(init=False)
    approved: int = AMOUNT
    method_code: str = "1001"
    codes: dict[str, str] = field(default_factory=dict)  # repay codes handed out by 15

    def __post_init__(self) -> None:
        self.good = borrower(f"demo-{self.seed}-a", APPROVE, self.today)
        self.bad = borrower(f"demo-{self.seed}-b", REJECT, self.today)
        tag = hashlib.sha1(self.seed.encode()).hexdigest()[:10].upper()
        self.order_no, self.bad_order = f"DEMO-{tag}-A", f"DEMO-{tag}-B"

    def step(self, title: str, run: Callable[[], tuple[Any, Any, str]]) -> None:
        self.out.start(title)
        try:
            sent, got, note = run()
        except DemoFailure as e:
            self.out.failed(str(e))
            raise
        self.out.ok(sent, got, note)

    def api(self, path: str, payload: dict, check: Check = expect_code(0),
            keep: Callable[[dict], None] | None = None) -> Callable[[], tuple[Any, Any, str]]:
        def run() -> tuple[Any, Any, str]:
            doc = self.t.call(path, payload)
            note = check(doc)
            if keep:
                keep(doc["data"])
            return payload, doc, note
        return run

    def advance(self, order_no: str, leaves: int) -> Callable[[], tuple[Any, Any, str]]:
        """Move the clock event by event until the order is no longer in status `leaves`."""
        def run() -> tuple[Any, Any, str]:
            for _ in range(20):
                state = self.t.clock()
                if state.get("next_event") is None:
                    break
                wait = max(1.0, parse_instant(state["next_event"]) - state["now_unix"] + 1)
                moved = self.t.advance(wait)
                status = self.t.status(order_no)
                if status != leaves:
                    return {"advance_seconds": round(wait)}, moved, f"order now {status}"
            raise DemoFailure(f"order {order_no} stayed in status {leaves}: no due event moved it")
        return run

    def pay(self, kind: str) -> Callable[[], tuple[Any, Any, str]]:
        def run() -> tuple[Any, Any, str]:
            code = self.codes[kind]
            paid = self.t.pay(code)
            return {"repay_code": code}, paid, f"order {paid['order_status']}"
        return run

    def steps(self) -> list[tuple[str, Callable[[], tuple[Any, Any, str]]]]:
        g, no = self.good, self.order_no
        return [
            ("get-loan-precheck", self.api("/get-loan-precheck", person_query(g))),
            ("get-loan-amount", self.api("/get-loan-amount", example_requests(g, no)["/get-loan-amount"])),
            ("get-loan-interest (trial)", self.api("/get-loan-interest", example_requests(g, no)["/get-loan-interest"])),
            ("push-basic-info", self.api("/push-basic-info", basic_info(g, no))),
            ("push-supplement-info", self.api("/push-supplement-info", supplement_info(g, no))),
            ("advance clock: review", self.advance(no, leaves=90)),
            ("get-approval-result", self.api("/get-approval-result", order_query(no),
                                             expect_status(100), self._keep_approval)),
            ("get-bank-list (banks)", self.api("/get-bank-list", {"product_id": PRODUCT, "action_type": 1})),
            ("push-bind-bank", self.api("/push-bind-bank", bind_bank(g, no))),
            ("get-loan-contract", self.api("/get-loan-contract", order_query(no))),
            ("push-order-confirm", lambda: self.api("/push-order-confirm", confirm(no, self.approved))()),
            ("advance clock: payout", self.advance(no, leaves=100)),
            ("get-order-status", self.api("/get-order-status", order_query(no), expect_status(170))),
            ("get-repay-plan", self.api("/get-repay-plan", order_query(no))),
            ("get-bank-list (repayment methods)", self.api("/get-bank-list", {"product_id": PRODUCT, "action_type": 2},
                                                           keep=self._keep_method)),
            ("get-delay-interest (extension trial)", self.api("/get-delay-interest", order_query(no, delay_term=DELAY_TERM))),
            ("get-repay-detail (extension fee)", lambda: self.api(
                "/get-repay-detail", repay_detail(no, self.method_code, 2, DELAY_TERM),
                keep=self._keep_code("extension"))()),
            ("borrower pays the extension fee", self.pay("extension")),
            ("get-delay-list", self.api("/get-delay-list", order_query(no))),
            ("get-repay-detail (full repayment)", lambda: self.api(
                "/get-repay-detail", repay_detail(no, self.method_code, 1),
                keep=self._keep_code("full"))()),
            ("borrower pays in full", self.pay("full")),
            ("get-order-status: settled", self.api("/get-order-status", order_query(no), expect_status(200))),
            *self.rejection_steps(),
        ]

    def rejection_steps(self) -> list[tuple[str, Callable[[], tuple[Any, Any, str]]]]:
        b, no = self.bad, self.bad_order
        return [
            ("push-basic-info (mobile ...003)", self.api("/push-basic-info", basic_info(b, no))),
            ("push-supplement-info (mobile ...003)", self.api("/push-supplement-info", supplement_info(b, no))),
            ("advance clock: review", self.advance(no, leaves=90)),
            ("get-approval-result: rejected", self.api("/get-approval-result", order_query(no), expect_status(110))),
            ("get-loan-precheck again: 11007", self.api("/get-loan-precheck", person_query(b), expect_code(11007))),
        ]

    def _keep_approval(self, data: dict) -> None:
        self.approved = int(data["approval_amount"])

    def _keep_method(self, data: dict) -> None:
        self.method_code = next(m["method_code"] for m in data["banklist"] if m["repay_method"] == 1)

    def _keep_code(self, kind: str) -> Callable[[dict], None]:
        def keep(data: dict) -> None:
            self.codes[kind] = data["repay_code"]
        return keep


def _today(t: Transport) -> date:
    return datetime.fromtimestamp(t.clock()["now_unix"], WIB).date()


def _open(url: str | None, partner: str, key: str | None, iv: str | None,
          admin_token: str | None, http: Any) -> Transport:
    if url:
        return Remote(url, partner, key, iv, admin_token, http)
    return InProcess(partner, key, iv)


def run(*, url: str | None = None, partner: str = "demo", key: str | None = None,
        iv: str | None = None, admin_token: str | None = None, pretty: bool = False,
        seed: str | None = None, http: Any = None) -> int:
    """Play the flow; 0 when every step answered as expected, 1 otherwise.

    `http`: an httpx.Client to reach `url` with (default: a new one)."""
    try:
        t = _open(url, partner, key, iv, admin_token, http)
        flow = Flow(t, Printer(0, pretty), seed or secrets.token_hex(4), _today(t))
    except DemoFailure as e:
        click.echo(click.style(f"cannot start: {e}", fg="red"), err=True)
        return 1
    steps = flow.steps()
    flow.out.total = len(steps)
    click.echo(f"Lender Sandbox demo: partner {partner} on "
               f"{url or 'a fresh in-process sandbox (manual clock)'}\n")
    try:
        for title, step in steps:
            flow.step(title, step)
    except DemoFailure:
        return 1
    finally:
        t.close()
    click.echo(click.style(f"\nDone: order {flow.order_no} settled (status 200); order "
                           f"{flow.bad_order} rejected (110) and its borrower refused with "
                           f"11007 on a new precheck.", fg="green"))
    return 0
