"""The control API's request and response models (/sandbox/*): what each route takes and answers.

Bodies and query strings are validated by these models, so every route refuses bad input the
same way: HTTP 400 with `missing_field` or `invalid_field` and a message naming the field and
its rule (`core.control_parsing.parse`). The response models (core.control_answers) document
what the routes answer; the OpenAPI document is generated from them and a test holds each
route's real answer to its model.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from . import clock as clockmod
from .chaos import CHAOS_KEYS, CHAOS_SCHEMA, validate_chaos
from .errors import SandboxError
from .inputs import INT32_MAX
from .lifecycle import TRIGGERS
from .paging import MAX_CURSOR, MAX_LIMIT
from .protocol import CALLBACK_URL_MAX

MAX_WAIT = 60.0  # seconds a long poll may hold a connection


class Body(BaseModel):
    """A request body: unknown fields are refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """A query string: values arrive as text and are converted; unknown names are ignored
    (a cache-busting parameter must not fail a request)."""

    model_config = ConfigDict(extra="ignore")


def _blank_is_none(v: Any) -> Any:
    return None if v == "" else v


def _query_int(v: Any) -> Any:
    """A query string's digits as an int (a Literal of ints does not convert text itself)."""
    if v == "":
        return None
    return int(v) if isinstance(v, str) and v.lstrip("-").isdecimal() and len(v) < 30 else v


Opt = BeforeValidator(_blank_is_none)
QInt = BeforeValidator(_query_int)
Token = Annotated[str, Field(min_length=1, max_length=64)]
# Length rules go on the text, not the optional: pydantic applies a constraint on
# `str | None` to None as well (a blank `?partner_token=` was a TypeError, an HTTP 500).
QToken = Annotated[
    Annotated[str, Field(min_length=1, max_length=64)] | None,
    Opt,
    Field(default=None, description="a partner's token"),
]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[
    Annotated[str, Field(max_length=MAX_CURSOR)] | None,
    Opt,
    Field(
        default=None,
        description="the next page: the X-Next-Cursor (or Link rel=next) of the previous page",
    ),
]
Rupiah = Annotated[int, Field(ge=1, le=INT32_MAX)]
ClockMode = Literal["real", "scaled", "manual"]
StatusCode = Literal[80, 90, 100, 110, 161, 169, 170, 180, 200]
FORCEABLE = tuple(t for t in TRIGGERS if t != "bind_card")


# ---- partners ----


def _callback_url(v: Any) -> Any:
    if v is None or v == "":
        return ""
    if not isinstance(v, str) or not v.startswith(("http://", "https://")):
        raise ValueError("callback_url must be an http(s) URL or empty")
    if len(v.rstrip("/")) > CALLBACK_URL_MAX:
        raise ValueError(f"callback_url must be at most {CALLBACK_URL_MAX} characters")
    return v.rstrip("/")


CallbackUrl = Annotated[
    str,
    BeforeValidator(_callback_url),
    Field(
        max_length=CALLBACK_URL_MAX,
        description="http(s) base URL the callbacks go to (+ /callback-...), or '' for none",
        json_schema_extra={"pattern": "^(https?://.*)?$"},  # enforced by _callback_url
    ),
]


def _rate(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= clockmod.MAX_RATE:
        raise ValueError(f"clock rate must be a number > 0 and <= {clockmod.MAX_RATE:g}, not {v!r}")
    return float(v)


def _mode(v: Any) -> Any:
    if v not in clockmod.MODES:
        raise ValueError(f"clock mode must be one of {', '.join(clockmod.MODES)}, not {v!r}")
    return v


ClockRate = Annotated[
    float,
    BeforeValidator(_rate),
    Field(
        description="scaled: virtual seconds per wall second",
        json_schema_extra={"exclusiveMinimum": 0, "maximum": clockmod.MAX_RATE},
    ),
]
Mode = Annotated[ClockMode, BeforeValidator(_mode), Field(description="real | scaled | manual")]


def _chaos(v: Any) -> Any:
    try:
        return validate_chaos(v)
    except SandboxError as e:
        raise ValueError(e.detail) from None


Chaos = Annotated[
    dict[str, Any],
    BeforeValidator(_chaos),
    Field(
        description="callback chaos, {} for none: "
        + "; ".join(f"{k}: {v}" for k, v in CHAOS_KEYS.items()),
        json_schema_extra=CHAOS_SCHEMA,
    ),
]


class PartnerCreate(Body):
    """POST /sandbox/partners: onboard a partner (spec §01); what is not given is generated."""

    partner_token: Token | None = Field(None, description="generated when absent")
    aes_key: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="generated: 16 letters/digits"
    )
    aes_iv: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="generated: 16 letters/digits"
    )
    callback_url: CallbackUrl = ""
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    clock_mode: Mode | None = None
    clock_rate: ClockRate | None = None
    encrypt_callbacks: bool | None = Field(None, description="false: plain JSON callbacks")


