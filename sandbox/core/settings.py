"""The settings and fixture models: what config.toml and fixtures/*.toml may say, validated.

Pure data: reading the files is `services.config`. Durations are parsed once here into
seconds; every section forbids unknown keys, so a typo is an error, not a silent default.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import clock as clockmod
from .addresses import parse_allow
from .pricing import Extension, Product
from .protocol import CALLBACK_URL_MAX
from .scenarios import ScenarioDefault, ScenarioRule


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _seconds(v: Any) -> float:
    return clockmod.parse_duration(v)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""
    max_body_bytes: int = 1_048_576
    admin_token: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False  # a line per request, with its request id (web.access)
    log_format: Literal["text", "json"] = "text"


class DatabaseSettings(_Section):
    url: str = "sqlite:///sandbox.db"


class FixtureSettings(_Section):
    dir: str = ""  # "" = the packaged fixtures (sandbox/defaults/fixtures)


class ClockSettings(_Section):
    mode: Literal["real", "scaled", "manual"] = "real"
    rate: float = 60.0


class LifecycleSettings(_Section):
    review_delay: float = 120
    payout_delay: float = 60
    approval_expiry: float = 3 * 86400
    abandon_after: float = 7 * 86400
    payout_failed_expiry: float = 7 * 86400
    repay_code_ttl: float = 86400
    reject_cooldown_days: int = 30
    max_repay_codes: int = 20

    _durations = field_validator(
        "review_delay",
        "payout_delay",
        "approval_expiry",
        "abandon_after",
        "payout_failed_expiry",
        "repay_code_ttl",
        mode="before",
    )(_seconds)


class ResponseSettings(_Section):
    message_key: Literal["spec", "message", "msg", "both"] = "spec"
    encrypt_data: bool = False
    utc_offset_hours: float = 7
    strict_nik: bool = False
    # Refuse at 08 an account whose length its bank does not issue; off: it binds, and its
    # payout fails (docs/protocol.md §4 08).
    strict_bank_account: bool = False


class CallbackSettings(_Section):
    first_delay: float = 10
    factor: float = 2.0
    max_delay: float = 3600
    jitter: float = 0.2
    max_attempts: int = 8
    timeout: float = 10
    ordered: bool = True
    encrypt: bool = True
    batch_size: int = 50
    # Hosts and networks callbacks may go to on a shared (non-loopback) bind besides public
    # addresses (core.addresses.CallbackPolicy): "10.0.0.0/8", "192.168.1.5", "receiver.internal",
    # "*.internal". A variable lists them separated by commas or spaces.
    allow: list[str] = []

    _durations = field_validator("first_delay", "max_delay", "timeout", mode="before")(_seconds)

    @field_validator("allow", mode="before")
    @classmethod
    def _entries(cls, v: Any) -> Any:
        return [e for e in re.split(r"[,\s]+", v) if e] if isinstance(v, str) else v

    @field_validator("allow")
    @classmethod
    def _readable(cls, v: list[str]) -> list[str]:
        parse_allow(v)  # ValueError naming a bad entry
        return v


class SchedulerSettings(_Section):
    tick: float = 1.0


class JournalSettings(_Section):
    """Retention of the journal and of finished callback deliveries (services.retention)."""

    max_age_days: float = Field(30, ge=0)  # 0: no age limit
    max_rows_per_partner: int = Field(100_000, ge=0)  # 0: no row limit
    prune_every: float = Field(600, gt=0)

    _durations = field_validator("prune_every", mode="before")(_seconds)


class ScenarioSettings(_Section):
    seed: str = "lender-sandbox"


class ConformanceSettings(_Section):
    """The limits of the acceptance report's checks (docs/conformance.md)."""

    review_polls_per_minute: int = Field(6, ge=1)
    refusal_retry_after: float = 86400

    _durations = field_validator("refusal_retry_after", mode="before")(_seconds)


