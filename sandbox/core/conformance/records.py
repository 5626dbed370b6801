"""What an acceptance run is made of (docs/conformance.md): the partner's requests, the
callbacks it was sent with their attempts, its orders' timelines, and the limits the checks
apply. Plain frozen records, filled by sandbox.services.conformance from the store."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..protocol import CALLBACKS, SPECS

# ---- the records a run is made of ----


@dataclass(frozen=True)
class Call:
    """One request of the partner, as the journal kept it."""

    id: int
    path: str
    at: float  # wall seconds
    virtual_at: float | None  # the partner's clock
    request: dict[str, Any] | None  # the decrypted payload (None: it did not decrypt)
    raw: str  # the body as received: the envelope
    response: dict[str, Any] | None  # None: no envelope was answered (an HTTP fault)
    code: int | None
    http_status: int = 200
    fault: str = ""
    content_type: str | None = None  # None: not over HTTP (the in-process harness)

    @property
    def number(self) -> str:
        return ENDPOINT_NUMBER.get(self.path, "??")

    @property
    def order_no(self) -> str:
        req = self.request or {}
        info = req.get("order_info")
        value = req.get("order_no") or (info.get("order_no") if isinstance(info, dict) else "")
        return str(value or "")

    @property
    def person(self) -> tuple[str, str]:
        """(NIK, mobile) the request is about; 05 nests them in order_info."""
        req = self.request or {}
        nested = req.get("order_info")
        info = nested if isinstance(nested, dict) else req
        return str(info.get("user_idcard") or ""), str(info.get("user_mobile") or "")

    @property
    def message(self) -> str:
        r = self.response or {}
        return str(r.get("message", r.get("msg", "")))

    @property
    def data(self) -> dict[str, Any]:
        d = (self.response or {}).get("data")
        return d if isinstance(d, dict) else {}  # an encrypted `data` is a string: unknown

    def label(self) -> str:
        return f"{self.number} {self.path}"


@dataclass(frozen=True)
class Attempt:
    """One attempt to deliver a callback, and how the partner's receiver answered."""

    id: int
    at: float  # wall seconds
    status_code: int | None
    response: str
    latency_ms: float
    error: str  # "" = acknowledged

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class Delivery:
    """One callback (19-21) sent to the partner, with its attempts, oldest first."""

    id: int
    order_no: str
    path: str
    state: str
    body: dict[str, Any]
    attempts: tuple[Attempt, ...] = ()

    @property
    def number(self) -> str:
        return CALLBACK_NUMBER.get(self.path, "??")

    @property
    def first_ack(self) -> Attempt | None:
        return next((a for a in self.attempts if a.ok), None)

    @property
    def cycle(self) -> tuple[Attempt, ...]:
        """The attempts up to the first acknowledgement; later ones are duplicates."""
        ack = self.first_ack
        return self.attempts if ack is None else tuple(a for a in self.attempts if a.id <= ack.id)

    @property
    def duplicates(self) -> tuple[Attempt, ...]:
        ack = self.first_ack
        return () if ack is None else tuple(a for a in self.attempts if a.id > ack.id)


@dataclass(frozen=True)
class Step:
    """One timeline row of an order."""

    id: int
    source: int | None
    dest: int
    trigger: str
    at: float  # the partner's clock
    cause: str = ""


@dataclass(frozen=True)
class OrderRecord:
    order_no: str
    status: int
    application_amount: int
    user_mobile: str = ""
    user_idcard: str = ""
    timeline: tuple[Step, ...] = ()

    def has(self, trigger: str) -> bool:
        return any(s.trigger == trigger for s in self.timeline)


@dataclass(frozen=True)
class Run:
    """Everything one partner did since its acceptance run started."""

    partner_token: str
    calls: tuple[Call, ...] = ()
    deliveries: tuple[Delivery, ...] = ()
    orders: tuple[OrderRecord, ...] = ()
    aes_key: str = ""  # to read each request's plaintext again (envelope.php_json)
    aes_iv: str = ""
    started_at: str | None = None  # ISO 8601; None: since the partner was created
    truncated: bool = False  # more records than the loader reads
    pruned: bool = False  # retention deleted the oldest records of the run


# The magic mobile suffixes of fixtures/scenarios.toml, named in the how-to texts.
DEFAULT_SUFFIXES = {
    "approve": "001",
    "approve_reduced": "002",
    "reject_review": "003",
    "reject_precheck": "004",
    "payout_fail_once": "005",
    "overdue": "006",
    "settle_on_time": "007",
    "reloan": "008",
    "review_stuck": "009",
    "payout_fail": "010",
}


@dataclass(frozen=True)
class Limits:
    """What the checks need from the settings (config.toml [callbacks], [conformance], the
    scenario rules of fixtures/scenarios.toml)."""

    callback_timeout: float = 10.0
    review_polls_per_minute: int = 6
    refusal_retry_after: float = 86400.0
    suffixes: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SUFFIXES))


# The lender endpoints and callbacks (docs/protocol.md §4, §6), from the protocol's table.
ENDPOINTS: tuple[tuple[str, str], ...] = tuple((s.number, s.path) for s in SPECS)
ENDPOINT_NUMBER = {path: number for number, path in ENDPOINTS}
PATH = {number: path for number, path in ENDPOINTS}
CALLBACK_NUMBER = {path: number for number, path, _ in CALLBACKS}

# Codes of docs/errors.md the checks read.
ENVELOPE_ERRORS = frozenset({10003, 10004, 10005})  # undecryptable, not_json, not_object
FIELD_ERRORS = frozenset({10006, 10007, 10008, 10010})  # a field missing, malformed, unknown
UNUSABLE = frozenset({10001, 10002}) | ENVELOPE_ERRORS | FIELD_ERRORS
NOT_OFFERED, WRONG_STATE, DUPLICATE_ORDER = 10009, 11002, 11003
UNSETTLED, NO_CARD, RECENTLY_REJECTED, NO_EXTENSION = 11004, 11006, 11007, 11008
ORDER_NOT_FOUND = 11001
PRE_PAYOUT = frozenset({80, 90, 100, 169})
# The sandbox names the order's status in a wrong_state answer ("... in status 110 ...").
STATUS_IN_MESSAGE = re.compile(r"\bstatus (\d{2,3})\b")
MAX_EVIDENCE = 20
