"""Fault rules (PUT /sandbox/faults): the kinds, one pydantic model per kind, and a request's pick.

Pure: what a rule may say and how a request's chosen faults are described. Storing rules,
rolling them and applying their effects is `services.faults`; the HTTP-only effects (latency,
error pages, dropped connections) are the web layer's (`web.lender`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import BY_NAME, ControlError
from .protocol import PATHS
from .scenarios import rng_for

MAX_LATENCY_MS = 60_000
MAX_HOLD_MS = 120_000
MAX_RULES = 100


@dataclass(frozen=True)
class FaultKind:
    """One kind of fault, as documented in GET /docs and /openapi.json."""

    name: str
    layer: str  # "http": the web layer only; "business": inside api.handle (in-process too)
    fields: str  # the kind's own fields (besides the common ones)
    handler_runs: str  # whether the lender really processes the request
    effect: str  # what the client sees


FAULT_KINDS: tuple[FaultKind, ...] = (
    FaultKind(
        "latency",
        "http",
        "`ms` (0-60000) or `ms_range` [a, b]",
        "yes, after the delay",
        "The normal answer, `ms` later (asyncio.sleep: no worker thread is held).",
    ),
    FaultKind(
        "http_error",
        "http",
        "`status` 500 | 502 | 503 (default 503); `after_handler`",
        "no (yes with `after_handler`)",
        "An nginx-style HTML error page with that HTTP status instead of the envelope.",
    ),
    FaultKind(
        "drop",
        "http",
        "`after_handler`",
        "no (yes with `after_handler`)",
        "The connection closes without a complete answer: the client gets a connection "
        "error (httpx RemoteProtocolError, curl error 18), never a body.",
    ),
    FaultKind(
        "timeout",
        "http",
        "`ms` (1-120000, default 30000); `after_handler`",
        "no (yes with `after_handler`)",
        "The request is held `ms` (or until the client hangs up), then HTTP 504 Gateway Time-out.",
    ),
    FaultKind(
        "malformed",
        "http",
        "`style` truncated | php_notice (default truncated)",
        "yes",
        "HTTP 200 with a body that is not JSON: the real answer cut in half, or preceded "
        "by a PHP notice.",
    ),
    FaultKind(
        "business_error",
        "business",
        "`code` (default 10011), `message`",
        "no",
        "The envelope with that code and message (HTTP 200), before validation; nothing changes.",
    ),
    FaultKind(
        "review_stuck",
        "business",
        "none; path /push-supplement-info",
        "yes",
        "The order's review never decides (it stays 90) until a transition is forced. "
        "A rule naming an order already under review applies when it is PUT.",
    ),
    FaultKind(
        "confirm_unknown",
        "business",
        "`answer` http_504 | business_error (default http_504), `code`, `message`; "
        "path /push-order-confirm",
        "yes, and commits",
        "The confirm is carried out (the payout starts) but the answer is HTTP 504 or an "
        "error code: the unknown outcome. Retrying the confirm is idempotent.",
    ),
    FaultKind(
        "callback_first",
        "business",
        "none",
        "yes",
        "The partner's pending callbacks are delivered before the synchronous answer "
        "leaves (over HTTP; in-process callbacks always arrive first).",
    ),
    FaultKind(
        "payout_retry",
        "business",
        "none; path /push-order-confirm",
        "yes",
        "The order's first payout fails (169); after re-binding a card (08) and "
        "confirming again (11) it succeeds.",
    ),
)
KIND_NAMES = tuple(k.name for k in FAULT_KINDS)
HTTP_KINDS = frozenset(k.name for k in FAULT_KINDS if k.layer == "http")
BEFORE_KINDS = frozenset({"business_error"})
AFTER_KINDS = frozenset(KIND_NAMES) - HTTP_KINDS - BEFORE_KINDS
HTTP_ANSWERS = frozenset({"http_error", "drop", "timeout", "malformed"})
READ_ONLY = ("id", "remaining", "matched", "applied", "spent", "created_at")


# ---- rules: one pydantic model per kind ----

Ms = Annotated[int, Field(ge=0, le=MAX_LATENCY_MS)]
Code = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class RuleBase(BaseModel):
    """The fields every rule has."""

    model_config = ConfigDict(extra="forbid")
    FIXED_PATH: ClassVar[str] = ""

    path: str = Field(
        "",
        max_length=64,
        description='A lender endpoint path such as "/push-order-confirm", or "" for every path.',
    )
    partner_token: str = Field("", max_length=64, description='"" for every partner.')
    order_no: str = Field(
        "", max_length=32, description='Only requests about this order; "" for any.'
    )
    probability: float = Field(
        1.0, ge=0, le=1, description="Chance that a matching request gets the fault."
    )
    seed: str | None = Field(
        None, max_length=100, description="Makes the probability rolls (and ms_range) reproducible."
    )
    count: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="Apply at most this many times, then the rule is spent.",
    )

    @field_validator("path")
    @classmethod
    def _known_path(cls, v: str) -> str:
        v = v.strip()
        if not v:
            return ""
        v = v if v.startswith("/") else "/" + v
        if v not in PATHS:
            raise ValueError(
                f'{v} is not a lender endpoint; use one of {", ".join(PATHS)}, or "" for all'
            )
        return v

    @field_validator("partner_token", "order_no")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()

    @model_validator(mode="after")
    def _fixed_path(self) -> RuleBase:
        if self.FIXED_PATH:
            if self.path not in ("", self.FIXED_PATH):
                raise ValueError(f"this kind applies to {self.FIXED_PATH} only: leave path empty")
            self.path = self.FIXED_PATH
        return self


class Latency(RuleBase):
    kind: Literal["latency"]
    ms: Ms | None = None
    ms_range: tuple[Ms, Ms] | None = None

    @model_validator(mode="after")
    def _one_delay(self) -> Latency:
        if (self.ms is None) == (self.ms_range is None):
            raise ValueError('give either "ms" or "ms_range": [a, b]')
        if self.ms_range and self.ms_range[0] > self.ms_range[1]:
            raise ValueError("ms_range must be [low, high]")
        return self


class HttpError(RuleBase):
    kind: Literal["http_error"]
    status: Literal[500, 502, 503] = 503
    after_handler: bool = False


class Drop(RuleBase):
    kind: Literal["drop"]
    after_handler: bool = False


class Timeout(RuleBase):
    kind: Literal["timeout"]
    ms: Annotated[int, Field(ge=1, le=MAX_HOLD_MS)] = 30_000
    after_handler: bool = False


class Malformed(RuleBase):
    kind: Literal["malformed"]
    style: Literal["truncated", "php_notice"] = "truncated"


class BusinessError(RuleBase):
    kind: Literal["business_error"]
    code: Code = BY_NAME["fault_injected"].code
    message: str = Field("", max_length=500, description="Default: the catalog's message.")

    @field_validator("code")
    @classmethod
    def _not_success(cls, v: int) -> int:
        if v == 0:
            raise ValueError("code 0 means success: use a non-zero code")
        return v


class ReviewStuck(RuleBase):
    FIXED_PATH: ClassVar[str] = "/push-supplement-info"
    kind: Literal["review_stuck"]


class ConfirmUnknown(BusinessError):
    FIXED_PATH: ClassVar[str] = "/push-order-confirm"
    kind: Literal["confirm_unknown"]  # type: ignore[assignment]
    answer: Literal["http_504", "business_error"] = "http_504"


class CallbackFirst(RuleBase):
    kind: Literal["callback_first"]


class PayoutRetry(RuleBase):
    FIXED_PATH: ClassVar[str] = "/push-order-confirm"
    kind: Literal["payout_retry"]


Rule = Annotated[
    Latency
    | HttpError
    | Drop
    | Timeout
    | Malformed
    | BusinessError
    | ReviewStuck
    | ConfirmUnknown
    | CallbackFirst
    | PayoutRetry,
    Field(discriminator="kind"),
]
RULE = TypeAdapter(Rule)


class RuleSet(BaseModel):
    """PUT/POST body with several rules; a top-level partner_token scopes them."""

    model_config = ConfigDict(extra="forbid")
    partner_token: str = Field(
        "",
        max_length=64,
        description="Only this partner's rules are "
        "replaced (PUT); the default partner_token of each rule.",
    )
    rules: list[Rule] = Field(max_length=MAX_RULES, description="The rules, at most 100.")


# One rule or a set of rules: the body of PUT and POST /sandbox/faults (`parse_body` reads it).
RuleBody = TypeAdapter(Union[Rule, RuleSet])  # noqa: UP007


class StoredRule(BaseModel):
    """A stored rule as GET shows it: the rule's own fields (see FaultRule) plus its counters."""

    model_config = ConfigDict(extra="allow")
    id: int
    remaining: int | None = Field(description="applications left (null: no count)")
    matched: int = Field(description="requests that matched")
    applied: int = Field(description="times it fired")
    spent: bool
    created_at: str = Field(description="ISO 8601")


