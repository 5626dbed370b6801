"""The test harness, usable with or without pytest (design.md "pytest plugin").

It owns:
- `Template`: settings parsed once and a seeded in-memory store, built once per session and
  copied per test with the SQLite backup API (`Store.copy`);
- `Sandbox`: a fresh in-process sandbox — its own store, manual clocks, callbacks delivered
  to a `MemorySink` before each call returns, no network; requests go through `api.handle`,
  the function the HTTP layer calls, so behaviour is the same as over HTTP;
- `ServerSandbox`: the real server (`LiveServer`) and a real callback receiver
  (`CallbackSink`), with the same surface over HTTP;
- `sample_order`: valid, realistic payloads for every endpoint, with scenario control.

`sandbox.pytest_plugin` only wraps these in fixtures.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, select

from . import api, control, journal
from .callbacks import deliver_now
from .client import LenderClient, SandboxControl, endpoint_path
from .clock import WIB, iso, parse_instant
from .config import DEFAULT_CONFIG, ScenarioRule, Settings, load_fixtures, load_settings
from .errors import BY_NAME
from .lender import Lender
from .lifecycle import FINAL, Status
from .liveserver import LiveServer, merge_overrides
from .people import Person, make_person
from .protocol import render
from .sink import CallbackSink, MemorySink
from .store import Partner, Store

__all__ = ["Clock", "Credentials", "Journal", "JournalRecord", "SampleOrder", "Sandbox",
           "ServerSandbox", "Template", "WaitError", "default_template", "sample_order"]

# Callbacks of an in-process sandbox go to this URL, which only the MemorySink "serves".
IN_PROCESS_CALLBACK_URL = "http://callbacks.in-process.invalid"

# What makes a sandbox a test sandbox: in memory, manual clocks, callbacks retried at once.
TEST_OVERRIDES: dict[str, dict[str, Any]] = {
    "database": {"url": "sqlite://"},
    "clock": {"mode": "manual"},
    "callbacks": {"first_delay": 0, "max_delay": 0, "jitter": 0, "timeout": 5},
}

SUMMARY_KEYS = ("order_no", "partner_token", "product_id", "status", "status_name", "user_name",
                "user_mobile", "application_amount", "application_term", "term_unit",
                "approved_amount", "created_at", "updated_at", "due_at")


class WaitError(AssertionError):
    """An order did not reach what a test waited for (an AssertionError: pytest shows it)."""


@dataclass(frozen=True)
class Credentials:
    """What an aggregator holds for a partner (spec §01): token, AES key and IV."""
    partner_token: str
    aes_key: str
    aes_iv: str


def _instant(when: datetime | str | float) -> float:
    """datetime (naive = WIB), ISO 8601 text or epoch seconds -> epoch seconds."""
    if isinstance(when, datetime):
        return (when if when.tzinfo else when.replace(tzinfo=WIB)).timestamp()
    if isinstance(when, str):
        return parse_instant(when)
    return float(when)


# ---------------------------------------------------------------------------- template


class Template:
    """Settings parsed once plus a seeded in-memory store that every `Sandbox` copies.

    Build it once per session (the pytest plugin does); a copy costs a fraction of a
    millisecond. `config` defaults to the packaged config.toml (never ./config.toml, which
    may belong to the project under test); `overrides` go over TEST_OVERRIDES; `start` sets
    every fixture partner's clock (default: the wall time when the template is built).
    """

    def __init__(self, config: str | Path | None = None,
                 overrides: dict[str, dict[str, Any]] | None = None, *,
                 start: datetime | str | float | None = None):
        self.settings: Settings = load_settings(config or DEFAULT_CONFIG,
                                                merge_overrides(TEST_OVERRIDES, overrides), env={})
        self.products = self.settings.products()
        self.store = Store("sqlite://")
        lender = Lender(self.settings, self.store, products=self.products)
        lender.seed()
        self.start = float(math.floor(lender.wall()) if start is None else _instant(start))
        self.credentials = self._prepare_partners(lender)

    def _prepare_partners(self, lender: Lender) -> dict[str, Credentials]:
        """Callbacks to the in-process sink, clocks at `start`."""
        wall = lender.wall()
        with self.store.transaction() as s:
            partners = list(s.scalars(select(Partner)))
            for p in partners:
                p.callback_url = IN_PROCESS_CALLBACK_URL
                p.clock_anchor_wall, p.clock_anchor_virtual = wall, self.start
            return {p.partner_token: Credentials(p.partner_token, p.aes_key, p.aes_iv)
                    for p in partners}

    def today(self) -> date:
        """The date (WIB) on the fixture partners' clocks."""
        return datetime.fromtimestamp(self.start, WIB).date()

    def copy_store(self) -> Store:
        """A private in-memory copy of the template's store (`Store.copy`)."""
        return self.store.copy()

    def close(self) -> None:
        self.store.dispose()


