"""Shared helpers of the HTTP tests: a real ASGI app, encrypted calls, realistic payloads
(the harness's `SampleOrder`).

Every test talks to `create_app(...)` through starlette's TestClient with the envelope a
partner really sends: the business JSON encrypted with the demo partner's key/IV
(docs/protocol.md "Encryption"). The wall clock is injected and fixed, the partner clock is
manual, so dates are known in advance and time moves only by POST .../clock/advance.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sandbox.core.clock import WIB
from sandbox.core.crypto import Codec, php_json_encode
from sandbox.core.people import Person, make_person
from sandbox.core.settings import Settings
from sandbox.services.config import load_settings
from sandbox.services.lender import Lender, create_lender
from sandbox.store import Store
from sandbox.testing import SampleOrder
from sandbox.web.app import create_app

LOCAL = "http://localhost"  # a loopback sandbox answers loopback Host names only

KEY, IV = "Loan@apis#123456@", "loan#654321@apis"  # the spec's pair = the demo partner's
TOKEN = "demo"
CODEC = Codec(KEY, IV)
# A Monday morning in Jakarta: every test starts here (the injected wall clock).
T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=WIB).timestamp()
TODAY = date(2026, 3, 2)
ROOT = Path(__file__).resolve().parents[2]
RULES = {
    r["name"]: r
    for r in tomllib.loads((ROOT / "fixtures" / "scenarios.toml").read_text("utf-8"))["rules"]
}
# The magic mobile suffixes, read from the fixture so the tests follow it.
SUFFIX = {name: r["mobile_suffix"] for name, r in RULES.items()}


def settings_for(url: str = "sqlite://", **sections: dict[str, Any]) -> Settings:
    overrides: dict[str, dict[str, Any]] = {"database": {"url": url}, "clock": {"mode": "manual"}}
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_settings(overrides=overrides, env={})


class Sandbox:
    """One app behind a TestClient, seen as the demo partner."""

    def __init__(self, client: TestClient, token: str = TOKEN, codec: Codec = CODEC):
        self.client, self.token, self.codec = client, token, codec

    @property
    def lender(self) -> Any:
        return self.client.app.state.lender  # type: ignore[attr-defined]

    # ---- the lender API ----

    def envelope(self, payload: Any, *, php: bool = False) -> dict:
        text = php_json_encode(payload) if php else json.dumps(payload)
        return {"partner_token": self.token, "encode_data": self.codec.encrypt_text(text)}

    def post(self, path: str, body: Any) -> Any:
        """POST raw bytes, or a dict/list as JSON; the httpx response."""
        if isinstance(body, (bytes, str)):
            return self.client.post(
                path, content=body, headers={"content-type": "application/json;charset=utf-8"}
            )
        return self.client.post(path, json=body)

    def call(self, path: str, payload: Any, *, php: bool = False) -> dict:
        """Encrypt `payload`, POST it; the response JSON (HTTP 200 asserted)."""
        r = self.post(path, self.envelope(payload, php=php))
        assert r.status_code == 200, r.text
        return r.json()

    def ok(self, path: str, payload: Any, **kw: Any) -> Any:
        """`call` that must succeed; the (decrypted if needed) `data`."""
        doc = self.call(path, payload, **kw)
        assert doc["code"] == 0, doc
        data = doc["data"]
        return self.codec.decrypt_json(data) if isinstance(data, str) else data

    def err(self, path: str, payload: Any, code: int, *fragments: str, **kw: Any) -> str:
        """`call` that must fail with `code`; the message (checked to contain `fragments`)."""
        doc = self.call(path, payload, **kw)
        assert doc["code"] == code, doc
        message = doc.get("message", doc.get("msg"))
        for f in fragments:
            assert f in message, (f, message)
        assert doc["data"] == {}
        return message

    # ---- the control API ----

    def control(self, method: str, path: str, body: dict | None = None, status: int = 200) -> Any:
        r = self.client.request(method, path, json=body)
        assert r.status_code == status, r.text
        return r.json()

    def advance(self, by: str | float) -> dict:
        body = {"by": by} if isinstance(by, str) else {"seconds": by}
        return self.control("POST", f"/sandbox/partners/{self.token}/clock/advance", body)

    def advance_to(self, ts: float) -> dict:
        return self.advance(max(0.0, ts - self.now()))

    def now(self) -> float:
        return self.control("GET", f"/sandbox/partners/{self.token}/clock")["now_unix"]

    def detail(self, order_no: str) -> dict:
        return self.control("GET", f"/sandbox/orders/{order_no}?partner_token={self.token}")

    def status(self, order_no: str) -> int:
        return self.detail(order_no)["status"]

    def force(self, order_no: str, trigger: str, status: int = 200, **kw: Any) -> dict:
        return self.control(
            "POST",
            f"/sandbox/orders/{order_no}/transition",
            {"partner_token": self.token, "trigger": trigger, **kw},
            status,
        )

    def pay(self, repay_code: str, amount: int | None = None, status: int = 200) -> dict:
        body: dict[str, Any] = {"repay_code": repay_code}
        if amount is not None:
            body["amount"] = amount
        return self.control("POST", "/sandbox/payments", body, status)


def make_sandbox(
    settings: Settings, *, wall: Callable[[], float] | None = None, store: Store | None = None
) -> Iterator[Sandbox]:
    """A fresh app; with `store` (a copy of the seeded template) the schema and seed are skipped."""
    wall = wall or (lambda: T0)
    lender = Lender(settings, store, wall=wall) if store else create_lender(settings, wall=wall)
    try:
        with TestClient(
            create_app(settings, lender=lender, background=False), base_url=LOCAL
        ) as client:
            yield Sandbox(client)
    finally:  # also on gen.close(): a pooled PostgreSQL connection must not be left open
        lender.store.dispose()


@pytest.fixture(scope="session")
def template_store() -> Iterator[Store]:
    """The schema and fixtures seeded once (demo partner, manual clock at T0); each test
    gets a copy (SQLite backup API: a fraction of a millisecond)."""
    lender = create_lender(settings_for(), wall=lambda: T0)
    yield lender.store
    lender.store.dispose()


@pytest.fixture
def sandbox(template_store: Store) -> Iterator[Sandbox]:
    yield from make_sandbox(settings_for(), store=template_store.copy())


@pytest.fixture
def sandbox_with(template_store: Store) -> Iterator[Callable[..., Sandbox]]:
    """A factory: `sandbox_with(responses={"encrypt_data": True})` -> another Sandbox."""
    made: list[Iterator[Sandbox]] = []

    def make(**sections: dict[str, Any]) -> Sandbox:
        # settings that change what is stored (the clock, the database) need a real seed
        copy = not ({"clock", "database"} & set(sections))
        gen = make_sandbox(settings_for(**sections), store=template_store.copy() if copy else None)
        made.append(gen)
        return next(gen)

    yield make
    for gen in made:
        for _ in gen:  # runs the teardown
            pass


@pytest.fixture
def call(sandbox: Sandbox) -> Callable[[str, Any], dict]:
    """`call(path, payload)`: encrypt, POST, the response JSON."""
    return sandbox.call


# ---- realistic payloads ----


def person(seed: str, suffix: str | None = None) -> Person:
    """A consistent borrower; `suffix` replaces the mobile's last digits (a scenario rule).

    Without a suffix the mobile ends in 5xx, which no rule uses, so the order follows the
    default distribution."""
    p = make_person(seed, today=TODAY)
    tail = suffix if suffix is not None else "5" + p.mobile[-2:]
    mobile = p.mobile[: -len(tail)] + tail
    return replace(p, mobile=mobile)


def basic_payload(
    p: Person,
    order_no: str,
    *,
    product_id: str = "1001",
    amount: int = 1_000_000,
    term: int = 14,
    unit: int = 1,
    is_reloan: int = 0,
) -> dict:
    order = SampleOrder(order_no, p, product_id, amount, term, unit)
    return {**order.basic_info(), "is_reloan": is_reloan}


def supplement_payload(
    p: Person,
    order_no: str,
    *,
    product_id: str = "1001",
    amount: int = 1_000_000,
    term: int = 14,
    unit: int = 1,
) -> dict:
    return SampleOrder(order_no, p, product_id, amount, term, unit).supplement_info()


def bind_payload(p: Person, order_no: str, *, product_id: str = "1001") -> dict:
    return SampleOrder(order_no, p, product_id).bind_bank()


def order_payload(order_no: str, product_id: str = "1001", **extra: Any) -> dict:
    return {"order_no": order_no, "product_id": product_id, **extra}


def confirm_payload(
    order_no: str, amount: int, term: int, *, product_id: str = "1001", unit: int = 1
) -> dict:
    return {
        "order_no": order_no,
        "product_id": product_id,
        "application_amount": amount,
        "application_term": term,
        "term_unit": unit,
    }


def repay_payload(
    order_no: str,
    *,
    repay_type: int = 1,
    method_code: str = "1001",
    repay_method: int = 1,
    delay_term: int | None = None,
    product_id: str = "1001",
) -> dict:
    body = {
        "order_no": order_no,
        "product_id": product_id,
        "repay_method": repay_method,
        "method_code": method_code,
        "repay_type": repay_type,
    }
    if delay_term is not None:
        body["delay_term"] = delay_term
    return body


@dataclass
class Loan:
    """An order being walked through the API."""

    sb: Sandbox
    p: Person
    order_no: str
    product_id: str = "1001"
    amount: int = 1_000_000
    term: int = 14
    unit: int = 1

    def q(self, **extra: Any) -> dict:
        return order_payload(self.order_no, self.product_id, **extra)

    def create(self) -> Loan:
        self.sb.ok(
            "/push-basic-info",
            basic_payload(
                self.p,
                self.order_no,
                product_id=self.product_id,
                amount=self.amount,
                term=self.term,
                unit=self.unit,
            ),
        )
        return self

    def submit(self) -> Loan:
        self.sb.ok(
            "/push-supplement-info",
            supplement_payload(
                self.p,
                self.order_no,
                product_id=self.product_id,
                amount=self.amount,
                term=self.term,
                unit=self.unit,
            ),
        )
        return self

    def bind(self) -> Loan:
        self.sb.ok(
            "/push-bind-bank", bind_payload(self.p, self.order_no, product_id=self.product_id)
        )
        return self

    def review(self) -> Loan:
        self.sb.advance(self.sb.lender.settings.lifecycle.review_delay)
        return self

    def confirm(self, amount: int | None = None, term: int | None = None) -> Loan:
        self.sb.ok(
            "/push-order-confirm",
            confirm_payload(
                self.order_no,
                amount or self.amount,
                term or self.term,
                product_id=self.product_id,
                unit=self.unit,
            ),
        )
        return self

    def payout(self) -> Loan:
        self.sb.advance(self.sb.lender.settings.lifecycle.payout_delay)
        return self

    def disbursed(self) -> Loan:
        """80 -> 90 -> 100 -> confirmed -> 170 (for an approving scenario)."""
        self.create().submit().bind().review()
        approved = self.get("/get-approval-result")["approval_amount"]
        return self.confirm(approved).payout()

    def get(self, path: str, **extra: Any) -> Any:
        return self.sb.ok(path, self.q(**extra))

    @property
    def status(self) -> int:
        return self.get("/get-order-status")["order_status"]

    def code(self, **kw: Any) -> dict:
        return self.sb.ok(
            "/get-repay-detail", repay_payload(self.order_no, product_id=self.product_id, **kw)
        )


@pytest.fixture
def loan(sandbox: Sandbox) -> Callable[..., Loan]:
    """`loan("seed", suffix="001", amount=..., term=...)` -> a Loan (not yet created)."""
    counter = iter(range(10**6))

    def make(seed: str = "borrower", suffix: str | None = "001", **kw: Any) -> Loan:
        n = next(counter)
        tag = hashlib.sha1(seed.encode()).hexdigest()[:10].upper()
        return Loan(sandbox, person(f"{seed}-{n}", suffix), f"ORD-{tag}-{n:04d}", **kw)

    return make


# ---- a sandbox with something of everything (tests/http/route_calls.py) ----


@pytest.fixture
def world(sandbox: Sandbox, loan) -> dict[str, Any]:
    """A disbursed order with an extension code, a payment, callbacks delivered and not, a
    fault rule and journal entries."""
    sandbox.control(
        "PATCH", f"/sandbox/partners/{TOKEN}", {"callback_url": "http://127.0.0.1:9/cb"}
    )
    paid = loan("schema-a", SUFFIX["approve"]).disbursed()
    code = paid.code(repay_type=2, delay_term=7)["repay_code"]
    sandbox.pay(code)
    fresh = loan("schema-b", SUFFIX["approve"]).disbursed()
    extension = fresh.code(repay_type=2, delay_term=7)["repay_code"]
    full = loan("schema-c", SUFFIX["approve"]).disbursed().code()["repay_code"]
    stuck = loan("schema-d", SUFFIX["review_stuck"]).create().submit()
    sandbox.control(
        "PUT",
        "/sandbox/faults",
        {"kind": "latency", "ms": 1, "path": "/get-bank-list", "count": 1, "partner_token": TOKEN},
    )
    callback_id = sandbox.control("GET", f"/sandbox/callbacks?partner_token={TOKEN}&limit=1")[0][
        "id"
    ]
    journal_id = sandbox.control("GET", f"/sandbox/journal?partner_token={TOKEN}&limit=1")[0]["id"]
    return {
        "journal_id": journal_id,
        "paid": paid,
        "fresh": fresh,
        "extension": extension,
        "full": full,
        "stuck": stuck,
        "callback_id": callback_id,
    }
