"""The lender the sandbox plays: settings, store, products and the injected wall clock.

Everything that handles a request or a due event gets a `Lender` and a `now`; nothing reads
settings at import or keeps state in module globals, so a fresh sandbox is one constructor
call (docs/architecture.md "No global state").
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..core import clock as clockmod
from ..core.addresses import CallbackPolicy
from ..core.crypto import Codec
from ..core.errors import ControlError, SandboxError
from ..core.pricing import Product, compliance_warnings
from ..core.settings import Settings
from ..core.tenancy import token_hash
from ..store import Partner, PartnerCredential, ProductRow, Store
from . import locks

_P = Partner.__table__.c
PARTNER_CLOCK = select(
    _P.clock_mode, _P.clock_rate, _P.clock_anchor_wall, _P.clock_anchor_virtual
).where(_P.partner_token == bindparam("token"))


class Keyed(Protocol):
    """A partner as links and codecs need it: its token, key and IV."""

    partner_token: str
    aes_key: str
    aes_iv: str


class Clocked(Protocol):
    """A partner as its clock needs it (a `Partner` row or a `PartnerRec`)."""

    clock_mode: str
    clock_rate: float
    clock_anchor_wall: float
    clock_anchor_virtual: float


@dataclass
class Lender:
    settings: Settings
    store: Store
    wall: Callable[[], float] = time.time
    products: dict[str, Product] = field(default_factory=dict)
    # Called after a transaction that enqueued callbacks commits: wakes the delivery worker.
    on_outbox: Callable[[], None] = lambda: None
    # Callbacks this process enqueued so far: the in-process harness delivers when it grows.
    enqueued: int = 0

    def __post_init__(self) -> None:
        self._codecs: dict[tuple[str, str], Codec] = {}
        if not self.products:
            self.products = self.settings.products()
        self.banks = {b.bank_code.upper(): b for b in self.settings.data.banks}
        self.methods = {m.method_code: m for m in self.settings.data.repay_methods}
        self.tz = timezone(timedelta(hours=self.settings.responses.utc_offset_hours))

    # ---- setup ----

    @functools.cached_property
    def callback_policy(self) -> CallbackPolicy:
        """Where callbacks may go ([callbacks] allow; its own addresses looked up once)."""
        from .senders import callback_policy  # the network's module: only when sending

        return callback_policy(self.settings)

    def warnings(self) -> list[str]:
        return [w for p in self.products.values() for w in compliance_warnings(p)]

    def seed(self) -> None:
        """Load fixtures into the store: products replaced, partners added if missing."""
        self.store.create_schema()
        with self.store.exclusive() as s:  # another process may be seeding this database now
            self.load_fixtures(s)

    def load_fixtures(self, s: Session) -> None:
        """The fixtures in session `s`: partners added if missing (a reset's own transaction,
        so a global reset never leaves a moment without them), then products replaced.
        Partners first: their table is what a global reset locks first (services.locks)."""
        wall = self.wall()
        for p in self.settings.partners:
            if s.get(Partner, p.partner_token) is None:
                s.add(
                    self.new_partner(
                        p.partner_token,
                        p.aes_key,
                        p.aes_iv,
                        name=p.name,
                        callback_url=p.callback_url,
                        clock_mode=p.clock_mode,
                        clock_rate=p.clock_rate,
                        encrypt_callbacks=p.encrypt_callbacks,
                        wall=wall,
                    )
                )
            if p.control_token:  # the file is the authority for a fixture's token
                cred = s.get(PartnerCredential, p.partner_token)
                digest = token_hash(p.control_token)
                if cred is None:
                    s.add(
                        PartnerCredential(
                            partner_token=p.partner_token, token_hash=digest, created_at=wall
                        )
                    )
                elif cred.token_hash != digest:
                    cred.token_hash, cred.created_at = digest, wall
        s.flush()  # the partners' rows now: their table is locked before any product row
        for fx in self.settings.data.products:
            row = s.get(ProductRow, fx.product_id)
            data = fx.model_dump(mode="json")
            if row is None:
                s.add(ProductRow(product_id=fx.product_id, data=data))
            else:
                row.data = data

    def new_partner(
        self,
        token: str,
        key: str,
        iv: str,
        *,
        name: str = "",
        callback_url: str = "",
        clock_mode: str | None = None,
        clock_rate: float | None = None,
        encrypt_callbacks: bool | None = None,
        wall: float | None = None,
    ) -> Partner:
        wall = self.wall() if wall is None else wall
        c = clockmod.start(
            clock_mode or self.settings.clock.mode,
            wall,
            rate=clock_rate or self.settings.clock.rate,
        )
        return Partner(
            partner_token=token,
            name=name or token,
            aes_key=key,
            aes_iv=iv,
            callback_url=callback_url,
            encrypt_callbacks=self.settings.callbacks.encrypt
            if encrypt_callbacks is None
            else encrypt_callbacks,
            callbacks_paused=False,
            chaos={},
            clock_mode=c.mode,
            clock_rate=c.rate,
            clock_anchor_wall=c.anchor_wall,
            clock_anchor_virtual=c.anchor_virtual,
            created_at=wall,
        )

    # ---- lookups ----

    def product(self, product_id: str) -> Product:
        p = self.products.get(str(product_id))
        if p is None:
            known = ", ".join(sorted(self.products))
            raise SandboxError("unknown_product", f"product_id {product_id!r} (known: {known})")
        return p

    def partner_or_404(self, s: Session, token: str, *, lock: bool = False) -> Partner:
        """The partner a control-API call names: ControlError 404 when there is none. With
        `lock`, for a call that changes it (PostgreSQL: FOR NO KEY UPDATE, services.locks):
        it waits for a reset (which may delete it) and a reset for it; the partner's requests
        go on."""
        if lock:
            locks.changing(self.store, s.connection())
        lock_for = {"key_share": True} if lock else None
        p = s.get(Partner, token, with_for_update=lock_for) if token else None
        if p is None:
            raise ControlError("unknown_partner", f"partner_token {token!r}", http_status=404)
        return p

    def partner(self, s: Session, token: str) -> Partner:
        p = s.get(Partner, token)
        if p is None:
            raise SandboxError("unknown_partner", f"partner_token {token!r}")
        return p

    def codec(self, partner: Keyed) -> Codec:
        """The partner's codec (made once per key and IV: a request needs one every time)."""
        key = (partner.aes_key, partner.aes_iv)
        codec = self._codecs.get(key)
        if codec is None:
            if len(self._codecs) > 1000:  # partners' keys change rarely; stay bounded
                self._codecs.clear()
            codec = self._codecs[key] = Codec(*key)
        return codec

    # ---- time ----

    def clock_of(self, partner: Clocked) -> clockmod.ClockState:
        return clockmod.ClockState(
            partner.clock_mode,
            partner.clock_rate,
            partner.clock_anchor_wall,
            partner.clock_anchor_virtual,
        )

    def now(self, partner: Clocked) -> float:
        return clockmod.virtual_now(self.clock_of(partner), self.wall())

    def stored_clock(self, conn: Connection, token: str) -> clockmod.ClockState | None:
        """A partner's clock as saved now (None: no such partner), read without the ORM: to
        see whether another process moved it since it was read (compare-and-swap)."""
        row = conn.execute(PARTNER_CLOCK, {"token": token}).first()
        return clockmod.ClockState(*row) if row is not None else None

    def fmt(self, ts: float | None) -> str:
        """docs/protocol.md §7: 'YYYY-MM-DD HH:MM:SS' in the configured offset (WIB by default)."""
        return "" if ts is None else _fmt(ts, self.tz)

    # ---- links ----

    def sign(self, partner: Keyed, *parts: str) -> str:
        msg = "\x1f".join(parts).encode()
        return hmac.new(partner.aes_key.encode(), msg, hashlib.sha256).hexdigest()[:24]

    def contract_url(self, partner: Keyed, order_no: str) -> str:
        sig = self.sign(partner, "contract", order_no)
        return f"{self.settings.public_url()}/contract/{partner.partner_token}/{order_no}?sig={sig}"

    def repay_url(self, partner: Keyed, order_no: str) -> str:
        sig = self.sign(partner, "repay", order_no)
        return f"{self.settings.public_url()}/repay/{partner.partner_token}/{order_no}?sig={sig}"


@functools.lru_cache(maxsize=4096)  # a clock advance formats a few due times thousands of times
def _fmt(ts: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def create_lender(
    settings: Settings, *, store: Store | None = None, wall: Callable[[], float] | None = None
) -> Lender:
    """A lender on `settings` (its own store unless one is given), fixtures loaded."""
    kwargs: dict = {} if wall is None else {"wall": wall}
    lender = Lender(settings, store or Store(settings.database.url), **kwargs)
    lender.seed()
    return lender