class FaultRules(BaseModel):
    """The answer of /sandbox/faults: the rules (of one partner, or all), oldest first."""

    model_config = ConfigDict(extra="forbid")
    rules: list[StoredRule]


# ---- parsing a PUT/POST body ----


def _first_error(e: ValidationError) -> str:
    err = e.errors(include_url=False)[0]
    parts = [p for p in err["loc"] if p not in KIND_NAMES]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] in ("union_tag_not_found", "union_tag_invalid"):
        msg = f"kind must be one of {', '.join(KIND_NAMES)}"
    return f"{where}: {msg}" if where else msg


def _validate(validate: Callable[[Any], Any], doc: Any) -> Any:
    try:
        return validate(doc)
    except ValidationError as e:
        raise ControlError("invalid_field", _first_error(e)) from None


def _writable(rule: Any) -> Any:
    """A rule as GET shows it can be PUT back: the read-only fields are dropped."""
    return {k: v for k, v in rule.items() if k not in READ_ONLY} if isinstance(rule, dict) else rule


def parse_body(body: dict[str, Any]) -> tuple[str | None, list[RuleBase]]:
    """(scope, rules): scope None = every partner's rules, else that partner's only."""
    if "rules" in body:
        rules = body["rules"]
        doc = {**body, "rules": [_writable(r) for r in rules]} if isinstance(rules, list) else body
        ruleset = _validate(RuleSet.model_validate, doc)
        scope = ruleset.partner_token.strip() or None
        for i, rule in enumerate(ruleset.rules):
            if scope and rule.partner_token not in ("", scope):
                raise ControlError(
                    "invalid_field",
                    f"rules[{i}].partner_token differs from the top-level partner_token {scope!r}",
                )
            rule.partner_token = scope or rule.partner_token
        return scope, ruleset.rules
    if "kind" in body:
        rule = _validate(RULE.validate_python, _writable(body))
        return rule.partner_token or None, [rule]
    raise ControlError(
        "missing_field",
        'send one rule {"kind": ...} or {"rules": [...]}; kinds: ' + ", ".join(KIND_NAMES),
    )