@functools.cache
def default_template() -> Template:
    """The template `Sandbox()` uses when given none (built on first use, once per process)."""
    return Template()


# ---------------------------------------------------------------------------- journal


@dataclass(frozen=True)
class JournalRecord:
    """One request the sandbox received, with its decrypted payload and the answer."""
    id: int
    path: str
    partner_token: str
    request: dict[str, Any] | None
    response: dict[str, Any] | None
    code: int | None
    http_status: int
    virtual_time: datetime | None
    fault: str = ""

    @classmethod
    def from_view(cls, v: dict[str, Any]) -> "JournalRecord":
        """From the control API's entry (journal.entry_view)."""
        at = datetime.fromisoformat(v["virtual_time"]) if v.get("virtual_time") else None
        return cls(v["id"], v["path"], v["partner_token"], v.get("request"), v.get("response"),
                   v.get("code"), v.get("http_status", 200), at, v.get("fault") or "")

    def get(self, dotted: str, default: Any = None) -> Any:
        """A field of the decrypted request: `record.get("order_info.order_no")`."""
        return _dig(self.request, dotted, default)


_MISSING = object()


def _dig(doc: Any, dotted: str, default: Any = None) -> Any:
    for part in dotted.split("."):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return default
    return doc


def _matches(record: JournalRecord, fields: dict[str, Any]) -> bool:
    return all(_dig(record.request, key.replace("__", "."), _MISSING) == value
               for key, value in fields.items())


# (path, partner) -> journal entries as the control API shows them, newest first
JournalSource = Callable[[str | None, str | None], list[dict[str, Any]]]


class Journal:
    """The requests a sandbox received (what `api.handle` journals), oldest first."""

    def __init__(self, source: JournalSource, clear: Callable[[str | None], Any]):
        self._source, self._clear = source, clear

    def entries(self, path: str | None = None, partner: str | None = None) -> list[JournalRecord]:
        """Every request (the newest 1000), or those to `path` ("push-basic-info") and/or
        of `partner`."""
        views = self._source(endpoint_path(path) if path else None, partner)
        return [JournalRecord.from_view(v) for v in reversed(views)]

    def find(self, path: str | None = None, *, partner: str | None = None,
             **fields: Any) -> list[JournalRecord]:
        """Requests whose decrypted fields equal `fields`; nested fields by dotted path
        (`**{"order_info.order_no": "X"}`) or double underscore (`order_info__order_no="X"`)."""
        return [r for r in self.entries(path, partner) if _matches(r, fields)]

    def last(self, path: str | None = None, *, partner: str | None = None,
             **fields: Any) -> JournalRecord:
        """The latest matching request; LookupError when there is none."""
        found = self.find(path, partner=partner, **fields)
        if not found:
            where = f" to {endpoint_path(path)}" if path else ""
            raise LookupError(f"no request{where} matching {fields} in the journal")
        return found[-1]

    def clear(self, partner: str | None = None) -> None:
        self._clear(partner)


