"""`lender-sandbox check-lender`: the partner API's protocol checks run against any lender that
claims to implement it — the sandbox included (docs/conformance.md "Checking a lender").

By default only what changes nothing: the envelope, 02-04, 07 and the shape of error
answers. With `flow` and a test borrower, a whole loan 05-18 — which creates a real order on
that lender. Client-side only: every request goes through `harness.client.LenderClient`; each
answer is judged against docs/protocol.md, and each deviation names the rule it breaks.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from ..core.samples import SampleOrder
from .check_borrower import Borrower
from .check_report import DEVIATION, NOTE, OK, Finding, LenderCheck
from .check_rules import (
    AMOUNT,
    APPROVED,
    BANKS,
    CARDS,
    CONTRACT,
    DELAY_DETAIL,
    DELAY_QUOTE,
    DELAYS,
    ENVELOPE_RULE,
    FIELDS_RULE,
    INTEREST,
    METHODS,
    PLAN,
    PRECHECK,
    REPAY_CODE,
    STATUS,
    Fields,
    envelope_problems,
    error_problems,
    field_problems,
    message_of,
)
from .client import LenderClient, endpoint_path

__all__ = [
    "DEVIATION",
    "NOTE",
    "OK",
    "Borrower",
    "Checker",
    "Finding",
    "LenderCheck",
    "Stop",
    "Unreachable",
    "check_lender",
]

PATHS = {
    "02": "get-loan-precheck",
    "03": "get-loan-amount",
    "04": "get-loan-interest",
    "05": "push-basic-info",
    "06": "push-supplement-info",
    "07": "get-bank-list",
    "08": "push-bind-bank",
    "09": "get-bind-bank",
    "10": "get-loan-contract",
    "11": "push-order-confirm",
    "12": "get-order-status",
    "13": "get-approval-result",
    "14": "get-repay-plan",
    "15": "get-repay-detail",
    "16": "get-delay-list",
    "17": "get-delay-interest",
    "18": "get-delay-detail",
}


class Stop(Exception):
    """The flow cannot go on (a refusal or a deviation already recorded says why)."""


class Unreachable(Exception):
    """Not one answer came back: nothing to judge (wrong URL, nothing listening)."""


# ---- the checker ----


class Checker:
    """Runs the checks through one `LenderClient`; `run()` returns a `LenderCheck`."""

    def __init__(
        self,
        client: LenderClient,
        *,
        product_id: str = "1001",
        today: date,
        borrower: Borrower | None = None,
        order_no: str | None = None,
        poll_interval: float = 5.0,
        timeout: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client, self.product_id, self.today = client, product_id, today
        self.borrower = borrower or Borrower.make(today=today)
        self.order_no = order_no or "CHK" + secrets.token_hex(8).upper()
        self.poll_interval, self.timeout, self.sleep = poll_interval, timeout, sleep
        self.result = LenderCheck(client.base_url, client.partner_token)
        self.offer = (0, 0, 0)  # amount, term, unit the lender offered (02/03)
        self.answered = False  # has any answer come back at all?

    # ---- recording ----

    def record(self, step: str, level: str, message: str, rule: str = "") -> None:
        self.result.findings.append(Finding(step, level, message, rule))

    @staticmethod
    def label(number: str) -> str:
        return f"{number} {endpoint_path(PATHS[number])}"

    # ---- one exchange ----

    def exchange(
        self, number: str, payload: dict | None = None, *, step: str = "", body: bytes | None = None
    ) -> dict | None:
        """POST (the payload enveloped, or `body` as it is); the answer parsed with `data`
        decrypted if it was, or None after recording why it is not a protocol answer."""
        step = step or self.label(number)
        raw_body = (
            body if body is not None else json.dumps(self.client.envelope(payload or {})).encode()
        )
        try:
            status, raw = self.client.post_raw(PATHS[number], raw_body)
        except Exception as e:  # a dropped connection, a timeout: the lender did not answer
            if not self.answered:
                raise Unreachable(
                    f"no lender answers at {self.client.base_url} ({type(e).__name__}: {e})"
                ) from None
            self.record(step, DEVIATION, f"no answer: {type(e).__name__}: {e}", ENVELOPE_RULE)
            return None
        self.answered = True
        return self._envelope(step, status, raw)

    def _envelope(self, step: str, status: int, raw: bytes) -> dict | None:
        text = raw.decode("utf-8", "replace")
        try:
            doc = json.loads(text)
        except ValueError:
            self.record(
                step,
                DEVIATION,
                f"the answer is not JSON (HTTP {status}): {text[:80]!r}",
                ENVELOPE_RULE,
            )
            return None
        problems = envelope_problems(doc, status)
        if problems:
            self.record(step, DEVIATION, "; ".join(problems), ENVELOPE_RULE)
            return None
        data = doc.get("data")
        if isinstance(data, str) and data:
            try:
                doc["data"] = self.client.decrypt(data)
            except ValueError:
                self.record(
                    step,
                    DEVIATION,
                    "`data` is a string that does not decrypt with the partner's key and IV",
                    "docs/protocol.md §1",
                )
                return None
        return doc

    def data(
        self,
        number: str,
        payload: dict,
        fields: Fields,
        *,
        step: str = "",
        refusal: str = NOTE,
        quiet: bool = False,
    ) -> dict | None:
        """The `data` of a successful answer, its fields checked; None when refused (recorded
        at level `refusal`) or not a protocol answer. `quiet`: a success is not recorded."""
        step = step or self.label(number)
        doc = self.exchange(number, payload, step=step)
        if doc is None:
            return None
        if doc["code"] != 0:
            self.record(
                step,
                refusal,
                f"answered code {doc['code']}: {message_of(doc)}",
                FIELDS_RULE if refusal == DEVIATION else "",
            )
            return None
        data = doc.get("data")
        if not isinstance(data, dict):
            self.record(
                step, DEVIATION, f"`data` is {type(data).__name__}, not an object", ENVELOPE_RULE
            )
            return None
        wrong = field_problems(data, fields)
        if wrong:
            self.record(step, DEVIATION, "; ".join(wrong), FIELDS_RULE)
            return None
        if not quiet:
            self.record(step, OK, "code 0" + (", every field as specified" if fields else ""))
        return data

    def need(self, value: dict | None, why: str) -> dict:
        if value is None:
            raise Stop(why)
        return value

    # ---- the non-destructive checks ----

    def run(self, flow: bool = False) -> LenderCheck:
        self.basics()
        self.errors()
        if flow:
            try:
                self.flow()
            except Stop as e:
                self.record("flow", NOTE, f"stopped: {e}")
        return self.result

    def basics(self) -> None:
        b, pid = self.borrower, self.product_id
        person = {"product_id": pid, "user_mobile": b.mobile, "user_idcard": b.nik}
        pre = self.data("02", {**person, "user_name": b.name}, PRECHECK)
        # 02 may refuse a borrower (a note); once it accepted one, 03 and 04 refusing the same
        # borrower the amounts 02 offered is a deviation
        then = DEVIATION if pre else NOTE
        amount = self.data("03", person, AMOUNT, refusal=then)
        offered = pre or amount
        if offered:
            first = offered["loan_range"][0]
            unit = int(offered["term_unit"])
            self.offer = (int(first["amount"]), int(first["term"][0]), unit)
            self.interest(person, refusal=then)
        self.data(
            "07",
            {"product_id": pid, "action_type": 1},
            BANKS,
            step="07 /get-bank-list (banks)",
            refusal=DEVIATION,
        )
        self.data(
            "07",
            {"product_id": pid, "action_type": 2},
            METHODS,
            step="07 /get-bank-list (methods)",
            refusal=DEVIATION,
        )

    def interest(self, person: dict, refusal: str) -> None:
        amount, term, unit = self.offer
        q = self.data(
            "04",
            {**person, "application_amount": amount, "application_term": term, "term_unit": unit},
            INTEREST,
            refusal=refusal,
        )
        if q is None:
            return
        admin, interest = int(q["admin_amount"]), int(q["interest_amount"])
        if int(q["actual_amount"]) != amount - admin or int(q["repay_amount"]) != amount + interest:
            self.record(
                "04 /get-loan-interest",
                NOTE,
                f"figures for {amount}: actual {q['actual_amount']} (amount - admin = "
                f"{amount - admin}), repay {q['repay_amount']} (amount + interest = "
                f"{amount + interest}): not the formulas of docs/protocol.md §7",
            )

    def errors(self) -> None:
        """Refusals must still be protocol answers: HTTP 200, a non-zero code, a text, `data` {}."""
        pid, env = self.product_id, self.client.envelope
        probes = [
            (
                "unknown partner",
                "02",
                json.dumps({**env({"product_id": pid}), "partner_token": "check-lender-nobody"}),
            ),
            (
                "undecryptable",
                "02",
                json.dumps(
                    {
                        "partner_token": self.client.partner_token,
                        "encode_data": "bm90IGVuY3J5cHRlZCBhdCBhbGw=",
                    }
                ),
            ),
            ("missing field", "02", json.dumps(env({"product_id": pid}))),
            (
                "unknown order",
                "12",
                json.dumps(env({"product_id": pid, "order_no": "CHECKLENDER0000000000"})),
            ),
        ]
        for name, number, body in probes:
            step = f"errors: {name}"
            doc = self.exchange(number, step=step, body=body.encode())
            if doc is None:
                continue
            problems = error_problems(doc)
            if problems:
                self.record(step, DEVIATION, "; ".join(problems), "docs/protocol.md §1")
            else:
                self.record(step, OK, f"code {doc['code']}: {message_of(doc)[:60]}")

    # ---- the whole loan (creates an order) ----

    def flow(self) -> None:
        amount, term, unit = self.offer
        if not amount:
            raise Stop("no amount was offered (02/03), so no order can be pushed")
        o = self.borrower.order(self.today, self.order_no, self.product_id, amount, term, unit)
        self.need(self.data("05", o.basic_info(), {}, refusal=DEVIATION), "05 failed")
        self.need(self.data("06", o.supplement_info(), {}, refusal=DEVIATION), "06 failed")
        approval = self.wait("13", o, lambda d: d.get("order_status") not in (80, 90, "80", "90"))
        if int(approval["order_status"]) != 100:
            raise Stop(
                f"the review answered {approval['order_status']}: "
                f"{approval.get('order_remark', '')}"
            )
        self.need(
            self.data("13", o.order(), APPROVED, step="13 (approved)", refusal=DEVIATION),
            "13 is not an approval",
        )
        self.bind(o)
        self.need(self.data("10", o.order(), CONTRACT, refusal=DEVIATION), "10 failed")
        self.need(
            self.data(
                "11",
                o.confirm(int(approval["approval_amount"]), int(approval["approval_term"])),
                {},
                refusal=DEVIATION,
            ),
            "11 failed",
        )
        paid = self.wait("12", o, lambda d: d.get("order_status") not in (100, "100"))
        if int(paid["order_status"]) != 170:
            raise Stop(f"the payout ended in status {paid['order_status']}")
        self.repayment(o)

    def bind(self, o: SampleOrder) -> None:
        banks = self.need(
            self.data(
                "07",
                {"product_id": self.product_id, "action_type": 1},
                BANKS,
                step="07 (banks, flow)",
                refusal=DEVIATION,
            ),
            "07 failed",
        )
        codes = [b["bank_code"] for b in banks["banklist"]]
        if o.person.bank_code not in codes:
            raise Stop(
                f"the borrower's bank {o.person.bank_code} is not in 07's list "
                f"({', '.join(codes)}): give --bank-code and --bank-card"
            )
        self.need(self.data("08", o.bind_bank(), {}, refusal=DEVIATION), "08 failed")
        cards = self.need(self.data("09", o.order(), CARDS, refusal=DEVIATION), "09 failed")
        if not any(c["bank_card"] == o.person.bank_account for c in cards["card_list"]):
            self.record(
                "09 /get-bind-bank", DEVIATION, "the bound account is not in card_list", FIELDS_RULE
            )

    def repayment(self, o: SampleOrder) -> None:
        plan = self.need(self.data("14", o.order(), PLAN, refusal=DEVIATION), "14 failed")
        methods = self.need(
            self.data(
                "07",
                {"product_id": self.product_id, "action_type": 2},
                METHODS,
                step="07 (methods, flow)",
                refusal=DEVIATION,
            ),
            "07 failed",
        )
        m = methods["banklist"][0]
        code = self.data(
            "15",
            o.repay_detail(
                1, method_code=str(m["method_code"]), repay_method=int(m["repay_method"])
            ),
            REPAY_CODE,
            refusal=DEVIATION,
        )
        if code is not None and int(code["repay_amount"]) != int(plan["repay_amount"]):
            self.record(
                "15 /get-repay-detail",
                NOTE,
                f"repay_amount {code['repay_amount']} differs from 14's {plan['repay_amount']}",
            )
        self.data("16", o.order(), DELAYS, refusal=DEVIATION)
        self.data("17", o.order(), DELAY_QUOTE)  # may refuse
        self.data("18", o.order(), DELAY_DETAIL, refusal=DEVIATION)

    def wait(self, number: str, o: SampleOrder, done: Callable[[dict], bool]) -> dict:
        """Poll `number` (12 or 13) every poll_interval until `done`; Stop after timeout."""
        waited = 0.0
        while True:
            d = self.need(
                self.data(
                    number,
                    o.order(),
                    STATUS,
                    refusal=DEVIATION,
                    quiet=True,
                    step=f"{self.label(number)} (polling)",
                ),
                f"{number} failed",
            )
            if done(d):
                self.record(
                    f"{self.label(number)} (polling)",
                    OK,
                    f"order_status {d['order_status']} after {waited:g}s",
                )
                return d
            if waited >= self.timeout:
                raise Stop(f"{number}: still {d['order_status']} after {waited:g}s")
            self.sleep(self.poll_interval)
            waited += self.poll_interval


def check_lender(
    client: LenderClient, *, today: date, flow: bool = False, **options: Any
) -> LenderCheck:
    """Run the checks against the lender behind `client` (see `Checker` for the options)."""
    return Checker(client, today=today, **options).run(flow=flow)
