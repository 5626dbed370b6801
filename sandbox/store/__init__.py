"""The store: the tables and the unit of work (SQLite by default, PostgreSQL for staging)."""

from .database import SCHEMA_VERSION, Store, StoreError
from .tables import (
    BankCard,
    Base,
    Callback,
    CallbackAttempt,
    ConformanceMark,
    DueEvent,
    ExtensionRow,
    FaultRule,
    JournalEntry,
    Order,
    Partner,
    Payment,
    ProductRow,
    RepayCode,
    SchemaMeta,
    TimelineRow,
)

__all__ = [
    "SCHEMA_VERSION",
    "BankCard",
    "Base",
    "Callback",
    "CallbackAttempt",
    "ConformanceMark",
    "DueEvent",
    "ExtensionRow",
    "FaultRule",
    "JournalEntry",
    "Order",
    "Partner",
    "Payment",
    "ProductRow",
    "RepayCode",
    "SchemaMeta",
    "Store",
    "StoreError",
    "TimelineRow",
]