def _in_process_journal(sandbox: "Sandbox") -> Journal:
    def source(path: str | None, partner: str | None) -> list[dict[str, Any]]:
        return journal.list_entries(sandbox.lender, partner, path, journal.MAX_LIMIT)
    return Journal(source, lambda partner: journal.clear(sandbox.lender, partner))


# ---------------------------------------------------------------------------- clocks


def _seconds(days: float, hours: float, minutes: float, seconds: float) -> float:
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


class Clock:
    """A partner's manual clock in an in-process sandbox."""

    def __init__(self, sandbox: "Sandbox", partner: str):
        self._sb, self.partner = sandbox, partner

    @property
    def now(self) -> datetime:
        """The partner's virtual time (aware, WIB)."""
        return datetime.fromtimestamp(self.state()["now_unix"], WIB)

    def state(self) -> dict:
        """Mode, now, and the next due event (GET .../clock)."""
        return control.get_clock(self._sb.lender, self.partner)

    def advance(self, days: float = 0, hours: float = 0, minutes: float = 0,
                seconds: float = 0) -> dict:
        """Move forward; every due event on the way fires and its callbacks are delivered."""
        total = _seconds(days, hours, minutes, seconds)
        return self._sb._settled(control.advance_clock(self._sb.lender, self.partner, total))

    def set(self, when: datetime | str | float) -> dict:
        """Move to `when` (datetime, naive = WIB; ISO 8601; epoch seconds); never back."""
        return self._sb._settled(control.set_clock(self._sb.lender, self.partner, _instant(when)))


# ---------------------------------------------------------------------------- sandbox


class _Partners:
    """The partners' credentials as a sandbox keeps them: read once, given to its sink."""
    _credentials: dict[str, Credentials]
    callbacks: MemorySink | CallbackSink

    @property
    def partner(self) -> Credentials:
        """The demo partner's credentials (what your aggregator code is configured with)."""
        return self.credentials("demo")

    def credentials(self, partner: str = "demo") -> Credentials:
        known = self._credentials.get(partner)
        return known or self._remember(self._partner_view(partner))

    def _partner_view(self, partner: str) -> dict:
        """The control API's view of `partner`, secrets included."""
        raise NotImplementedError

    def _remember(self, view: dict) -> Credentials:
        c = Credentials(view["partner_token"], view["aes_key"], view["aes_iv"])
        self._credentials[c.partner_token] = c
        self.callbacks.add_partner(c.partner_token, c.aes_key, c.aes_iv)
        return c


