"""Our loans, as the lender's answers and callbacks told us (in memory: swap in your database)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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


class StoreUnavailable(Exception):
    """The database could not take the write (a lock, a failover): the caller should retry."""


@dataclass
class Loan:
    order_no: str
    name: str
    mobile: str
    amount: int
    term: int
    status: int = 80
    updated: int = 0  # the lender's update_time of `status`
    remark: str = ""
    approved_amount: int | None = None
    repay_amount: int | None = None  # owed now, from the last repay plan
    due: str | None = None
    overdue_days: int = 0
    late_fee: int = 0
    history: list[int] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {**asdict(self), "status_name": STATUS_NAMES.get(self.status, str(self.status))}


class Loans:
    def __init__(self) -> None:
        self._loans: dict[str, Loan] = {}

    def add(self, loan: Loan) -> Loan:
        self._loans[loan.order_no] = loan
        return loan

    def get(self, order_no: str) -> Loan | None:
        return self._loans.get(order_no)

    def record_status(self, order_no: str, status: int, updated: int) -> None:
        """Callback 19. Deliveries are at-least-once and may come late: keep the newest."""
        loan = self._loans[order_no]
        if updated < loan.updated or (updated == loan.updated and status == loan.status):
            return
        loan.status, loan.updated = status, updated
        loan.history.append(status)

    def record_approval(self, order_no: str, result: dict[str, Any]) -> None:
        """Callback 20: the review's decision."""
        loan = self._loans[order_no]
        loan.remark = result.get("order_remark", "")
        loan.approved_amount = result.get("approval_amount")

    def record_plan(self, order_no: str, plan: dict[str, Any]) -> None:
        """Callback 21: payout, overdue, extension, settlement."""
        loan = self._loans[order_no]
        loan.repay_amount, loan.due = plan["repay_amount"], plan["expiry_time"]
        loan.overdue_days, loan.late_fee = plan["overdue_days"], plan["expiry_amount"]
