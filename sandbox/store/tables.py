"""The tables: everything the sandbox knows, as SQLAlchemy 2 declarative classes.

Partners, products, orders, timelines, due events, payment codes, the callback outbox and its
attempts, the request journal, fault rules — so nothing is lost on a crash or restart and
several processes can share one PostgreSQL database. Times are epoch seconds: "virtual" ones
on the partner's clock, "wall" ones on the host's.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Partner(Base):
    __tablename__ = "partners"
    partner_token: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    aes_key: Mapped[str] = mapped_column(String(200))
    aes_iv: Mapped[str] = mapped_column(String(200))
    callback_url: Mapped[str] = mapped_column(String(500), default="")
    encrypt_callbacks: Mapped[bool] = mapped_column(Boolean, default=True)
    callbacks_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    chaos: Mapped[dict[str, Any]] = mapped_column(default=dict)  # callback chaos settings
    clock_mode: Mapped[str] = mapped_column(String(10))
    clock_rate: Mapped[float] = mapped_column(Float, default=1.0)
    clock_anchor_wall: Mapped[float] = mapped_column(Float)
    clock_anchor_virtual: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)  # wall


class PartnerCredential(Base):
    """A partner's control token, as its SHA-256 only (core.tenancy): the token itself is
    shown once, when issued. Kept apart from `partners` (no foreign key): a global reset
    deletes partners, and a partner made again with the same token gets a new credential."""

    __tablename__ = "partner_credentials"
    partner_token: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float)  # wall


class ProductRow(Base):
    __tablename__ = "products"
    product_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict[str, Any]]  # the fixture, as JSON


# An open loan (core.lifecycle.OPEN, written out: the store does not import the core): one
# per person (NIK, and mobile) and partner, held by the database even for concurrent requests.
OPEN_LOAN = text("status IN (80, 90, 100, 169, 170, 180)")


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index(
            "ux_orders_open_nik",
            "partner_token",
            "user_idcard",
            unique=True,
            sqlite_where=OPEN_LOAN,
            postgresql_where=OPEN_LOAN,
        ),
        Index(
            "ux_orders_open_mobile",
            "partner_token",
            "user_mobile",
            unique=True,
            sqlite_where=OPEN_LOAN,
            postgresql_where=OPEN_LOAN,
        ),
        UniqueConstraint("partner_token", "order_no"),
        Index("ix_orders_person", "partner_token", "user_idcard"),
        Index("ix_orders_mobile", "partner_token", "user_mobile"),
        # GET /sandbox/orders, newest first, by partner and/or status (core.paging)
        Index("ix_orders_partner_id", "partner_token", "id"),
        Index("ix_orders_partner_status", "partner_token", "status", "id"),
        Index("ix_orders_status_id", "status", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    partner_token: Mapped[str] = mapped_column(String(64), ForeignKey("partners.partner_token"))
    order_no: Mapped[str] = mapped_column(String(32))
    product_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    user_mobile: Mapped[str] = mapped_column(String(20))
    user_idcard: Mapped[str] = mapped_column(String(20))
    user_name: Mapped[str] = mapped_column(String(100))
    is_reloan: Mapped[int] = mapped_column(Integer, default=0)
    application_amount: Mapped[int]
    application_term: Mapped[int]
    term_unit: Mapped[int]
    payload_hash: Mapped[str] = mapped_column(String(64))  # 05 idempotency
    basic_info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    supplement_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    device_ip: Mapped[str] = mapped_column(String(64), default="")
    scenario: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the decided outcome
    # figures fixed at approval
    approved_amount: Mapped[int | None] = mapped_column(Integer, nullable=True)
    approved_term: Mapped[int | None] = mapped_column(Integer, nullable=True)
    interest_amount: Mapped[int | None] = mapped_column(Integer, nullable=True)
    admin_amount: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remark: Mapped[str] = mapped_column(Text, default="")
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    payout_attempts: Mapped[int] = mapped_column(Integer, default=0)
    payout_error: Mapped[str] = mapped_column(String(200), default="")
    # loan (virtual epoch seconds)
    approval_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    loan_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    due_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    interest_due: Mapped[int] = mapped_column(Integer, default=0)  # interest of the current period
    extensions: Mapped[int] = mapped_column(Integer, default=0)
    settled_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    paid_amount: Mapped[int] = mapped_column(Integer, default=0)
    extension_paid: Mapped[int] = mapped_column(Integer, default=0)  # counts to the 100 % cap
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class BankCard(Base):
    __tablename__ = "bank_cards"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    bank_code: Mapped[str] = mapped_column(String(32))
    bank_card: Mapped[str] = mapped_column(String(32))
    user_name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float)


class TimelineRow(Base):
    __tablename__ = "timeline"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    from_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_status: Mapped[int]
    trigger: Mapped[str] = mapped_column(String(32))
    at: Mapped[float] = mapped_column(Float)  # virtual
    cause: Mapped[str] = mapped_column(String(200))


class DueEvent(Base):
    __tablename__ = "due_events"
    __table_args__ = (Index("ix_due_pending", "partner_token", "state", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    partner_token: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[float] = mapped_column(Float)  # virtual
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | done | void
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RepayCode(Base):
    __tablename__ = "repay_codes"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    partner_token: Mapped[str] = mapped_column(String(64))
    repay_type: Mapped[int]  # 1 repay, 2 extension
    delay_term: Mapped[int | None] = mapped_column(Integer, nullable=True)
    amount: Mapped[int]
    repay_method: Mapped[int]
    bank_code: Mapped[str] = mapped_column(String(32))
    method_code: Mapped[str] = mapped_column(String(16))
    merchant_name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(10), default="open")  # open | paid | void
    paid_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ExtensionRow(Base):
    __tablename__ = "extensions"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    loan_amount: Mapped[int]
    delay_amount: Mapped[int]
    delay_term: Mapped[int]
    term_unit: Mapped[int]
    delay_time: Mapped[float] = mapped_column(Float)  # paid at (virtual)
    start_time: Mapped[float] = mapped_column(Float)  # old due
    expiry_time: Mapped[float] = mapped_column(Float)  # new due
    repay_code: Mapped[str] = mapped_column(String(40))


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    repay_code: Mapped[str] = mapped_column(String(40))
    repay_type: Mapped[int]
    amount: Mapped[int]
    at: Mapped[float] = mapped_column(Float)  # virtual
    source: Mapped[str] = mapped_column(String(32))  # api | page | scenario


class Callback(Base):
    """The outbox: one row per callback to deliver (docs/protocol.md §6)."""

    __tablename__ = "callbacks"
    __table_args__ = (
        Index("ix_callbacks_due", "state", "next_attempt_at"),
        Index("ix_callbacks_order", "partner_token", "order_no"),
        # GET /sandbox/callbacks by partner (and state), newest first; retention per partner
        Index("ix_callbacks_partner_id", "partner_token", "id"),
        Index("ix_callbacks_partner_state", "partner_token", "state", "id"),
        # an order's deliveries (GET /sandbox/orders/{no}, the dashboard's order page)
        Index("ix_callbacks_order_id", "order_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    partner_token: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    order_no: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]]
    created_at: Mapped[float] = mapped_column(Float)  # virtual
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)  # wall: claimable from
    # virtual, on the partner's clock: when the next attempt is due (retries wait for the
    # clock: a manual clock's advance releases them); None once delivered or dead
    retry_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)  # wall: claimed by a worker
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class CallbackAttempt(Base):
    __tablename__ = "callback_attempts"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    callback_id: Mapped[int] = mapped_column(ForeignKey("callbacks.id"), index=True)
    at: Mapped[float] = mapped_column(Float)  # wall
    url: Mapped[str] = mapped_column(String(500))
    request_body: Mapped[str] = mapped_column(Text)  # as sent
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[str] = mapped_column(Text, default="")
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str] = mapped_column(Text, default="")


class JournalEntry(Base):
    __tablename__ = "journal"
    __table_args__ = (
        # GET /sandbox/journal by partner (and path), newest first; retention per partner
        Index("ix_journal_partner_id", "partner_token", "id"),
        Index("ix_journal_partner_path", "partner_token", "path", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    partner_token: Mapped[str] = mapped_column(String(64), default="")
    path: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)  # wall
    virtual_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    request_raw: Mapped[str] = mapped_column(Text)
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # decrypted
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    http_status: Mapped[int] = mapped_column(Integer, default=200)
    code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fault: Mapped[str] = mapped_column(String(200), default="")
    # The request's Content-Type header; None: not received over HTTP (the in-process harness)
    content_type: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ConformanceMark(Base):
    """Where a partner's acceptance run starts (POST /sandbox/partners/{token}/conformance/reset):
    the highest journal, callback and timeline ids then; the report reads only rows above them
    (docs/conformance.md). Deleting rows lowers the marks (`services.conformance.settle_marks`),
    since SQLite gives the next row the highest remaining id + 1."""

    __tablename__ = "conformance_marks"
    partner_token: Mapped[str] = mapped_column(
        String(64), ForeignKey("partners.partner_token"), primary_key=True
    )
    at: Mapped[float] = mapped_column(Float)  # wall
    virtual_at: Mapped[float] = mapped_column(Float)  # the partner's clock
    journal_id: Mapped[int] = mapped_column(Integer, default=0)
    callback_id: Mapped[int] = mapped_column(Integer, default=0)
    timeline_id: Mapped[int] = mapped_column(Integer, default=0)


class RetentionMark(Base):
    """The highest journal and callback ids of a partner that retention deleted
    (services.retention): an acceptance run that started below them lost its oldest records,
    and its report says so. Lowered like the conformance marks (`settle_marks`)."""

    __tablename__ = "retention_marks"
    partner_token: Mapped[str] = mapped_column(String(64), primary_key=True)
    journal_id: Mapped[int] = mapped_column(Integer, default=0)
    callback_id: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[float] = mapped_column(Float)  # wall: the last prune that deleted some


class FaultRule(Base):
    __tablename__ = "faults"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    partner_token: Mapped[str] = mapped_column(String(64), default="")  # "" = every partner
    path: Mapped[str] = mapped_column(String(64), default="")  # "" = every path
    rule: Mapped[dict[str, Any]]
    remaining: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