class PartnerFixture(_Section):
    partner_token: str = Field(min_length=1, max_length=64)
    aes_key: str = Field(max_length=200)
    aes_iv: str = Field(max_length=200)
    name: str = Field("", max_length=200)
    callback_url: str = Field("", max_length=CALLBACK_URL_MAX)
    clock_mode: Literal["real", "scaled", "manual"] | None = None
    clock_rate: float | None = None
    encrypt_callbacks: bool | None = None
    # The partner's control token (core.tenancy), set again at every start; "" = none (the
    # admin issues one: POST /sandbox/partners/{token}/control-token).
    control_token: str = Field("", max_length=200)

    @field_validator("control_token")
    @classmethod
    def _long_enough(cls, v: str) -> str:
        if v and len(v) < 16:
            raise ValueError("a control_token needs at least 16 characters (it is a password)")
        return v


class ExtensionFixture(_Section):
    enabled: bool = False
    terms: list[int] = [7]
    default_term: int | None = None
    fee_rate: Decimal = Decimal("0")
    limit: int = 0
    min_payment: int = 0
    term_unit: Literal[1, 2] = 1  # of `terms`: 1 days, 2 months


class ProductFixture(_Section):
    product_id: str
    product_name: str
    product_icon: str = ""
    product_desc: str = ""
    gp_link: str = ""
    term_unit: Literal[1, 2]
    terms: list[int] = Field(min_length=1)
    amount_min: int = Field(ge=1)
    amount_step: int = Field(ge=1)
    amount_max_new: int
    amount_max: int
    default_amount: int | None = None
    default_term: int | None = None
    interest_rate: Decimal
    admin_rate: Decimal = Decimal("0")
    overdue_rate: Decimal = Decimal("0")
    grace_days: int = 0
    url_repay: bool = False
    extension: ExtensionFixture = ExtensionFixture()

    @field_validator("product_id", mode="before")
    @classmethod
    def _str_id(cls, v: Any) -> str:
        return str(v)

    def build(self) -> Product:
        ext = self.extension
        return Product(
            product_id=self.product_id,
            product_name=self.product_name,
            term_unit=self.term_unit,
            terms=tuple(self.terms),
            amount_min=self.amount_min,
            amount_max=self.amount_max,
            amount_max_new=self.amount_max_new,
            amount_step=self.amount_step,
            interest_rate=self.interest_rate,
            admin_rate=self.admin_rate,
            overdue_rate=self.overdue_rate,
            grace_days=self.grace_days,
            default_amount=self.default_amount,
            default_term=self.default_term,
            extension=Extension(
                ext.enabled,
                tuple(ext.terms),
                ext.default_term or ext.terms[0],
                ext.fee_rate,
                ext.limit,
                ext.min_payment,
                ext.term_unit,
            ),
            url_repay=self.url_repay,
            product_icon=self.product_icon,
            product_desc=self.product_desc,
            gp_link=self.gp_link,
        )


class BankFixture(_Section):
    bank_code: str
    bank_name: str


class RepayMethodFixture(_Section):
    bank_code: str
    method_code: str
    repay_method: Literal[1, 2]


class Fixtures(_Section):
    partners: list[PartnerFixture] = []
    products: list[ProductFixture] = []
    banks: list[BankFixture] = []
    repay_methods: list[RepayMethodFixture] = []
    rules: list[ScenarioRule] = []
    default: ScenarioDefault = ScenarioDefault()


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    fixtures: FixtureSettings = FixtureSettings()
    clock: ClockSettings = ClockSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    responses: ResponseSettings = ResponseSettings()
    callbacks: CallbackSettings = CallbackSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    journal: JournalSettings = JournalSettings()
    scenarios: ScenarioSettings = ScenarioSettings()
    conformance: ConformanceSettings = ConformanceSettings()
    data: Fixtures = Fixtures()  # loaded from the fixtures folder, not from config.toml

    def token_problem(self) -> str:
        """What is wrong with the fixture partners' control tokens ("" when nothing): each
        must be its own, and none the admin token (it would be the admin's)."""
        tokens = [p.control_token for p in self.data.partners if p.control_token]
        if len(set(tokens)) < len(tokens):
            return "two fixture partners have the same control_token"
        if self.server.admin_token and self.server.admin_token in tokens:
            return "a fixture partner's control_token is [server] admin_token"
        return ""

    @property
    def partners(self) -> list[PartnerFixture]:
        return self.data.partners

    def products(self) -> dict[str, Product]:
        return {p.product_id: p.build() for p in self.data.products}

    def public_url(self) -> str:
        s = self.server
        return (s.public_url or f"http://{s.host}:{s.port}").rstrip("/")
