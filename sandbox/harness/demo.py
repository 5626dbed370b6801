"""`lender-sandbox demo`: a whole aggregator flow played against a sandbox, step by step.

Precheck to settlement with an extension on the way, then a rejected borrower who gets
11007 when they try again. It runs in process (a fresh `Sandbox` of the test harness, manual
clock, no network) or against a running sandbox (`--url`: `LenderClient` and
`SandboxControl` over HTTP, on a partner of its own so no one else's clock moves, its
callbacks sent to a `CallbackSink` the demo runs when the sandbox is on this machine). Every
step prints its request, the decrypted answer and the callbacks it caused; the first
unexpected answer stops the run with a non-zero exit. Payloads come from `core.samples`,
like everywhere else.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import click
import httpx

from ..core.addresses import is_loopback
from ..core.clock import WIB, parse_instant
from ..core.crypto import CryptoError
from ..core.errors import SandboxError
from ..core.samples import SampleOrder, sample_order
from .client import BadResponse, ControlAPIError, LenderClient, SandboxControl
from .sandbox import Sandbox
from .sink import CallbackSink, SinkTimeout

PRODUCT = "1001"  # the demo product: days, with extensions
AMOUNT, TERM, UNIT = 1_000_000, 14, 1
DELAY_TERM = 7
APPROVE, REJECT = "001", "003"  # fixtures/scenarios.toml mobile suffixes


class DemoFailure(Exception):
    """A step got an answer the flow did not expect."""


# ---- where the requests go ----


class Transport(Protocol):
    def call(self, path: str, payload: dict) -> dict: ...
    def clock(self) -> dict: ...
    def advance(self, seconds: float) -> dict: ...
    def pay(self, repay_code: str) -> dict: ...
    def status(self, order_no: str) -> int: ...
    def callbacks(self, orders: list[str]) -> list[dict]: ...  # {"path", "body", "state"}
    def close(self) -> None: ...


def _call(client: LenderClient, path: str, payload: dict) -> dict:
    try:
        return client.call(path, payload)
    except CryptoError as e:
        raise DemoFailure(f"the answer's data does not decrypt: {e}") from None
    except BadResponse as e:
        raise DemoFailure(str(e)) from None


class InProcess:
    """A fresh in-process sandbox (`harness.sandbox.Sandbox`, manual clock)."""

    def __init__(self, partner: str, key: str | None, iv: str | None):
        self.sandbox = Sandbox()
        self.token = partner
        try:
            creds = self.sandbox.credentials(partner)
        except SandboxError:  # a partner of its own, as a team would onboard one
            creds = self.sandbox.new_partner(partner_token=partner)
        self.client = LenderClient(
            "", partner, key or creds.aes_key, iv or creds.aes_iv, send=self.sandbox.send
        )

    def call(self, path: str, payload: dict) -> dict:
        return _call(self.client, path, payload)

    def clock(self) -> dict:
        return self.sandbox.clock_for(self.token).state()

    def advance(self, seconds: float) -> dict:
        return self.sandbox.clock_for(self.token).advance(seconds=seconds)

    def pay(self, repay_code: str) -> dict:
        return self.sandbox.pay(repay_code)

    def status(self, order_no: str) -> int:
        return int(self.sandbox.order(order_no, self.token)["status"])

    def callbacks(self, orders: list[str]) -> list[dict]:
        # delivered to the in-process sink before each call returned
        return [
            {"path": r.path, "body": r.body, "state": "delivered" if r.acknowledged else r.outcome}
            for r in self.sandbox.callbacks.records()
            if r.body is not None and r.body.get("order_no") in orders
        ]

    def close(self) -> None:
        self.sandbox.close()


def _state(delivery: dict) -> str:
    """'delivered', 'dead', or 'pending: why' (docs: GET /sandbox/callbacks `waiting`)."""
    why = delivery.get("waiting")
    return f"{delivery['state']}: {why}" if why else delivery["state"]


class Remote:
    """A running sandbox: the lender endpoints (`LenderClient`) and the control API
    (`SandboxControl`) over HTTP; `http` is an injectable httpx.Client."""

    def __init__(
        self,
        url: str,
        partner: str | None,
        key: str | None,
        iv: str | None,
        token: str | None,
        http: Any = None,
    ):
        self.own = http is None
        self.http = http or httpx.Client(timeout=30, trust_env=False)
        self.base = url.rstrip("/")
        self.control = SandboxControl(url, token=token or "", http=self.http)
        self.sink: CallbackSink | None = None
        self.token = ""
        try:
            view = self._own_partner() if partner is None else self._partner(partner)
        except BaseException:
            self.close()
            raise
        self.token = view["partner_token"]
        key, iv = key or view["aes_key"], iv or view["aes_iv"]
        self.client = LenderClient(url, self.token, key, iv, http=self.http)

    def _partner(self, token: str) -> dict:
        return self._control(lambda: self.control.partner(token, secrets=True))

    def _own_partner(self) -> dict:
        """A new partner, so the demo moves no one else's clock; its callbacks come to a sink
        here when the sandbox runs on this machine (from elsewhere it could not reach it)."""
        host = httpx.URL(self.base).host
        if is_loopback(host):
            self.sink = CallbackSink().start()
        view = self._control(
            lambda: self.control.create_partner(
                name="lender-sandbox demo", callback_url=self.sink.url if self.sink else ""
            )
        )
        if self.sink is not None:
            self.sink.add_partner(view["partner_token"], view["aes_key"], view["aes_iv"])
        return view

    def _control(self, op: Callable[[], Any]) -> Any:
        try:
            return op()
        except ControlAPIError as e:
            raise DemoFailure(str(e)) from None
        except httpx.HTTPError as e:
            raise DemoFailure(
                f"{self.base}: {type(e).__name__}: {e} "
                f"(is a sandbox running there? `lender-sandbox serve`)"
            ) from None

    def call(self, path: str, payload: dict) -> dict:
        return self._control(lambda: _call(self.client, path, payload))

    def clock(self) -> dict:
        return self._control(lambda: self.control.clock(self.token))

    def advance(self, seconds: float) -> dict:
        return self._control(lambda: self.control.advance_clock(seconds, self.token))

    def pay(self, repay_code: str) -> dict:
        return self._control(lambda: self.control.pay(repay_code))

    def status(self, order_no: str) -> int:
        return int(self._control(lambda: self.control.order(order_no, self.token))["status"])

    def callbacks(self, orders: list[str]) -> list[dict]:
        """The orders' callbacks as the sink received them (it waits up to 5 s for all the
        sandbox lists); without a sink, or for those still on their way, as the sandbox
        lists them, with their state."""
        found = [
            c
            for no in orders
            for c in self._control(functools.partial(self.control.callbacks, self.token, no))
        ]
        listed = [
            {"path": c["path"], "body": c["body"], "state": _state(c)}
            for c in sorted(found, key=lambda c: c["id"])
        ]
        if self.sink is None:
            return listed
        try:
            self.sink.wait_for_requests(len(listed), timeout=5)
        except SinkTimeout:
            pass
        got = [
            {"path": r.path, "body": r.body, "state": "delivered" if r.acknowledged else r.outcome}
            for r in self.sink.records()
        ]
        return got + listed[len(got) :]

    def close(self) -> None:
        if self.sink is not None:
            if self.token:  # the sink goes away: later callbacks wait instead of failing
                try:
                    self.control.update_partner(self.token, callback_url="")
                except (ControlAPIError, httpx.HTTPError):
                    pass
            self.sink.stop()
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

    def callbacks(self, caused: list[dict]) -> None:
        """The callbacks a step caused, as the lender sent them (decrypted)."""
        for c in caused:
            state = "" if c["state"] == "delivered" else f"  ({c['state']})"
            path = c["path"].lstrip("/")
            click.echo(
                click.style(f"  callback {path} ", fg="yellow") + self.dump(c["body"]) + state
            )


# ---- the flow ----

Check = Callable[[dict], str]


def expect_code(code: int) -> Check:
    def check(doc: dict) -> str:
        if doc.get("code") != code:
            raise DemoFailure(
                f"expected code {code}, got {doc.get('code')}: {doc.get('message', doc.get('msg'))}"
            )
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
    good: SampleOrder = field(init=False)
    bad: SampleOrder = field(init=False)
    approved: int = AMOUNT
    method_code: str = "1001"
    codes: dict[str, str] = field(default_factory=dict)  # repay codes handed out by 15
    callbacks_seen: int = 0  # the callbacks printed so far

    def __post_init__(self) -> None:
        tag = hashlib.sha1(self.seed.encode()).hexdigest()[:10].upper()
        self.good = self._order(f"demo-{self.seed}-a", APPROVE, f"DEMO-{tag}-A")
        self.bad = self._order(f"demo-{self.seed}-b", REJECT, f"DEMO-{tag}-B")

    def _order(self, seed: str, suffix: str, order_no: str) -> SampleOrder:
        return sample_order(
            seed,
            today=self.today,
            rules=[],
            suffix=suffix,
            order_no=order_no,
            product_id=PRODUCT,
            amount=AMOUNT,
            term=TERM,
            term_unit=UNIT,
        )

    @property
    def order_no(self) -> str:
        return self.good.order_no

    @property
    def bad_order(self) -> str:
        return self.bad.order_no

    def step(self, title: str, run: Callable[[], tuple[Any, Any, str]]) -> None:
        self.out.start(title)
        try:
            sent, got, note = run()
        except DemoFailure as e:
            self.out.failed(str(e))
            raise
        self.out.ok(sent, got, note)
        sent_so_far = self.t.callbacks([self.order_no, self.bad_order])
        self.out.callbacks(sent_so_far[self.callbacks_seen :])
        self.callbacks_seen = len(sent_so_far)

    def api(
        self,
        path: str,
        payload: dict,
        check: Check | None = None,
        keep: Callable[[dict], None] | None = None,
    ) -> Callable[[], tuple[Any, Any, str]]:
        def run() -> tuple[Any, Any, str]:
            doc = self.t.call(path, payload)
            note = (check or expect_code(0))(doc)
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
        payloads = g.payloads()
        return [
            ("get-loan-precheck", self.api("/get-loan-precheck", g.precheck())),
            ("get-loan-amount", self.api("/get-loan-amount", payloads["/get-loan-amount"])),
            ("get-loan-interest (trial)", self.api("/get-loan-interest", g.interest())),
            ("push-basic-info", self.api("/push-basic-info", g.basic_info())),
            ("push-supplement-info", self.api("/push-supplement-info", g.supplement_info())),
            ("advance clock: review", self.advance(no, leaves=90)),
            (
                "get-approval-result",
                self.api(
                    "/get-approval-result", g.order(), expect_status(100), self._keep_approval
                ),
            ),
            (
                "get-bank-list (banks)",
                self.api("/get-bank-list", {"product_id": PRODUCT, "action_type": 1}),
            ),
            ("push-bind-bank", self.api("/push-bind-bank", g.bind_bank())),
            ("get-loan-contract", self.api("/get-loan-contract", g.order())),
            (
                "push-order-confirm",
                lambda: self.api("/push-order-confirm", g.confirm(self.approved))(),
            ),
            ("advance clock: payout", self.advance(no, leaves=100)),
            ("get-order-status", self.api("/get-order-status", g.order(), expect_status(170))),
            ("get-repay-plan", self.api("/get-repay-plan", g.order())),
            (
                "get-bank-list (repayment methods)",
                self.api(
                    "/get-bank-list",
                    {"product_id": PRODUCT, "action_type": 2},
                    keep=self._keep_method,
                ),
            ),
            (
                "get-delay-interest (extension trial)",
                self.api("/get-delay-interest", g.order(delay_term=DELAY_TERM)),
            ),
            (
                "get-repay-detail (extension fee)",
                lambda: self.api(
                    "/get-repay-detail",
                    g.repay_detail(2, method_code=self.method_code, delay_term=DELAY_TERM),
                    keep=self._keep_code("extension"),
                )(),
            ),
            ("borrower pays the extension fee", self.pay("extension")),
            ("get-delay-list", self.api("/get-delay-list", g.order())),
            (
                "get-repay-detail (full repayment)",
                lambda: self.api(
                    "/get-repay-detail",
                    g.repay_detail(1, method_code=self.method_code),
                    keep=self._keep_code("full"),
                )(),
            ),
            ("borrower pays in full", self.pay("full")),
            (
                "get-order-status: settled",
                self.api("/get-order-status", g.order(), expect_status(200)),
            ),
            *self.rejection_steps(),
        ]

    def rejection_steps(self) -> list[tuple[str, Callable[[], tuple[Any, Any, str]]]]:
        b, no = self.bad, self.bad_order
        return [
            ("push-basic-info (mobile ...003)", self.api("/push-basic-info", b.basic_info())),
            (
                "push-supplement-info (mobile ...003)",
                self.api("/push-supplement-info", b.supplement_info()),
            ),
            ("advance clock: review", self.advance(no, leaves=90)),
            (
                "get-approval-result: rejected",
                self.api("/get-approval-result", b.order(), expect_status(110)),
            ),
            (
                "get-loan-precheck again: 11007",
                self.api("/get-loan-precheck", b.precheck(), expect_code(11007)),
            ),
        ]

    def _keep_approval(self, data: dict) -> None:
        self.approved = int(data["approval_amount"])

    def _keep_method(self, data: dict) -> None:
        self.method_code = next(
            m["method_code"] for m in data["banklist"] if m["repay_method"] == 1
        )

    def _keep_code(self, kind: str) -> Callable[[dict], None]:
        def keep(data: dict) -> None:
            self.codes[kind] = data["repay_code"]

        return keep


def _today(t: Transport) -> date:
    return datetime.fromtimestamp(t.clock()["now_unix"], WIB).date()


def _open(
    url: str | None,
    partner: str | None,
    key: str | None,
    iv: str | None,
    token: str | None,
    http: Any,
) -> Remote | InProcess:
    if url:
        return Remote(url, partner, key, iv, token, http)
    return InProcess(partner or "demo", key, iv)


def run(
    *,
    url: str | None = None,
    partner: str | None = None,
    key: str | None = None,
    iv: str | None = None,
    token: str | None = None,
    pretty: bool = False,
    seed: str | None = None,
    http: Any = None,
) -> int:
    """Play the flow; 0 when every step answered as expected, 1 otherwise.

    `partner`: whose (default: `demo` in process; with `url` a new partner of its own).
    `http`: an httpx.Client to reach `url` with (default: a new one)."""
    t: Remote | InProcess | None = None
    try:
        t = _open(url, partner, key, iv, token, http)
        flow = Flow(t, Printer(0, pretty), seed or secrets.token_hex(4), _today(t))
    except DemoFailure as e:
        if t is not None:
            t.close()
        click.echo(click.style(f"cannot start: {e}", fg="red"), err=True)
        return 1
    steps = flow.steps()
    flow.out.total = len(steps)
    flow.callbacks_seen = len(t.callbacks([flow.order_no, flow.bad_order]))  # from a rerun
    whose = "a new partner of its own, " if url and partner is None else "partner "
    click.echo(
        f"Lender Sandbox demo: {whose}{t.token}, on "
        f"{url or 'a fresh in-process sandbox (manual clock)'}\n"
    )
    try:
        for title, step in steps:
            flow.step(title, step)
    except DemoFailure:
        return 1
    finally:
        t.close()
    click.echo(
        click.style(
            f"\nDone: order {flow.order_no} settled (status 200); order "
            f"{flow.bad_order} rejected (110) and its borrower refused with "
            f"11007 on a new precheck.",
            fg="green",
        )
    )
    return 0
