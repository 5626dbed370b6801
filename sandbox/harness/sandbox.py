"""The test harness, usable with or without pytest (the pytest plugin only wraps it).

It owns:
- `Template`: settings parsed once and a seeded in-memory store, built once per session and
  copied per test with the SQLite backup API (`Store.copy`);
- `Sandbox`: a fresh in-process sandbox — its own store, manual clocks, callbacks delivered
  to a `MemorySink` before each call returns, no network; requests go through `pipeline.handle`,
  the function the HTTP layer calls, so behaviour is the same as over HTTP; `intercept()` and
  `callbacks.deliver_to()` connect the aggregator's own HTTP client and app to it
  (harness/intercept.py, harness/delivery.py);
- `ServerSandbox`: the real server (`LiveServer`) and a real callback receiver
  (`CallbackSink`), with the same surface over HTTP;
- `sample_order`: `core.samples.sample_order` with this harness's defaults.

`harness.plugin` (`sandbox.pytest_plugin`) only wraps these in fixtures.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from ..core import edge, samples
from ..core.clock import WIB, parse_instant
from ..core.conformance import Report
from ..core.lifecycle import FINAL, Status
from ..core.samples import SampleOrder
from ..core.scenarios import ScenarioRule
from ..core.settings import Settings
from ..services import conformance, control, journal, payments, pipeline
from ..services.config import DEFAULT_CONFIG, load_settings
from ..services.lender import Lender, create_lender
from ..services.outbox import flush_until_idle
from .client import LenderClient
from .delivery import deliver_blocking
from .intercept import Interception, SandboxTransport
from .journal import Journal, JournalRecord
from .liveserver import merge_overrides
from .sink import MemorySink

__all__ = [
    "Clock",
    "Credentials",
    "Journal",
    "JournalRecord",
    "SampleOrder",
    "Sandbox",
    "Template",
    "WaitError",
    "default_template",
    "sample_order",
]

# Callbacks of an in-process sandbox go to this URL, which only the MemorySink "serves".
IN_PROCESS_CALLBACK_URL = "http://callbacks.in-process.invalid"

# What makes a sandbox a test sandbox: in memory, manual clocks, callbacks retried at once.
TEST_OVERRIDES: dict[str, dict[str, Any]] = {
    "database": {"url": "sqlite://"},
    "clock": {"mode": "manual"},
    "callbacks": {"first_delay": 0, "max_delay": 0, "jitter": 0, "timeout": 5},
}

SUMMARY_KEYS = (
    "order_no",
    "partner_token",
    "product_id",
    "status",
    "status_name",
    "user_name",
    "user_mobile",
    "application_amount",
    "application_term",
    "term_unit",
    "approved_amount",
    "created_at",
    "updated_at",
    "due_at",
)


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

    def __init__(
        self,
        config: str | Path | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
        *,
        start: datetime | str | float | None = None,
    ):
        self.settings: Settings = load_settings(
            config or DEFAULT_CONFIG, merge_overrides(TEST_OVERRIDES, overrides), env={}
        )
        self.products = self.settings.products()
        self.lender = create_lender(self.settings)  # the settings' store: in memory
        self.start = float(math.floor(self.lender.wall()) if start is None else _instant(start))
        # Callbacks to the in-process sink, every partner's clock at `start`.
        partners = control.point_partners(
            self.lender, callback_url=IN_PROCESS_CALLBACK_URL, clock_at=self.start
        )
        self.credentials = {
            p["partner_token"]: Credentials(p["partner_token"], p["aes_key"], p["aes_iv"])
            for p in partners
        }

    def today(self) -> date:
        """The date (WIB) on the fixture partners' clocks."""
        return datetime.fromtimestamp(self.start, WIB).date()

    def new_lender(self) -> Lender:
        """A lender on a private in-memory copy of the template's store (`Store.copy`)."""
        return Lender(self.settings, self.lender.store.copy(), products=self.products)

    def close(self) -> None:
        self.lender.store.dispose()


@functools.cache
def default_template() -> Template:
    """The template `Sandbox()` uses when given none (built on first use, once per process)."""
    return Template()


# ---------------------------------------------------------------------------- journal