class Sandbox(_Partners):
    """A fresh in-process sandbox: own in-memory store, manual clocks, in-memory callbacks.

    `with Sandbox() as sb:` outside pytest; the `lender_sandbox` fixture in pytest. Every
    operation (API call, clock move, forced transition, payment) returns after the
    callbacks it caused were delivered to `self.callbacks`.
    """

    def __init__(self, template: Template | None = None):
        self.template = template or default_template()
        self.settings = self.template.settings
        self._credentials = dict(self.template.credentials)
        self._enqueued = False
        self._orders = itertools.count(1)
        self.lender = Lender(self.settings, self._watched(self.template.copy_store()),
                             products=self.template.products)
        self.callbacks = MemorySink(partners=self._credentials)
        self.journal = _in_process_journal(self)
        self.clock = Clock(self, "demo")

    # ---- partners and clients ----

    def _partner_view(self, partner: str) -> dict:
        return control.get_partner(self.lender, partner, secrets=True)

    def client(self, partner: str = "demo") -> LenderClient:
        """A `LenderClient` for `partner` whose requests go to `api.handle` in-process."""
        c = self.credentials(partner)
        return LenderClient("", c.partner_token, c.aes_key, c.aes_iv, send=self._send)

    def clock_for(self, partner: str) -> Clock:
        return Clock(self, partner)

    def new_partner(self, **fields: Any) -> Credentials:
        """POST /sandbox/partners in-process: token/key/iv generated unless given. In-process
        every callback goes to `self.callbacks`, whatever the partner's callback_url."""
        view = control.create_partner(self.lender, {"callback_url": IN_PROCESS_CALLBACK_URL,
                                                    **fields})
        return self._remember(view)

    def update_partner(self, partner: str = "demo", **fields: Any) -> dict:
        """PATCH a partner (callbacks_paused, chaos, encrypt_callbacks, aes_key...)."""
        view = control.update_partner(self.lender, partner, fields)
        self._remember(self._partner_view(partner))
        self.deliver_callbacks()  # resuming releases what was held
        return view

    # ---- control operations ----

    def transition(self, order_no: str, trigger: str, partner: str = "demo",
                   **params: Any) -> dict:
        """Force a legal trigger (approve, reject, disburse, fail_payout, cancel, overdue...)."""
        return self._settled(control.transition(self.lender, partner, order_no, trigger, params))

    def pay(self, repay_code: str, amount: int | None = None) -> dict:
        """The borrower pays a code from 15 get-repay-detail."""
        return self._settled(control.pay(self.lender, repay_code, amount))

    def order(self, order_no: str, partner: str = "demo") -> dict:
        """Order, timeline, callbacks, payments and pending events."""
        return control.order_detail(self.lender, partner, order_no)

    def orders(self, partner: str | None = None, status: int | None = None,
               limit: int = 200) -> list[dict]:
        """Order summaries, newest first (every partner's unless `partner`)."""
        return control.list_orders(self.lender, partner, status, limit)

    def sample_order(self, seed: str | None = None, **kw: Any) -> "SampleOrder":
        """`sample_order` with this sandbox's scenario rules and clock date; without a seed
        each call gives the next borrower (the same sequence in every fresh sandbox)."""
        seed = seed if seed is not None else f"borrower-{next(self._orders)}"
        kw.setdefault("today", self.clock.now.date())
        return sample_order(seed, rules=self.settings.data.rules, **kw)

    def wait_for(self, order_no: str, status: int | None = None, *, partner: str = "demo",
                 callback: str | None = None, timeout: float | None = None) -> dict:
        """Check that the order is in `status` (and/or its callbacks are acknowledged).

        In-process nothing moves by itself, so this never sleeps (`timeout` is ignored): it
        returns the order summary, or raises WaitError saying what would move the order.
        """
        _check_wait_args(status, callback)
        detail = self.order(order_no, partner)
        if _reached(detail, status, callback):
            return {**{k: detail[k] for k in SUMMARY_KEYS},
                    "scenario": detail["scenario"].get("rule"), "reached": True}
        now = self.clock_for(partner).state()["now_unix"]
        raise WaitError(_why_not(detail, status, callback, now, self.lender.tz))

    def deliver_callbacks(self) -> int:
        """Deliver every callback due now (operations already do); the attempts made."""
        self._enqueued = False
        return deliver_now(self.lender, self.callbacks)

    # ---- lifetime ----

    def reset(self) -> None:
        """Back to the template's state: a new store copy; the sink forgets and recovers."""
        old, self.lender.store = self.lender.store, self._watched(self.template.copy_store())
        old.dispose()
        self._credentials = dict(self.template.credentials)
        self._enqueued = False
        self._orders = itertools.count(1)
        self.callbacks.clear()
        self.callbacks.recover()

    def close(self) -> None:
        self.lender.store.dispose()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals: the in-process transport and callback delivery ----

    def _send(self, path: str, body: bytes) -> tuple[int, bytes]:
        if path not in api.BY_PATH:  # over HTTP the router answers this (app._http_error)
            doc = render(path, BY_NAME["bad_envelope"].code, f"unknown path {path}", {})
            return 404, json.dumps(doc).encode()
        reply = api.handle(self.lender, path, body)
        self._settled(None)
        return reply.http_status, json.dumps(reply.body, ensure_ascii=False).encode()

    def _watched(self, store: Store) -> Store:
        # Delivering costs an event loop and a query: only do it when a transaction really
        # enqueued a callback (the outbox hook fires after every request).
        event.listen(store.engine, "before_cursor_execute", self._on_statement)
        return store

    def _on_statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO callbacks"):
            self._enqueued = True

    def _settled(self, result: Any) -> Any:
        if self._enqueued:
            self.deliver_callbacks()
        return result


