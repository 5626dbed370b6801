"""Rows as plain objects: what the engine reads, changes and writes back with Core statements.

The hot paths (requests, due events) read a row into a record, change its attributes, and
`Unit.flush` writes back only the columns that changed — the work an ORM session does, without
its identity map and per-object bookkeeping (most of a request's cost before). A test keeps
each record's fields equal to its table's columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, ClassVar

from sqlalchemy import Table
from sqlalchemy.engine import Row

from .tables import Callback, DueEvent, Order, Partner


class Record:
    """A row's values as attributes, with the values it was read with (`changes`)."""

    TABLE: ClassVar[Table]
    _seen: tuple[Any, ...]

    _COLUMNS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        """The record's column names, in the table's order (computed once per class)."""
        if not cls.__dict__.get("_COLUMNS"):
            names = tuple(f.name for f in fields(cls) if not f.name.startswith("_"))  # type: ignore[arg-type]
            cls._COLUMNS = names
        return cls._COLUMNS

    @classmethod
    def select_columns(cls) -> list[Any]:
        """The table's columns this record holds, in its field order (`select(*...)`)."""
        return [cls.TABLE.c[name] for name in cls.columns()]

    @classmethod
    def load(cls, row: Row[Any]) -> Any:
        """A record from a row selected with `select_columns()` (the same order)."""
        values = tuple(row)
        rec = cls(*values)
        rec._seen = values
        return rec

    @classmethod
    def _values(cls) -> Callable[[Any], tuple[Any, ...]]:
        """A function from a record to its column values (operator.attrgetter: C speed)."""
        getter = cls.__dict__.get("_GETTER")
        if getter is None:
            getter = attrgetter(*cls.columns())
            cls._GETTER = getter  # type: ignore[attr-defined]
        return getter

    def changes(self) -> dict[str, Any]:
        """The columns whose values differ from what was read (all of them for a new record)."""
        now = self._values()(self)
        if now == self._seen:
            return {}
        names = self.columns()
        if not self._seen:
            return dict(zip(names, now, strict=True))
        return {n: v for n, v, old in zip(names, now, self._seen, strict=True) if v != old}

    def saved(self) -> None:
        """The current values are now what the database holds."""
        self._seen = self._values()(self)


@dataclass(eq=False)
class OrderRec(Record):
    TABLE: ClassVar[Table] = Order.__table__  # type: ignore[assignment]
    id: int
    partner_token: str
    order_no: str
    product_id: str
    status: int
    user_mobile: str
    user_idcard: str
    user_name: str
    is_reloan: int
    application_amount: int
    application_term: int
    term_unit: int
    payload_hash: str
    device_ip: str
    scenario: dict[str, Any]
    approved_amount: int | None
    approved_term: int | None
    interest_amount: int | None
    admin_amount: int | None
    remark: str
    confirmed: bool
    payout_attempts: int
    payout_error: str
    approval_time: float | None
    loan_time: float | None
    due_at: float | None
    interest_due: int
    extensions: int
    settled_at: float | None
    paid_amount: int
    extension_paid: int
    created_at: float
    updated_at: float
    _seen: tuple[Any, ...] = field(default=(), repr=False)


# An order's pushed data (05 basic_info, 06 supplement_info) is written once and read back
# only by 06's replay check: the record leaves it out, so no request decodes it needlessly.
ORDER_DATA_COLUMNS = ("basic_info", "supplement_info")


@dataclass(eq=False)
class PartnerRec(Record):
    TABLE: ClassVar[Table] = Partner.__table__  # type: ignore[assignment]
    partner_token: str
    name: str
    aes_key: str
    aes_iv: str
    callback_url: str
    encrypt_callbacks: bool
    callbacks_paused: bool
    chaos: dict[str, Any]
    clock_mode: str
    clock_rate: float
    clock_anchor_wall: float
    clock_anchor_virtual: float
    created_at: float
    _seen: tuple[Any, ...] = field(default=(), repr=False)


@dataclass(eq=False)
class EventRec(Record):
    TABLE: ClassVar[Table] = DueEvent.__table__  # type: ignore[assignment]
    id: int
    partner_token: str
    order_id: int
    kind: str
    due_at: float
    state: str
    data: dict[str, Any]
    _seen: tuple[Any, ...] = field(default=(), repr=False)


@dataclass(eq=False)
class CallbackRec(Record):
    TABLE: ClassVar[Table] = Callback.__table__  # type: ignore[assignment]
    id: int
    partner_token: str
    order_id: int | None
    order_no: str
    path: str
    body: dict[str, Any]
    created_at: float
    state: str
    attempts: int
    next_attempt_at: float
    retry_at: float | None
    lease_until: float
    last_error: str
    delivered_at: float | None
    _seen: tuple[Any, ...] = field(default=(), repr=False)