def _in_process_journal(sandbox: Sandbox) -> Journal:
    def source(path: str | None, partner: str | None) -> list[dict[str, Any]]:
        return journal.list_entries(sandbox.lender, partner, path, journal.MAX_LIMIT)

    return Journal(source, lambda partner: journal.clear(sandbox.lender, partner))


# ---------------------------------------------------------------------------- clocks


def _seconds(days: float, hours: float, minutes: float, seconds: float) -> float:
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


class Clock:
    """A partner's manual clock in an in-process sandbox."""

    def __init__(self, sandbox: Sandbox, partner: str):
        self._sb, self.partner = sandbox, partner

    @property
    def now(self) -> datetime:
        """The partner's virtual time (aware, WIB)."""
        return datetime.fromtimestamp(self.state()["now_unix"], WIB)

    def state(self) -> dict:
        """Mode, now, and the next due event (GET .../clock)."""
        return control.get_clock(self._sb.lender, self.partner)

    def advance(
        self, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0
    ) -> dict:
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
    callbacks: Any  # MemorySink in process, CallbackSink for a live server

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
        self._orders = itertools.count(1)
        self.lender = self.template.new_lender()
        self._delivered_up_to = self.lender.enqueued
        self.callbacks: MemorySink = MemorySink(partners=self._credentials)
        self.journal = _in_process_journal(self)
        self.clock = Clock(self, "demo")

    # ---- partners and clients ----

    def _partner_view(self, partner: str) -> dict:
        return control.get_partner(self.lender, partner, secrets=True)

    def client(self, partner: str = "demo") -> LenderClient:
        """A `LenderClient` for `partner` whose requests go to `pipeline.handle` in-process."""
        c = self.credentials(partner)
        return LenderClient("", c.partner_token, c.aes_key, c.aes_iv, send=self.send)

    def clock_for(self, partner: str) -> Clock:
        return Clock(self, partner)

    def intercept(self, *base_urls: str, requests: bool | None = None) -> Interception:
        """`with sandbox.intercept("https://lender.example.id"):` — your code's own httpx
        (sync and async) and requests calls to these base URLs are served by this sandbox;
        other hosts are left alone (harness/intercept.py; the `intercept` extra)."""
        return Interception(self, base_urls, requests=requests)

    def httpx_transport(self, base_url: str = "") -> SandboxTransport:
        """An httpx transport (sync and async) served by this sandbox, for code that takes one:
        `httpx.AsyncClient(base_url=url, transport=sandbox.httpx_transport(url))`."""
        return SandboxTransport(self, base_url)

    def new_partner(self, **fields: Any) -> Credentials:
        """POST /sandbox/partners in-process: token/key/iv generated unless given. In-process
        every callback goes to `self.callbacks`, whatever the partner's callback_url."""
        view = control.create_partner(
            self.lender, {"callback_url": IN_PROCESS_CALLBACK_URL, **fields}
        )
        return self._remember(view)

    def update_partner(self, partner: str = "demo", **fields: Any) -> dict:
        """PATCH a partner (callbacks_paused, chaos, encrypt_callbacks, aes_key...)."""
        view = control.update_partner(self.lender, partner, fields)
        self._remember(self._partner_view(partner))
        self.deliver_callbacks()  # resuming releases what was held
        return view

    # ---- control operations ----

    def transition(self, order_no: str, trigger: str, partner: str = "demo", **params: Any) -> dict:
        """Force a legal trigger (approve, reject, disburse, fail_payout, cancel, overdue...)."""
        return self._settled(
            control.transition(
                self.lender, order_no, {"partner_token": partner, "trigger": trigger, **params}
            )
        )

    def pay(self, repay_code: str, amount: int | None = None) -> dict:
        """The borrower pays a code from 15 get-repay-detail."""
        return self._settled(payments.pay(self.lender, repay_code, amount))

    def order(self, order_no: str, partner: str = "demo") -> dict:
        """Order, timeline, callbacks, payments and pending events."""
        return control.order_detail(self.lender, partner, order_no)

    def orders(
        self, partner: str | None = None, status: int | None = None, limit: int = 200
    ) -> list[dict]:
        """Order summaries, newest first (every partner's unless `partner`)."""
        return control.list_orders(self.lender, partner, status, limit)

    def conformance(self, partner: str = "demo") -> Report:
        """The acceptance report (docs/conformance.md) of `partner`'s current run. In-process
        there are no HTTP headers — envelope.content_type stays untested — except on requests
        your own client sent through `intercept()` or `httpx_transport()`."""
        return Report(conformance.report(self.lender, partner))

    def reset_conformance(self, partner: str = "demo") -> dict:
        """Start a new acceptance run; orders, journal and callbacks are kept."""
        return conformance.reset(self.lender, partner)

    def sample_order(self, seed: str | None = None, **kw: Any) -> SampleOrder:
        """`sample_order` with this sandbox's scenario rules and clock date; without a seed
        each call gives the next borrower (the same sequence in every fresh sandbox)."""
        seed = seed if seed is not None else f"borrower-{next(self._orders)}"
        kw.setdefault("today", self.clock.now.date())
        return sample_order(seed, rules=self.settings.data.rules, **kw)

    def wait_for(
        self,
        order_no: str,
        status: int | None = None,
        *,
        partner: str = "demo",
        callback: str | None = None,
        timeout: float | None = None,
    ) -> dict:
        """Check that the order is in `status` (and/or its callbacks are acknowledged).

        In-process nothing moves by itself, so this never sleeps (`timeout` is ignored): it
        returns the order summary, or raises WaitError saying what would move the order.
        """
        _check_wait_args(status, callback)
        detail = self.order(order_no, partner)
        if _reached(detail, status, callback):
            return {
                **{k: detail[k] for k in SUMMARY_KEYS},
                "scenario": detail["scenario"].get("rule"),
                "reached": True,
            }
        now = self.clock_for(partner).state()["now_unix"]
        raise WaitError(_why_not(detail, status, callback, now, self.lender.tz))

    def deliver_callbacks(self) -> int:
        """Deliver every callback due now (operations already do); the attempts made."""
        self._delivered_up_to = self.lender.enqueued
        return deliver_blocking(self.lender, self.callbacks)

    # ---- lifetime ----

    def reset(self) -> None:
        """Back to the template's state: a new store copy; the sink forgets and recovers."""
        old, self.lender.store = self.lender.store, self.template.lender.store.copy()
        old.dispose()
        self._credentials = dict(self.template.credentials)
        self._delivered_up_to = self.lender.enqueued
        self._orders = itertools.count(1)
        self.callbacks.clear()
        self.callbacks.recover()

    def close(self) -> None:
        self.lender.store.dispose()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals: the in-process transport and callback delivery ----

    def send(self, path: str, body: bytes) -> tuple[int, bytes]:
        """The in-process transport: a lender endpoint's request body in, (HTTP status, body)
        out, through the same pipeline as over HTTP (`LenderClient(send=...)` uses it)."""
        return self.serve("POST", path, body)

    _send = send

    def serve(
        self, method: str, path: str, body: bytes, *, content_type: str | None = None
    ) -> tuple[int, bytes]:
        """One HTTP request as the server answers it, in-process: the edge's own answers
        (404, 405, 413: core/edge.py), else the pipeline; its callbacks delivered first.
        `content_type`: the request's header, when a real client sent it (the journal keeps it
        for the acceptance report)."""
        answer = self._handle(method, path, body, content_type)
        self._settled(None)
        return answer

    async def serve_async(
        self, method: str, path: str, body: bytes, *, content_type: str | None = None
    ) -> tuple[int, bytes]:
        """`serve` for an async client: its callbacks go out on the caller's event loop."""
        answer = self._handle(method, path, body, content_type)  # in memory: no thread hop
        await self._asettled()
        return answer

    def _handle(
        self, method: str, path: str, body: bytes, content_type: str | None
    ) -> tuple[int, bytes]:
        limit = self.settings.server.max_body_bytes
        refused = edge.refusal(path, method, len(body), limit)
        if refused is not None:
            return refused[0], edge.dump(refused[1])
        ctype = None if content_type is None else content_type[:200]  # the journal's column
        reply = pipeline.handle(self.lender, path, body, content_type=ctype)
        return reply.http_status, edge.dump(reply.body)

    def _settled(self, result: Any) -> Any:
        # Delivering costs an event loop and a query: only when a transition enqueued one.
        if self.lender.enqueued != self._delivered_up_to:
            self.deliver_callbacks()
        return result

    async def _asettled(self) -> None:
        """`_settled` for async callers: delivered on the running loop (an async client's)."""
        if self.lender.enqueued != self._delivered_up_to:
            self._delivered_up_to = self.lender.enqueued
            await flush_until_idle(self.lender, self.callbacks)


