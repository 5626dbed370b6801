"""What the control API's routes answer (/sandbox/*), as models.

They document the answers (the OpenAPI document is generated from them) and a test holds
every route's real answer to its model: every key a route sends is listed here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .lifecycle import Status


class Answer(BaseModel):
    """A documented answer: every key it has is listed (a test holds the routes to it)."""

    model_config = ConfigDict(extra="forbid")


TIME = "YYYY-MM-DD HH:MM:SS in WIB (docs/protocol.md §7)"


class DatabaseCheck(Answer):
    ok: bool
    latency_ms: float = Field(description="a trivial query, from this process")
    error: str | None


class SchedulerState(Answer):
    state: Literal["running", "stalled", "stopped", "off"] = Field(
        description="off: this app runs no scheduler (in-process harness); stalled: no tick "
        "for 10 ticks (and 30 s)"
    )
    last_tick: str | None = Field(description="ISO 8601: the due-events job last ran")
    last_prune: str | None = Field(description="ISO 8601: the retention last ran")
    pruned: dict[str, Any] | None = Field(description="what the last retention pass deleted")


class OutboxBacklog(Answer):
    pending: int = Field(description="deliveries waiting, counted up to 10 000")
    dead: int = Field(description="deliveries that ran out of attempts, counted up to 10 000")
    oldest_pending_seconds: float | None = Field(
        description="how long the most overdue pending delivery has been due (since it was "
        "enqueued, or since its retry fell due; a partner without a callback URL or with "
        "paused callbacks keeps its deliveries pending); null: nothing pending"
    )


class Health(Answer):
    status: Literal["ok", "degraded", "unavailable"] = Field(
        description="unavailable (HTTP 503): the database does not answer; degraded: the "
        "scheduler stalled"
    )
    database: str = Field(description="sqlite or postgresql")
    partners: int | None = Field(description="null when the database does not answer")
    database_check: DatabaseCheck
    scheduler: SchedulerState
    outbox: OutboxBacklog | None


class ClockState(Answer):
    """A partner's clock: its mode and its virtual time now."""

    mode: str
    rate: float = Field(description="virtual seconds per wall second (0 for manual)")
    now: str = Field(description="ISO 8601, WIB")
    now_unix: float
    offset_seconds: float = Field(description="virtual - wall")


class ClockView(ClockState):
    """The clock routes' answer: the clock and what is due next."""

    next_event: str | None = Field(description="when the next due event fires (ISO 8601)")
    events_fired: int | None = Field(None, description="advance / set: due events fired")


class ProductView(Answer):
    product_id: str
    product_name: str
    product_icon: str = Field(description="URL of the product's icon")
    product_desc: str
    amount_min: int
    amount_max: int
    interest_rate: str = Field(description="per term unit, e.g. 0.0006")
    gp_link: str = Field(description="Google Play link")
    term_unit: int = Field(description="1 days, 2 months")
    terms: list[int]


class PartnerView(Answer):
    partner_token: str
    name: str
    callback_url: str
    encrypt_callbacks: bool
    callbacks_paused: bool
    chaos: dict[str, Any]
    clock: ClockState
    products: list[ProductView]
    aes_key: str | None = Field(None, description="only with ?secrets=1 and on creation")
    aes_iv: str | None = Field(None, description="only with ?secrets=1 and on creation")


class PartnerCreated(PartnerView):
    """A new partner: its credentials, its control token and the lender's products."""

    control_token: str = Field(
        description="the partner's control token (Authorization: Bearer ...) for its own "
        "control routes and dashboard; answered this once only (the sandbox keeps its hash)"
    )


class ControlToken(Answer):
    """A partner's new control token (the one before stops working)."""

    partner_token: str
    control_token: str = Field(description="answered this once only")


