"""`ServerSandbox`: the real server (`LiveServer`) and a real callback receiver
(`CallbackSink`), with the surface of the in-process `Sandbox` over HTTP."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from ..core.clock import WIB, iso
from ..core.conformance import Report
from ..core.samples import SampleOrder
from ..core.scenarios import ScenarioRule
from ..services import journal
from ..services.config import fixtures_folder, load_fixtures
from .client import LenderClient, SandboxControl
from .journal import Journal
from .liveserver import LiveServer
from .sandbox import (
    Credentials,
    WaitError,
    _check_wait_args,
    _describe,
    _instant,
    _Partners,
    _seconds,
    sample_order,
)
from .sink import CallbackSink

__all__ = ["ServerClock", "ServerSandbox"]


class ServerClock:
    """A partner's clock on a running server (the control API)."""

    def __init__(self, control_api: SandboxControl, partner: str):
        self._control, self.partner = control_api, partner

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.state()["now_unix"], WIB)

    def state(self) -> dict:
        return self._control.clock(self.partner)

    def advance(
        self, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0
    ) -> dict:
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

    def __init__(
        self,
        config: str | Path | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
        **live: Any,
    ):
        self.server = LiveServer(overrides, config=config, **live)
        self.callbacks: CallbackSink = CallbackSink()
        self._http = httpx.Client(timeout=30.0, trust_env=False)
        token = self.server.settings["server"].get("admin_token", "")
        self.control = SandboxControl(self.server.base_url, token=token, http=self._http)
        self.clock = ServerClock(self.control, "demo")
        self.journal = Journal(
            lambda path, partner: self.control.journal(partner, path, limit=journal.MAX_LIMIT),
            lambda partner: self.control.clear_journal(partner),
        )
        self._credentials: dict[str, Credentials] = {}
        self._orders = itertools.count(1)
        self._rules: list[ScenarioRule] | None = None

    # ---- lifetime ----

    def start(self) -> ServerSandbox:
        self.callbacks.start()
        self.server.start()
        self._route_callbacks()
        return self

    def reset(self) -> None:
        """POST /sandbox/reset (orders, history, partners back to the fixtures), callbacks
        routed to the sink again, the sink emptied and answering normally."""
        self.control.reset_all()
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

    def __enter__(self) -> ServerSandbox:
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
        return self._remember(
            self.control.create_partner(**{"callback_url": self.callbacks.url, **fields})
        )

    def update_partner(self, partner: str = "demo", **fields: Any) -> dict:
        view = self.control.update_partner(partner, **fields)
        self._remember(self._partner_view(partner))
        return view

    # ---- control operations ----

    def transition(self, order_no: str, trigger: str, partner: str = "demo", **params: Any) -> dict:
        return self.control.transition(order_no, trigger, partner, **params)

    def pay(self, repay_code: str, amount: int | None = None) -> dict:
        return self.control.pay(repay_code, amount)

    def order(self, order_no: str, partner: str = "demo") -> dict:
        return self.control.order(order_no, partner)

    def orders(
        self, partner: str | None = None, status: int | None = None, limit: int = 200
    ) -> list[dict]:
        return self.control.orders(partner, status, limit)

    def conformance(self, partner: str = "demo") -> Report:
        """The acceptance report (docs/conformance.md) of `partner`'s current run."""
        return Report(self.control.conformance(partner), base_url=self.base_url)

    def reset_conformance(self, partner: str = "demo") -> dict:
        """Start a new acceptance run; orders, journal and callbacks are kept."""
        return self.control.reset_conformance(partner)

    def sample_order(self, seed: str | None = None, **kw: Any) -> SampleOrder:
        """`sample_order` with the server's scenario rules and the demo clock's date."""
        seed = seed if seed is not None else f"borrower-{next(self._orders)}"
        kw.setdefault("today", self.clock.now.date())
        if self._rules is None:
            given = self.server.settings.get("fixtures", {}).get("dir")
            self._rules = load_fixtures(fixtures_folder(given)).rules
        return sample_order(seed, rules=self._rules, **kw)

    def wait_for(
        self,
        order_no: str,
        status: int | None = None,
        *,
        partner: str = "demo",
        callback: str | None = None,
        timeout: float = 10.0,
    ) -> dict:
        """Long-poll (GET /sandbox/orders/{order_no}/wait) until the order is in `status`
        and/or its callbacks so far are acknowledged; WaitError after `timeout` seconds."""
        _check_wait_args(status, callback)
        result = self.control.wait(
            order_no, partner=partner, status=status, callback=callback, timeout=timeout
        )
        if not result["reached"]:
            wanted = " and ".join(
                filter(
                    None,
                    [
                        _describe(status) if status else None,
                        "callbacks acknowledged" if callback else None,
                    ],
                )
            )
            raise WaitError(
                f"order {order_no} is {_describe(result['status'])} after waiting "
                f"up to {timeout}s for {wanted}; callbacks: "
                f"{self.order(order_no, partner)['callbacks']}"
            )
        return result