# ---------------------------------------------------------------------------- waiting


def _check_wait_args(status: int | None, callback: str | None) -> None:
    if status is None and callback is None:
        raise ValueError("wait for a status, callback='acknowledged', or both")
    if status is not None and status not in {int(s) for s in Status}:
        raise ValueError(
            f"status {status!r} is not an order status ({', '.join(str(int(s)) for s in Status)})"
        )
    if callback not in (None, "acknowledged"):
        raise ValueError(f"callback must be 'acknowledged', not {callback!r}")


def _reached(detail: dict, status: int | None, callback: str | None) -> bool:
    status_ok = status is None or detail["status"] == status
    acked = callback is None or all(c["state"] == "delivered" for c in detail["callbacks"])
    return status_ok and acked


def _describe(status: int) -> str:
    return f"{status} ({Status(status).name.lower()})"


def _why_not(detail: dict, status: int | None, callback: str | None, now: float, tz: tzinfo) -> str:
    order = f"order {detail['order_no']} is {_describe(detail['status'])}"
    if status is not None and detail["status"] != status:
        if detail["status"] in FINAL:
            return f"{order}, a final status: it will never reach {_describe(status)}"
        return f"{order}, not {_describe(status)}. {_next_step(detail, now, tz)}"
    waiting = [c for c in detail["callbacks"] if c["state"] != "delivered"]
    states = ", ".join(
        f"{c['path']} {c['state']} after {c['attempts']} attempt(s)" for c in waiting
    )
    return (
        f"{order}; {len(waiting)} callback(s) not acknowledged: {states}. The receiver "
        f"refused them (fail_next?) or the partner's callbacks are paused"
    )