# ---------------------------------------------------------------------------- waiting


def _check_wait_args(status: int | None, callback: str | None) -> None:
    if status is None and callback is None:
        raise ValueError("wait for a status, callback='acknowledged', or both")
    if status is not None and status not in {int(s) for s in Status}:
        raise ValueError(f"status {status!r} is not an order status "
                         f"({', '.join(str(int(s)) for s in Status)})")
    if callback not in (None, "acknowledged"):
        raise ValueError(f"callback must be 'acknowledged', not {callback!r}")


def _reached(detail: dict, status: int | None, callback: str | None) -> bool:
    status_ok = status is None or detail["status"] == status
    acked = callback is None or all(c["state"] == "delivered" for c in detail["callbacks"])
    return status_ok and acked


def _describe(status: int) -> str:
    return f"{status} ({Status(status).name.lower()})"


def _why_not(detail: dict, status: int | None, callback: str | None, now: float,
             tz: tzinfo) -> str:
    order = f"order {detail['order_no']} is {_describe(detail['status'])}"
    if status is not None and detail["status"] != status:
        if detail["status"] in FINAL:
            return f"{order}, a final status: it will never reach {_describe(status)}"
        return f"{order}, not {_describe(status)}. {_next_step(detail, now, tz)}"
    waiting = [c for c in detail["callbacks"] if c["state"] != "delivered"]
    states = ", ".join(f"{c['path']} {c['state']} after {c['attempts']} attempt(s)"
                       for c in waiting)
    return (f"{order}; {len(waiting)} callback(s) not acknowledged: {states}. The receiver "
            f"refused them (fail_next?) or the partner's callbacks are paused")