class OrderSummary(Answer):
    order_no: str
    partner_token: str
    product_id: str
    status: int
    status_name: Literal[tuple(s.name.lower() for s in Status)]  # type: ignore[valid-type]
    user_name: str
    user_mobile: str
    application_amount: int
    application_term: int
    term_unit: int
    approved_amount: int | None
    scenario: Any = Field(description="the scenario rule's name (the detail: the whole outcome)")
    created_at: str = Field(description=TIME)
    updated_at: str = Field(description=TIME)
    due_at: str = Field(description=f"{TIME}; '' before payout")


class WaitResult(OrderSummary):
    reached: bool = Field(description="false: the timeout came first, or a callback died")


class TimelineEntry(Answer):
    from_: int | None = Field(alias="from")
    to: int
    trigger: str
    at: str = Field(description=TIME)
    cause: str


class CardView(Answer):
    bank_code: str
    bank_card: str
    active: bool


class CodeView(Answer):
    repay_code: str
    repay_type: int = Field(description="1 full repayment, 2 extension fee")
    amount: int
    method_code: str
    state: Literal["open", "paid", "void", "expired"]
    expire_time: str
    delay_term: int | None


class PaymentView(Answer):
    repay_code: str
    repay_type: int
    amount: int
    at: str
    source: str = Field(description="api | page | scenario | forced")


class ExtensionView(Answer):
    loan_amount: int
    delay_amount: int
    delay_term: int
    term_unit: int
    delay_time: str
    expiry_time: str


class PendingEvent(Answer):
    kind: str
    due_at: str


class OrderCallback(Answer):
    id: int
    path: str
    state: str
    attempts: int
    body: dict[str, Any]


class OrderDetail(OrderSummary):
    allowed_triggers: list[str]
    payout_error: str | None = Field(description="the last payout failure's reason code")
    approval: dict[str, Any] = Field(description="what 13 get-approval-result answers now")
    repay_plan: dict[str, Any] | None = Field(description="what 14 answers now (after payout)")
    timeline: list[TimelineEntry]
    bank_cards: list[CardView]
    repay_codes: list[CodeView]
    payments: list[PaymentView]
    extensions: list[ExtensionView]
    pending_events: list[PendingEvent]
    callbacks: list[OrderCallback]


class PaymentResult(Answer):
    repay_code: str
    amount: int
    repay_type: int
    order_no: str
    partner_token: str
    order_status: int
    paid_at: str = Field(description=TIME)


class AttemptView(Answer):
    id: int = Field(description="the attempt's id (acceptance-report evidence names it)")
    at: str | None = Field(description="wall time, ISO 8601")
    url: str
    request_body: str = Field(description="as sent")
    status_code: int | None
    response_body: str
    latency_ms: float
    error: str


class Delivery(Answer):
    id: int
    partner_token: str
    order_no: str
    path: str
    state: Literal["pending", "delivered", "dead"]
    waiting: str | None = Field(description="why a pending delivery has not gone out")
    attempts: int
    max_attempts: int
    created_at: str = Field(description=f"virtual: the transition's time, {TIME}")
    next_attempt_at: str | None = Field(
        description="wall time, ISO 8601; null once done, or while a retry waits for a manual "
        "clock to reach retry_at"
    )
    retry_at: str | None = Field(
        description=f"virtual: when the pending retry is due on the partner's clock, {TIME} "
        "(null for a first attempt and once done)"
    )
    delivered_at: str | None = Field(description="wall time, ISO 8601")
    last_error: str
    url: str | None
    body: dict[str, Any] = Field(description="decrypted")
    request_body: str | None = Field(description="as sent (or as it will be)")
    attempt_log: list[AttemptView]


class JournalEntry(Answer):
    id: int
    time: str = Field(description="wall time, ISO 8601")
    virtual_time: str | None = Field(description="the partner's clock, ISO 8601")
    partner_token: str
    path: str
    request: dict[str, Any] | None = Field(description="the decrypted payload")
    request_raw: str = Field(description="the body as received (first 64 KB)")
    response: dict[str, Any] | None
    http_status: int = Field(description="0: no answer (the connection was dropped)")
    code: int | None
    fault: str = Field(description='e.g. "latency 300ms", "http_error 503", "drop"')
    content_type: str | None = Field(
        description="the request's Content-Type header ('' when absent); null: not over HTTP "
        "(the in-process harness)"
    )


