"""What the lender answers: the `data` of 02-18 and the bodies of callbacks 19-21, as models.

They document the protocol (the OpenAPI document is generated from them) and a test holds
every endpoint's real answer to its model, so the documentation cannot drift from the code.
Figures are whole rupiah; times are 'YYYY-MM-DD HH:MM:SS' in WIB (docs/protocol.md §7).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

TIME = "YYYY-MM-DD HH:MM:SS in WIB (UTC+7), docs/protocol.md §7"
IDR = "rupiah, whole"


class Data(BaseModel):
    """An answer's `data`: exactly these keys."""

    model_config = ConfigDict(extra="forbid")


class Empty(Data):
    """An empty object: {}."""


class LoanLevel(Data):
    amount: int = Field(description=IDR)
    term: list[int] = Field(description="terms offered")


class PrecheckData(Data):
    is_reloan: int = Field(description="1: the person has a settled loan here")
    loan_range: list[LoanLevel] = Field(description="the amount levels offered, with terms")
    term_unit: int = Field(description="1 days, 2 months")


class AmountData(Data):
    loan_range: list[LoanLevel]
    term_unit: int
    default_amount: int = Field(description=IDR)
    default_term: int


class InterestData(Data):
    interest_amount: int = Field(description=IDR)
    admin_amount: int = Field(description="deducted from the payout")
    actual_amount: int = Field(description="paid out")
    repay_amount: int = Field(description="amount + interest")
    expiry_time: str = Field(description=f"due date, {TIME}")


class BankItem(BaseModel):
    """action_type 1: a bank to bind; 2: a repayment method."""

    model_config = ConfigDict(extra="forbid")
    bank_code: str
    bank_name: str | None = Field(None, description="action_type 1")
    method_code: str | None = Field(None, description="action_type 2: what 15 takes")
    repay_method: int | None = Field(None, description="action_type 2: 1 bank VA, 2 store")


class BankListData(Data):
    banklist: list[BankItem]


class Card(Data):
    bank_code: str
    bank_card: str
    extra_info: str


class BindBankData(Data):
    order_no: str
    card_list: list[Card]


class ContractData(Data):
    contract_url: str = Field(description="a readable HTML contract page")
    contract_desc: str


class StatusData(Data):
    """12 / callback 19."""

    order_no: str
    order_status: int = Field(description="80 90 100 110 161 169 170 180 200")
    update_time: int = Field(description="unix seconds of the last status change")


class ApprovalData(Data):
    """13 / callback 20. Figures only once approved; `order_remark` says why otherwise."""

    order_no: str
    order_status: int
    order_remark: str = Field(description="reason or summary")
    approval_time: str | None = Field(None, description=f"approval moment, {TIME}")
    loan_time: str | None = Field(None, description=f"payout moment, {TIME}")
    approval_amount: int | None = Field(None, description=IDR)
    approval_term: int | None = None
    term_unit: int | None = Field(None, description="1 days, 2 months")
    interest_amount: int | None = Field(None, description=IDR)
    interest_rate: str | None = Field(None, description="per unit, e.g. 0.0006")
    actual_amount: int | None = Field(None, description="paid out: approval - admin")
    admin_amount: int | None = Field(None, description=IDR)
    repay_amount: int | None = Field(None, description="approval_amount + interest_amount")


class PlanData(Data):
    """14 / callback 21: the repayment plan at the time of the call."""

    order_no: str
    order_status: int
    loan_time: str = Field(description=TIME)
    loan_amount: int = Field(description=IDR)
    loan_term: int | None
    term_unit: int
    interest_amount: int = Field(description="interest of the period")
    interest_rate: str
    expiry_time: str = Field(description=f"due date, {TIME}")
    expiry_amount: int = Field(description="late fee so far")
    is_overdue: int = Field(description="0/1")
    overdue_days: int
    admin_amount: int = Field(description=IDR)
    repay_amount: int = Field(
        description="what settles the loan now (the paid amount once settled)"
    )
    url_repay: int = Field(description="1: url_info is a repayment page")
    url_info: str = Field(description="signed URL or ''")
    delay_repay: int = Field(description="1: an extension is possible")
    delay_status: int | None = Field(
        description="null never tried, 0 code pending, 1 paid, 2 expired"
    )


class RepayDetailData(Data):
    order_no: str
    repay_amount: int = Field(description=IDR)
    repay_code: str = Field(description="virtual account or store code")
    expire_time: str = Field(description=TIME)
    bank_code: str
    method_code: str
    merchant_name: str = Field(description="store name for repay_method 2")


class DelayRecord(Data):
    loan_amount: int
    delay_amount: int = Field(description="what the extension cost")
    delay_term: int
    term_unit: int = Field(description="of delay_term: 1 days, 2 months")
    delay_time: str = Field(description=TIME)
    expiry_time: str = Field(description=TIME)


class DelayListData(Data):
    order_no: str
    delay_times: int
    delay_list: list[DelayRecord]


class DelayQuoteData(Data):
    """17: what an extension costs now and where it moves the due date."""

    order_no: str
    loan_amount: int = Field(description=IDR)
    interest_amount: int = Field(description=IDR)
    expiry_amount: int = Field(description="late fee")
    admin_amount: int = Field(
        description="extension fee: principal x fee rate x delay_term, plus min_payment_topup"
    )
    delay_amount: int = Field(
        description="to pay for the extension: interest_amount + expiry_amount + admin_amount"
    )
    min_payment: int = Field(
        description="not in the spec: the smallest extension payment the lender takes (0: none)"
    )
    min_payment_topup: int = Field(
        description="not in the spec: the part of admin_amount that raises delay_amount to "
        "min_payment (0 when the interest, late fee and fee reach it)"
    )
    repay_amount: int = Field(description="to settle instead")
    expiry_time: str = Field(description=f"new due date, {TIME}")
    start_time: str = Field(description=TIME)
    end_time: str = Field(description=TIME)
    delay_times: int = Field(description="extensions so far")
    limit_times: int
    delay_term: list[int] = Field(description="extension terms offered")
    default_value: int
    term_unit: int = Field(description="the unit of the extension terms: 1 days, 2 months")


class DelayDetailData(Data):
    order_no: str
    repay_amount: int
    delay_amount: int
    delay_term: int
    term_unit: int = Field(description="of delay_term (the product's extension unit if none)")
    expiry_time: str = Field(description=TIME)
    delay_times: int
    limit_times: int


# path -> the model of its `data` (when `code` is 0)
DATA: dict[str, type[Data]] = {
    "/get-loan-precheck": PrecheckData,
    "/get-loan-amount": AmountData,
    "/get-loan-interest": InterestData,
    "/push-basic-info": Empty,
    "/push-supplement-info": Empty,
    "/get-bank-list": BankListData,
    "/push-bind-bank": Empty,
    "/get-bind-bank": BindBankData,
    "/get-loan-contract": ContractData,
    "/push-order-confirm": Empty,
    "/get-order-status": StatusData,
    "/get-approval-result": ApprovalData,
    "/get-repay-plan": PlanData,
    "/get-repay-detail": RepayDetailData,
    "/get-delay-list": DelayListData,
    "/get-delay-interest": DelayQuoteData,
    "/get-delay-detail": DelayDetailData,
}

# callback path -> the model of its body (the same figures as 12, 13 and 14)
CALLBACK_BODIES: dict[str, type[Data]] = {
    "/callback-order-status": StatusData,
    "/callback-approval-result": ApprovalData,
    "/callback-repay-plan": PlanData,
}