def _next_step(detail: dict, now: float, tz: tzinfo) -> str:
    pending = detail["pending_events"]
    moves = ", ".join(detail["allowed_triggers"]) or "none"
    if not pending:
        return (f"No due event is pending: the order waits for an API call or a forced "
                f"transition (allowed triggers: {moves}).")
    event = pending[0]
    due = datetime.strptime(event["due_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz).timestamp()
    return (f"An in-process sandbox's clock moves only when told: the next due event is "
            f"{event['kind']!r} at {event['due_at']} — call "
            f"clock.advance({_duration_args(due - now)}) "
            f"(or force a transition: {moves}).")


def _duration_args(seconds: float) -> str:
    """120 -> 'minutes=2', 90 -> 'seconds=90': the advance() call a person would type."""
    whole = max(0, math.ceil(seconds))
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if whole and whole % size == 0:
            return f"{unit}={whole // size}"
    return f"seconds={whole}"


# ---------------------------------------------------------------------------- payloads


@dataclass(frozen=True)
class SampleOrder:
    """A borrower and an order, with a valid payload for each endpoint that needs one."""
    order_no: str
    person: Person
    product_id: str = "1001"
    amount: int = 1_000_000
    term: int = 14
    term_unit: int = 1
    scenario: str | None = None

    def precheck(self) -> dict:
        """02 get-loan-precheck (also 03 get-loan-amount)."""
        p = self.person
        return {"product_id": self.product_id, "user_mobile": p.mobile, "user_idcard": p.nik,
                "user_name": p.name}

    def interest(self, amount: int | None = None, term: int | None = None) -> dict:
        """04 get-loan-interest."""
        return {"product_id": self.product_id, "user_mobile": self.person.mobile,
                "user_idcard": self.person.nik, "application_amount": amount or self.amount,
                "application_term": term or self.term, "term_unit": self.term_unit}

    def basic_info(self) -> dict:
        """05 push-basic-info: creates the order (80)."""
        p = self.person
        return {
            "product_id": self.product_id, "device_ip": "114.124.10.20", "is_reloan": 0,
            "basic_info": {
                "user_type": 1, "education": p.education, "loan_remark": 2,
                "idcard_image_front": f"https://cdn.example.id/ktp/{self.order_no}-front.jpg",
                "idcard_image_hand": f"https://cdn.example.id/ktp/{self.order_no}-hand.jpg",
                "month_income": int(p.month_income), "religion": p.religion},
            "order_info": {
                "order_no": self.order_no, "application_amount": self.amount,
                "application_term": self.term, "term_unit": self.term_unit,
                "product_id": self.product_id, "user_name": p.name, "user_mobile": p.mobile,
                "user_idcard": p.nik},
        }

    def supplement_info(self) -> dict:
        """06 push-supplement-info: KYC details; review starts (90)."""
        p = self.person
        return {
            "product_id": self.product_id, "device_ip": "114.124.10.20",
            "supplement_info": {
                "is_charge": 2, "birthday": p.birth_date.isoformat(),
                "marital_status": p.marital_status, "sex": p.sex,
                "face_photo_image": [f"https://cdn.example.id/face/{self.order_no}.jpg"],
                "pass_face_photo": 1, "same_person": 1, "confidence_score": "92.5",
                "work_type": 2, "company": p.company,
                "area": {"province": p.province, "city": p.city, "district": p.district,
                         "village": "Sukamaju", "detail_address": "Jl. Merdeka No. 10"},
                "emergs": [{"emergs_name": e.emergs_name, "emergs_phone": e.emergs_phone,
                            "emergs_relation": e.emergs_relation} for e in p.emergs],
                "device_info": {"os": "android", "model": "Redmi Note 12"}},
            "order_info": {"order_no": self.order_no, "application_amount": self.amount,
                           "application_term": self.term, "term_unit": self.term_unit,
                           "user_mobile": p.mobile},
        }

    def bind_bank(self) -> dict:
        """08 push-bind-bank: the person's own account."""
        p = self.person
        return {**self.order(), "bank_card": p.bank_account, "user_name": p.name,
                "bank_code": p.bank_code}

    def order(self, **extra: Any) -> dict:
        """`order_no` + `product_id`: 09, 10, 12, 13, 14, 16, 18 (and 17 with delay_term)."""
        return {"order_no": self.order_no, "product_id": self.product_id, **extra}

    def confirm(self, amount: int | None = None, term: int | None = None) -> dict:
        """11 push-order-confirm (pass the approved amount when it was reduced)."""
        return {**self.order(), "application_amount": amount or self.amount,
                "application_term": term or self.term, "term_unit": self.term_unit}

    def repay_detail(self, repay_type: int = 1, *, method_code: str = "1001",
                     repay_method: int = 1, delay_term: int | None = None) -> dict:
        """15 get-repay-detail: repay_type 1 full repayment, 2 extension fee."""
        extra = {} if delay_term is None else {"delay_term": delay_term}
        return self.order(repay_method=repay_method, method_code=method_code,
                          repay_type=repay_type, **extra)


def sample_order(seed: str = "borrower", *, scenario: str | None = "approve",
                 suffix: str | None = None, product_id: str = "1001", amount: int = 1_000_000,
                 term: int = 14, term_unit: int = 1, order_no: str | None = None,
                 today: date | None = None, rules: list[ScenarioRule] | None = None
                 ) -> SampleOrder:
    """A realistic borrower (`people.make_person(seed)`) and an order; the same seed gives
    the same order.

    `scenario` names a rule of fixtures/scenarios.toml ("approve", "reject_review",
    "overdue", ...) whose magic mobile suffix the borrower gets; `suffix` sets the suffix
    directly; `scenario=None` picks a mobile no rule matches (the [default] odds).
    `today` dates the person's age (default: the default template's clock date).
    """
    rules = rules if rules is not None else default_template().settings.data.rules
    today = today or default_template().today()
    person = make_person(seed, today=today)
    person = replace(person, mobile=_scenario_mobile(person.mobile, scenario, suffix, rules))
    return SampleOrder(order_no or _order_no(seed), person, product_id, amount, term, term_unit,
                       scenario)


def _order_no(seed: str) -> str:
    return "ORD" + hashlib.sha256(seed.encode()).hexdigest()[:17].upper()


def _scenario_mobile(mobile: str, scenario: str | None, suffix: str | None,
                     rules: list[ScenarioRule]) -> str:
    if suffix is None and scenario is not None:
        by_name = {r.name: r.mobile_suffix for r in rules}
        if scenario not in by_name:
            raise ValueError(f"unknown scenario {scenario!r}; scenarios: {', '.join(by_name)}")
        suffix = by_name[scenario]
    if suffix is not None:
        return mobile[: -len(suffix)] + suffix
    for step in range(1000):  # no rule may match: the order follows the [default] odds
        candidate = mobile[:-3] + f"{(int(mobile[-3:]) + step) % 1000:03d}"
        if not any(candidate.endswith(r.mobile_suffix) for r in rules):
            return candidate
    raise ValueError("every mobile suffix matches a scenario rule: pass suffix= or scenario=")


# ---------------------------------------------------------------------------- server


class ServerClock:
    """A partner's clock on a running server (the control API)."""

    def __init__(self, control_api: SandboxControl, partner: str):
        self._control, self.partner = control_api, partner

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.state()["now_unix"], WIB)

    def state(self) -> dict:
        return self._control.clock(self.partner)

    def advance(self, days: float = 0, hours: float = 0, minutes: float = 0,
                seconds: float = 0) -> dict:
        """Move forward; due events have fired when this returns, their callbacks are on
        their way (`callbacks.wait_for(...)` or `wait_for(..., callback="acknowledged")`)."""
        return self._control.advance_clock(_seconds(days, hours, minutes, seconds), self.partner)

    def set(self, when: datetime | str | float) -> dict:
        """Move to `when` (datetime, naive = WIB; ISO 8601; epoch seconds); never back."""
        return self._control.set_clock(iso(_instant(when)), self.partner)


class ServerSandbox(_Partners):
    """The real server (`LiveServer`: `lender-sandbox serve` on a free loopback port) and a
    real callback receiver (`CallbackSink`) that every partner's callbacks go to.

    The same surface as `Sandbox`, over HTTP: `.client()`, `.clock`, `.callbacks`,
    `.journal`, `.transition/.pay/.order/.orders/.wait_for/.new_partner/.sample_order`,
    plus `.base_url`, `.partner` (credentials) and `.control` (`SandboxControl`).
    `config`, `overrides` and the other keywords go to `LiveServer`.
    """

    def __init__(self, config: str | Path | None = None,
                 overrides: dict[str, dict[str, Any]] | None = None, **live: Any):
        self.server = LiveServer(overrides, config=config, **live)
        self.callbacks = CallbackSink()
        self._http = httpx.Client(timeout=30.0, trust_env=False)
        token = self.server.settings["server"].get("admin_token", "")
        self.control = SandboxControl(self.server.base_url, admin_token=token, http=self._http)
        self.clock = ServerClock(self.control, "demo")
        self.journal = Journal(
            lambda path, partner: self.control.journal(partner, path, limit=journal.MAX_LIMIT),
            lambda partner: self.control.clear_journal(partner))
        self._credentials: dict[str, Credentials] = {}
        self._orders = itertools.count(1)
        self._rules: list[ScenarioRule] | None = None

    # ---- lifetime ----

    def start(self) -> "ServerSandbox":
        self.callbacks.start()
        self.server.start()
        self._route_callbacks()
        return self

    def reset(self) -> None:
        """POST /sandbox/reset (orders, history, partners back to the fixtures), callbacks
        routed to the sink again, the sink emptied and answering normally."""
        self.control.reset()
        self._credentials.clear()
        self._orders = itertools.count(1)
        self._route_callbacks()
        self.callbacks.recover()
        self.callbacks.clear()

    def _route_callbacks(self) -> None:
        for view in self.control.partners():
            token = view["partner_token"]
            self._remember(self._partner_view(token))
            self.control.update_partner(token, callback_url=self.callbacks.url)

    def close(self) -> None:
        try:
            self.server.close()
        finally:
            self.callbacks.stop()
            self._http.close()

    def __enter__(self) -> "ServerSandbox":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- partners and clients ----

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def _partner_view(self, partner: str) -> dict:
        return self.control.partner(partner, secrets=True)

    def client(self, partner: str = "demo") -> LenderClient:
        """A `LenderClient` for `partner` over real HTTP."""
        c = self.credentials(partner)
        return LenderClient(self.base_url, c.partner_token, c.aes_key, c.aes_iv, http=self._http)

    def clock_for(self, partner: str) -> ServerClock:
        return ServerClock(self.control, partner)

    def new_partner(self, **fields: Any) -> Credentials:
        """POST /sandbox/partners; its callbacks go to `self.callbacks` unless told otherwise."""
        return self._remember(self.control.create_partner(
            **{"callback_url": self.callbacks.url, **fields}))

    def update_partner(self, partner: str = "demo", **fields: Any) -> dict:
        view = self.control.update_partner(partner, **fields)
        self._remember(self._partner_view(partner))
        return view

    # ---- control operations ----

    def transition(self, order_no: str, trigger: str, partner: str = "demo",
                   **params: Any) -> dict:
        return self.control.transition(order_no, trigger, partner, **params)

    def pay(self, repay_code: str, amount: int | None = None) -> dict:
        return self.control.pay(repay_code, amount)

    def order(self, order_no: str, partner: str = "demo") -> dict:
        return self.control.order(order_no, partner)

    def orders(self, partner: str | None = None, status: int | None = None,
               limit: int = 200) -> list[dict]:
        return self.control.orders(partner, status, limit)

    def sample_order(self, seed: str | None = None, **kw: Any) -> SampleOrder:
        """`sample_order` with the server's scenario rules and the demo clock's date."""
        seed = seed if seed is not None else f"borrower-{next(self._orders)}"
        kw.setdefault("today", self.clock.now.date())
        if self._rules is None:
            self._rules = load_fixtures(Path(self.server.settings["fixtures"]["dir"])).rules
        return sample_order(seed, rules=self._rules, **kw)

    def wait_for(self, order_no: str, status: int | None = None, *, partner: str = "demo",
                 callback: str | None = None, timeout: float = 10.0) -> dict:
        """Long-poll (GET /sandbox/orders/{order_no}/wait) until the order is in `status`
        and/or its callbacks so far are acknowledged; WaitError after `timeout` seconds."""
        _check_wait_args(status, callback)
        result = self.control.wait(order_no, partner=partner, status=status, callback=callback,
                                   timeout=timeout)
        if not result["reached"]:
            wanted = " and ".join(filter(None, [status and _describe(status),
                                                callback and "callbacks acknowledged"]))
            raise WaitError(f"order {order_no} is {_describe(result['status'])} after waiting "
                            f"up to {timeout}s for {wanted}; callbacks: "
                            f"{self.order(order_no, partner)['callbacks']}")
        return result