# ---- the acceptance report (docs/conformance.md) ----


class ConformanceEvidence(Answer):
    """What shows a failure: open `link` (a control route) to see it."""

    kind: Literal["journal", "attempt", "order"]
    id: int | str = Field(description="journal entry id, attempt id or order_no")
    delivery: int | None = Field(None, description="kind attempt: the delivery it belongs to")
    link: str = Field(description="e.g. /sandbox/journal/12, /sandbox/callbacks/3")
    note: str


class ConformanceCheck(Answer):
    id: str = Field(description="e.g. callbacks.duplicates (docs/conformance.md)")
    title: str
    title_zh: str
    spec: str = Field(description="where the rule is written")
    status: Literal["pass", "fail", "untested"]
    summary: str
    evidence: list[ConformanceEvidence] = Field(description="fail: what shows it (at most 20)")
    how_to_test: str = Field(description="what would exercise the check")
    details: dict[str, Any] = Field(description="per check, e.g. fields, more_evidence")


class ConformanceRun(Answer):
    started_at: str | None = Field(description="ISO 8601, wall; null: since the partner exists")
    requests: int
    callbacks: int
    orders: int
    truncated: bool = Field(description="only the oldest records were read (a very long run)")
    pruned: bool = Field(
        description="retention ([journal] in config.toml) deleted the run's oldest requests or "
        "callbacks: the checks judge what is left"
    )


class ConformanceSummary(Answer):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    status: Literal["pass", "fail", "incomplete"] = Field(
        description="fail: a check failed; incomplete: none failed, some untested; else pass"
    )
    total: int
    passed: int = Field(alias="pass")
    failed: int = Field(alias="fail")
    untested: int


class ConformanceReport(Answer):
    """The acceptance report (联调验收) of a partner's current run: one entry per check."""

    partner_token: str
    run: ConformanceRun
    summary: ConformanceSummary
    checks: list[ConformanceCheck]


class ConformanceRunStart(Answer):
    partner_token: str
    started_at: str = Field(description="ISO 8601, wall time")
    virtual_time: str = Field(description="the partner's clock then, ISO 8601")
    orders_kept: int


class Deleted(Answer):
    deleted: int
    partner_token: str | None = None


class Pruned(Answer):
    journal_deleted: int
    callbacks_deleted: int = Field(description="delivered or dead deliveries")
    attempts_deleted: int
    max_age_days: float = Field(description="the limit applied (0: none)")
    max_rows_per_partner: int = Field(description="the limit applied (0: none)")
    cutoff: str | None = Field(description="ISO 8601: older went; null without an age limit")
    busy: bool = Field(description="another process was pruning: this pass left it the work")


class ResetResult(Answer):
    reset: str = Field(description="the partner's token, or 'all'")
    orders_deleted: int


class Encrypted(Answer):
    encode_data: str
    plaintext: str = Field(description="what was encrypted")
    envelope: dict[str, str] | None = Field(None, description="ready to POST, with a partner")


class Decrypted(Answer):
    data: Any
    plaintext: str


class PostmanCollection(Answer):
    """A Postman Collection v2.1 document (Apifox imports it): the requests 02-18 with example
    payloads, a whole loan in order, the scripts that encrypt like PHP, the variables."""

    info: dict[str, Any]
    item: list[dict[str, Any]]
    event: list[dict[str, Any]]
    variable: list[dict[str, Any]]


class ControlErrorBody(Answer):
    """Every 4xx of /sandbox: never a 500 for bad input."""

    code: int = Field(description="the catalog code (docs/errors.md)")
    error: str = Field(description="its name")
    message: str
