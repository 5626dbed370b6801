"""The store: the tables and the unit of work (SQLite by default, PostgreSQL for staging)."""

from .database import Store, StoreError, transient
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
    PartnerCredential,
    Payment,
    ProductRow,
    RepayCode,
    TimelineRow,
)

__all__ = [
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
    "PartnerCredential",
    "Payment",
    "ProductRow",
    "RepayCode",
    "Store",
    "StoreError",
    "TimelineRow",
    "transient",
]
