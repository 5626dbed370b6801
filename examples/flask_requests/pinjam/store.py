"""Our loans in SQLite, as the lender's answers and callbacks told us."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

STATUS_NAMES = {
    80: "submitted",
    90: "in_review",
    100: "approved",
    110: "rejected",
    161: "cancelled",
    169: "payout_failed",
    170: "repaying",
    180: "overdue",
    200: "settled",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS loans (
    order_no TEXT PRIMARY KEY, name TEXT NOT NULL, mobile TEXT NOT NULL,
    amount INTEGER NOT NULL, term INTEGER NOT NULL,
    status INTEGER NOT NULL DEFAULT 80, updated INTEGER NOT NULL DEFAULT 0,
    remark TEXT NOT NULL DEFAULT '', approved_amount INTEGER, repay_amount INTEGER, due TEXT,
    overdue_days INTEGER NOT NULL DEFAULT 0, late_fee INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS history (
    order_no TEXT NOT NULL REFERENCES loans, status INTEGER NOT NULL, updated INTEGER NOT NULL,
    UNIQUE (order_no, status, updated));
"""


class Store:
    def __init__(self, path: str = ":memory:"):
        # Callbacks may arrive on another thread than the request that created the loan.
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def _write(self, sql: str, *params: Any) -> None:
        with self._lock, self.db:
            self.db.execute(sql, params)

    def add(self, order_no: str, name: str, mobile: str, amount: int, term: int) -> None:
        self._write(
            "INSERT INTO loans (order_no, name, mobile, amount, term) VALUES (?,?,?,?,?)",
            order_no,
            name,
            mobile,
            amount,
            term,
        )

    def get(self, order_no: str) -> dict[str, Any] | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM loans WHERE order_no = ?", (order_no,)).fetchone()
            history = [
                r[0]
                for r in self.db.execute(
                    "SELECT status FROM history WHERE order_no = ? ORDER BY updated, rowid",
                    (order_no,),
                )
            ]
        if row is None:
            return None
        return {
            **dict(row),
            "status_name": STATUS_NAMES.get(row["status"], str(row["status"])),
            "history": history,
        }

    def record_status(self, order_no: str, status: int, updated: int) -> None:
        """Callback 19. Deliveries are at-least-once and may come late: keep the newest."""
        with self._lock, self.db:
            seen = self.db.execute(
                "INSERT OR IGNORE INTO history VALUES (?,?,?)", (order_no, status, updated)
            ).rowcount
            if seen:
                self.db.execute(
                    "UPDATE loans SET status = ?, updated = ? WHERE order_no = ? AND updated <= ?",
                    (status, updated, order_no, updated),
                )

    def record_approval(self, order_no: str, result: dict[str, Any]) -> None:
        """Callback 20: the review's decision."""
        self._write(
            "UPDATE loans SET remark = ?, approved_amount = ? WHERE order_no = ?",
            result.get("order_remark", ""),
            result.get("approval_amount"),
            order_no,
        )

    def record_plan(self, order_no: str, plan: dict[str, Any]) -> None:
        """Callback 21: payout, overdue, extension, settlement."""
        self._write(
            "UPDATE loans SET repay_amount = ?, due = ?, overdue_days = ?, late_fee = ? "
            "WHERE order_no = ?",
            plan["repay_amount"],
            plan["expiry_time"],
            plan["overdue_days"],
            plan["expiry_amount"],
            order_no,
        )