def _next_step(detail: dict, now: float, tz: tzinfo) -> str:
    pending = detail["pending_events"]
    moves = ", ".join(detail["allowed_triggers"]) or "none"
    if not pending:
        return (
            f"No due event is pending: the order waits for an API call or a forced "
            f"transition (allowed triggers: {moves})."
        )
    event = pending[0]
    due = datetime.strptime(event["due_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz).timestamp()
    return (
        f"An in-process sandbox's clock moves only when told: the next due event is "
        f"{event['kind']!r} at {event['due_at']} — call "
        f"clock.advance({_duration_args(due - now)}) "
        f"(or force a transition: {moves})."
    )


def _duration_args(seconds: float) -> str:
    """120 -> 'minutes=2', 90 -> 'seconds=90': the advance() call a person would type."""
    whole = max(0, math.ceil(seconds))
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if whole and whole % size == 0:
            return f"{unit}={whole // size}"
    return f"seconds={whole}"


# ---------------------------------------------------------------------------- payloads


def sample_order(
    seed: str = "borrower",
    *,
    scenario: str | None = "approve",
    suffix: str | None = None,
    product_id: str = "1001",
    amount: int = 1_000_000,
    term: int = 14,
    term_unit: int = 1,
    order_no: str | None = None,
    today: date | None = None,
    rules: list[ScenarioRule] | None = None,
) -> SampleOrder:
    """A realistic borrower and an order (`core.samples.sample_order`), with the default
    template's scenario rules and clock date unless `rules` / `today` are given.

    `scenario` names a rule of fixtures/scenarios.toml ("approve", "reject_review",
    "overdue", ...) whose magic mobile suffix the borrower gets; `suffix` sets the suffix
    directly; `scenario=None` picks a mobile no rule matches (the [default] odds).
    """
    return samples.sample_order(
        seed,
        today=today or default_template().today(),
        rules=rules if rules is not None else default_template().settings.data.rules,
        scenario=scenario,
        suffix=suffix,
        product_id=product_id,
        amount=amount,
        term=term,
        term_unit=term_unit,
        order_no=order_no,
    )
