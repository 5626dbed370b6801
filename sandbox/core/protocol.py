"""The partner API's endpoints as one table: number, path, request model, summary (§4 of
docs/protocol.md).

This is the protocol, not the lender: `services.endpoints` pairs each entry with the handler
that implements it, the web layer routes them, and the OpenAPI document describes them.
Callbacks 19-21 (the lender calling the aggregator) are listed in `CALLBACKS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import validation as v


@dataclass(frozen=True)
class Spec:
    """One lender endpoint of the partner API."""

    number: str
    path: str
    model: type[v.Req]
    summary: str

    @property
    def name(self) -> str:
        return self.path.strip("/")


SPECS: tuple[Spec, ...] = (
    Spec(
        "02",
        "/get-loan-precheck",
        v.PrecheckReq,
        "Can this person borrow? Offered amounts/terms and the reloan flag.",
    ),
    Spec("03", "/get-loan-amount", v.AmountReq, "Amount/term ranges with defaults."),
    Spec(
        "04",
        "/get-loan-interest",
        v.InterestReq,
        "Trial calculation: interest, admin fee, payout, repay amount, due date.",
    ),
    Spec("05", "/push-basic-info", v.BasicInfoReq, "First push: creates the order (status 80)."),
    Spec(
        "06",
        "/push-supplement-info",
        v.SupplementReq,
        "Second push: KYC details; review starts (90).",
    ),
    Spec(
        "07",
        "/get-bank-list",
        v.BankListReq,
        "action_type 1: banks for binding; 2: repayment methods.",
    ),
    Spec("08", "/push-bind-bank", v.BindBankReq, "Bind (or re-bind) the payout bank account."),
    Spec("09", "/get-bind-bank", v.OrderReq, "The bound account."),
    Spec(
        "10",
        "/get-loan-contract",
        v.OrderReq,
        "Contract URL (a readable HTML page served by the sandbox).",
    ),
    Spec(
        "11", "/push-order-confirm", v.ConfirmReq, "Borrower confirms amount/term; payout starts."
    ),
    Spec("12", "/get-order-status", v.OrderReq, "Current status and last update time."),
    Spec(
        "13",
        "/get-approval-result",
        v.OrderReq,
        "Reviewing / rejected (reason) / approved (figures).",
    ),
    Spec(
        "14",
        "/get-repay-plan",
        v.OrderReq,
        "Repayment plan: due date, amounts, overdue, extension.",
    ),
    Spec(
        "15",
        "/get-repay-detail",
        v.RepayDetailReq,
        "Issue a payment code: full repayment (repay_type 1) or extension fee (2).",
    ),
    Spec("16", "/get-delay-list", v.OrderReq, "Extension records."),
    Spec("17", "/get-delay-interest", v.DelayInterestReq, "Extension trial calculation."),
    Spec("18", "/get-delay-detail", v.OrderReq, "The current/last extension."),
)
PATHS: tuple[str, ...] = tuple(s.path for s in SPECS)
BY_PATH: dict[str, Spec] = {s.path: s for s in SPECS}

# docs/protocol.md §1 ruling: the spec says `msg` for 09, 10, 11 and 16 and `message` elsewhere.
MSG_PATHS = frozenset(
    {"/get-bind-bank", "/get-loan-contract", "/push-order-confirm", "/get-delay-list"}
)

# 19-21: what the lender pushes to the partner's callback URL (docs/protocol.md §6).
CALLBACKS: tuple[tuple[str, str, str], ...] = (
    ("19", "/callback-order-status", "Every status change."),
    ("20", "/callback-approval-result", "The review's decision: approved (figures) or rejected."),
    (
        "21",
        "/callback-repay-plan",
        "The repayment plan after payout, extension, overdue, settlement.",
    ),
)
# The longest callback base URL a partner may set: with the longest callback path after it,
# it must fit the 500 characters each attempt's URL is stored in (store/tables.py).
CALLBACK_URL_MAX = 500 - max(len(path) for _, path, _ in CALLBACKS)
