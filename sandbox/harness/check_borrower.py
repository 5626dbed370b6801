"""The test borrower of `check-lender --flow`: given, or made with an approving mobile."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import date

from ..core.people import make_person
from ..core.samples import SampleOrder


@dataclass(frozen=True)
class Borrower:
    """The test borrower of a flow; a generated one gets the sandbox's approving suffix."""

    name: str
    mobile: str
    nik: str
    bank_code: str
    bank_card: str

    @classmethod
    def make(
        cls,
        *,
        today: date,
        seed: str | None = None,
        name: str | None = None,
        mobile: str | None = None,
        nik: str | None = None,
        bank_code: str | None = None,
        bank_card: str | None = None,
    ) -> Borrower:
        p = make_person(seed or secrets.token_hex(8), today=today)
        return cls(
            name or p.name,
            mobile or p.mobile[:-3] + "001",
            nik or p.nik,
            bank_code or p.bank_code,
            bank_card or p.bank_account,
        )

    def order(
        self, today: date, order_no: str, product_id: str, amount: int, term: int, unit: int
    ) -> SampleOrder:
        p = make_person(self.nik, today=today)
        p = replace(
            p,
            name=self.name,
            mobile=self.mobile,
            nik=self.nik,
            bank_code=self.bank_code,
            bank_account=self.bank_card,
        )
        return SampleOrder(order_no, p, product_id, amount, term, unit)