# ---- what a request is about, and what fired ----


@dataclass(frozen=True)
class Target:
    """What a request is about: rules match on these."""

    partner_token: str
    path: str
    order_no: str


@dataclass(frozen=True)
class Fired:
    """A rule that fires for one request (its count already spent)."""

    rule_id: int
    spec: dict[str, Any]
    ms: int | None = None  # latency / timeout: the delay chosen

    @property
    def kind(self) -> str:
        return str(self.spec["kind"])

    def describe(self) -> str:
        """The journal's `fault` text, e.g. "latency 300ms" or "http_error 503"."""
        s, k = self.spec, self.kind
        detail = {
            "latency": f" {self.ms}ms",
            "timeout": f" {self.ms}ms",
            "http_error": f" {s.get('status')}",
            "malformed": f" {s.get('style')}",
            "business_error": f" {s.get('code')}",
            "confirm_unknown": f" {s.get('answer')}",
        }.get(k, "")
        return k + detail + (" after handler" if s.get("after_handler") else "")


def order_no_of(request: Any) -> str:
    """The order a decrypted request is about (05/06 nest it in order_info)."""
    if not isinstance(request, dict):
        return ""
    info = request.get("order_info")
    value = request.get("order_no") or (info.get("order_no") if isinstance(info, dict) else "")
    return str(value or "")


def _slot(kind: str) -> str:
    # At most one rule per slot fires per request: one answer, one delay, one of each effect.
    return "answer" if kind in HTTP_ANSWERS else kind


def _rng(spec: dict[str, Any], n: int) -> random.Random:
    if spec.get("seed") is None:
        return random.SystemRandom()
    return rng_for("fault", spec["seed"], n)


def _delay(spec: dict[str, Any], rng: random.Random) -> int | None:
    if spec.get("ms_range"):
        low, high = spec["ms_range"]
        return rng.randint(low, high)
    return spec.get("ms")


def join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


# ---- what a real lender's proxy answers ----

GATEWAY_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}
# What PHP prints before the JSON when display_errors is on: a classic malformed answer.
PHP_NOTICE = (
    "<br />\n<b>Notice</b>:  Undefined index: extra_info in "
    "<b>/var/www/lender/app/Http/Controllers/ApiController.php</b> on line "
    "<b>214</b><br />\n"
)


def gateway_page(status: int) -> str:
    """The page nginx answers when the PHP backend fails: what a real lender's proxy sends."""
    title = f"{status} {GATEWAY_REASONS[status]}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        f"</body>\r\n</html>\r\n"
    )


@dataclass(frozen=True)
class HttpPlan:
    """The HTTP faults chosen for one request, and what the request said."""

    fired: tuple[Fired, ...] = ()
    partner_token: str = ""
    request: dict[str, Any] | None = None

    @property
    def delay(self) -> Fired | None:
        return next((f for f in self.fired if f.kind == "latency"), None)

    @property
    def answer(self) -> Fired | None:
        return next((f for f in self.fired if f.kind in HTTP_ANSWERS), None)

    @property
    def runs_handler(self) -> bool:
        a = self.answer
        return a is None or a.kind == "malformed" or bool(a.spec.get("after_handler"))

    def describe(self) -> str:
        return join(*(f.describe() for f in self.fired))


def answer_status(f: Fired) -> int:
    """The HTTP status the client gets; 0 = none (dropped)."""
    return {"http_error": int(f.spec.get("status") or 503), "timeout": 504, "drop": 0}[f.kind]