class PartnerPatch(Body):
    """PATCH /sandbox/partners/{token}: only these fields, each optional."""

    UNKNOWN_FIELD: ClassVar[str] = "cannot change {name}; changeable: {fields}"
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    callback_url: CallbackUrl | None = None
    encrypt_callbacks: bool | None = None
    callbacks_paused: bool | None = None
    chaos: Chaos | None = None
    clock_mode: Mode | None = None
    clock_rate: ClockRate | None = None
    aes_key: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    aes_iv: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class SecretsQuery(Query):
    secrets: bool = Field(False, description="1 or true: include aes_key and aes_iv")

    @field_validator("secrets", mode="before")
    @classmethod
    def _flag(cls, v: Any) -> Any:
        return v in ("1", "true", True)


# ---- clocks ----


def _duration(v: Any) -> float:
    if isinstance(v, bool) or v is None or isinstance(v, (list, dict)):
        raise ValueError(
            f"cannot read duration {v!r}: use e.g. '8d', '2h30m', '90m', '45s' or seconds"
        )
    try:
        return clockmod.parse_duration(v)
    except clockmod.ClockError as e:
        raise ValueError(str(e)) from None


class ClockAdvance(Body):
    """POST .../clock/advance: {"seconds": N} or {"by": "8d"}."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})
    seconds: Any = Field(
        None,
        description="seconds (a number, or a duration like the `by`)",
        json_schema_extra={
            "anyOf": [{"type": "number", "minimum": 0}, {"type": "string"}, {"type": "null"}]
        },
    )
    by: Any = Field(
        None,
        description='a duration: "8d", "2h30m", "90m", "45s", "1w"',
        json_schema_extra={"type": ["string", "null"]},
    )

    @model_validator(mode="before")
    @classmethod
    def _one(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not ({"seconds", "by"} & set(data)):
            raise PydanticCustomError("missing", 'send {"seconds": N} or {"by": "8d"}')
        unknown = set(data) - {"seconds", "by"}
        if unknown:
            raise ValueError(
                f'send {{"seconds": N}} or {{"by": "8d"}}, not {", ".join(sorted(unknown))}'
            )
        return data

    @property
    def total(self) -> float:
        """The duration in seconds (`seconds` wins when both are given)."""
        return _duration(self.seconds if self.seconds is not None else self.by)

    @model_validator(mode="after")
    def _readable(self) -> ClockAdvance:
        self.total  # noqa: B018 - raises ValueError for an unreadable duration
        return self


class ClockSet(Body):
    """POST .../clock/set: move to an instant (forward only)."""

    model_config = ConfigDict(extra="forbid")
    to: Any = Field(
        description="ISO 8601; a time without a zone is WIB", json_schema_extra={"type": "string"}
    )

    @model_validator(mode="before")
    @classmethod
    def _given(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "to" not in data:
            raise PydanticCustomError("missing", 'send {"to": "<ISO 8601>"}')
        return data

    @property
    def instant(self) -> float:
        return clockmod.parse_instant(self.to)

    @model_validator(mode="after")
    def _readable(self) -> ClockSet:
        if not isinstance(self.to, str):
            raise ValueError(
                f"cannot read time {self.to!r}: use ISO 8601, e.g. 2026-12-01T09:00:00+07:00"
            )
        try:
            self.instant  # noqa: B018
        except clockmod.ClockError as e:
            raise ValueError(str(e)) from None
        return self


# ---- orders ----


class OrdersQuery(Query):
    partner_token: QToken = None
    status: Annotated[StatusCode | None, QInt] = Field(None, description="an order status")
    limit: Limit = Field(200, description="newest first, 1-1000")
    cursor: Cursor = None


class PartnersQuery(Query):
    limit: Limit = Field(MAX_LIMIT, description="oldest first, 1-1000")
    cursor: Cursor = None


class PartnerQuery(Query):
    partner_token: Annotated[
        str, Field(min_length=1, max_length=64, description="the order's partner")
    ]


class WaitQuery(PartnerQuery):
    status: Annotated[StatusCode | None, QInt] = Field(None, description="the status to wait for")
    callback: Annotated[Literal["acknowledged"] | None, Opt] = Field(
        None, description="'acknowledged': wait until the order's callbacks are delivered"
    )
    timeout: float = Field(10.0, ge=0, description=f"seconds, default 10, capped at {MAX_WAIT:g}")

    @field_validator("timeout", mode="before")
    @classmethod
    def _seconds(cls, v: Any) -> Any:
        if v in (None, ""):
            return 10.0
        try:
            seconds = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"timeout {v!r} must be seconds >= 0") from None
        if not 0 <= seconds < math.inf:
            raise ValueError(f"timeout {v!r} must be seconds >= 0")
        return min(seconds, MAX_WAIT)  # a long poll must not hold a connection forever

    @model_validator(mode="after")
    def _something(self) -> WaitQuery:
        if self.status is None and self.callback is None:
            raise PydanticCustomError(
                "missing", "send status=<code>, callback=acknowledged or both"
            )
        return self


class Transition(Body):
    """POST /sandbox/orders/{order_no}/transition: force a legal trigger."""

    partner_token: Token
    trigger: str = Field(
        max_length=32,
        description="one of " + ", ".join(FORCEABLE),
        json_schema_extra={"enum": list(FORCEABLE)},
    )
    amount: Rupiah | None = Field(None, description="approve: the approved amount")
    reason: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="reject / fail_payout: the reason"
    )
    delay_term: Annotated[int, Field(ge=1, le=365)] | None = Field(None, description="extend: days")

    @property
    def params(self) -> dict[str, Any]:
        return self.model_dump(include={"amount", "reason", "delay_term"}, exclude_none=True)


# ---- payments, reset, tools ----


class Payment(Body):
    """POST /sandbox/payments: the borrower pays a code from 15."""

    repay_code: Annotated[str, Field(min_length=1, max_length=40)]
    amount: Rupiah | None = Field(None, description="optional: must equal the code's amount")


RESET_HOW = (
    'send {"partner_token": "<token>"} to reset one partner, or {"all": true} to reset every '
    "partner (admin only)"
)


def _no_default(schema: dict[str, Any]) -> None:
    """The schema of an optional field whose null the validator refuses: no `default: null`."""
    schema.pop("default", None)


class Reset(Body):
    """POST /sandbox/reset: one partner, or every partner when asked for in so many words
    (`{"all": true}`): a missing, null, empty or false `partner_token` never means all."""

    # The document says what the validator holds: exactly one of the two (so a generated
    # client, or schemathesis, never sends `{}` believing it valid).
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"oneOf": [{"required": ["partner_token"]}, {"required": ["all"]}]},
    )

    # null is refused by the validator, so the document does not offer it
    partner_token: Token | SkipJsonSchema[None] = Field(
        None,
        description="wipe this partner's orders and history; its clock restarts",
        json_schema_extra=_no_default,
    )
    all: Literal[True] | SkipJsonSchema[None] = Field(
        None,
        description="true: wipe every partner and reload the fixtures (admin only)",
        json_schema_extra=_no_default,
    )

    @model_validator(mode="before")
    @classmethod
    def _explicit(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "all" in data:
            if data["all"] is not True:
                raise ValueError(f"all must be true, not {data['all']!r}: {RESET_HOW}")
            if "partner_token" in data:
                raise ValueError(f"send partner_token or all, not both: {RESET_HOW}")
            return data
        token = data.get("partner_token")
        if token is None:
            raise PydanticCustomError("missing", f"{RESET_HOW}; nothing was reset")
        if not isinstance(token, str) or not token:
            raise ValueError(f"partner_token must be a partner's token, not {token!r}: {RESET_HOW}")
        return data

    @property
    def everything(self) -> bool:
        return self.all is True


class CodecChoice(Body):
    # A partner's pair, or an explicit one: both halves as text.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [*names], "properties": {n: {"type": "string"} for n in names}}
                for names in (("partner_token",), ("aes_key", "aes_iv"))
            ]
        }
    )
    partner_token: Token | None = Field(None, description="use this partner's key and IV")
    aes_key: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="or an explicit key (a PHP string: cut or NUL-padded to 16 bytes)"
    )
    aes_iv: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="and IV (both needed)"
    )


class Encrypt(CodecChoice):
    """POST /sandbox/tools/encrypt."""

    model_config = ConfigDict(extra="forbid")
    data: Any = Field(description="an object (JSON-encoded like PHP) or a string (as is)")
    escape: bool = Field(
        True, description="PHP's default json_encode flags; false: unescaped slashes and unicode"
    )


class Decrypt(CodecChoice):
    """POST /sandbox/tools/decrypt (a whole envelope works as the body)."""

    encode_data: Annotated[str, Field(min_length=1, max_length=2_000_000)]


# ---- callbacks, journal, faults ----


class CallbacksQuery(Query):
    partner_token: QToken = None
    order_no: Annotated[Annotated[str, Field(max_length=32)] | None, Opt] = Field(
        None, description="one order"
    )
    state: Annotated[Literal["pending", "delivered", "dead"] | None, Opt] = None
    limit: Limit = Field(
        200, description="the newest `limit`, oldest first; 1-1000 (the next page: older ones)"
    )
    cursor: Cursor = None


class JournalQuery(Query):
    partner_token: QToken = None
    path: Annotated[Annotated[str, Field(max_length=64)] | None, Opt] = Field(
        None, description="a lender path, e.g. /push-order-confirm"
    )
    limit: Limit = Field(100, description="newest first, 1-1000")
    cursor: Cursor = None


class ScopeQuery(Query):
    partner_token: QToken = None


class FaultsQuery(ScopeQuery):
    limit: Limit = Field(MAX_LIMIT, description="oldest first, 1-1000")
    cursor: Cursor = None


class Prune(Body):
    """POST /sandbox/journal/prune: apply the retention now."""

    max_age_days: Annotated[float, Field(ge=0, le=36_500)] | None = Field(
        None, description="instead of [journal] max_age_days (0: no age limit)"
    )
    max_rows_per_partner: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = Field(
        None, description="instead of [journal] max_rows_per_partner (0: no row limit)"
    )


class FaultsDeleteQuery(ScopeQuery):
    id: Annotated[Annotated[int, Field(ge=1, le=INT32_MAX)] | None, Opt] = Field(
        None, description="one rule"
    )
