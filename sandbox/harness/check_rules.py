"""What `check-lender` holds answers to: the envelope, each endpoint's fields, a refusal's shape."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

TIME_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
ENVELOPE_RULE, FIELDS_RULE = "docs/protocol.md §1", "docs/protocol.md §4"


# ---- what an answer's fields must look like (docs/protocol.md §4) ----


def _int(v: Any) -> bool:
    # amounts may come as numeric strings from PHP lenders: readable, so not a deviation
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and v.isdigit())


def _one_of(*values: int) -> Callable[[Any], bool]:
    return lambda v: _int(v) and int(v) in values


def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _time(v: Any) -> bool:
    return isinstance(v, str) and bool(TIME_TEXT.match(v))


def _url(v: Any) -> bool:
    return isinstance(v, str) and v.startswith(("http://", "https://"))


def _list_of(**fields: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        return (
            isinstance(v, list)
            and bool(v)
            and all(
                isinstance(x, dict)
                and all(name in x and ok(x[name]) for name, ok in fields.items())
                for x in v
            )
        )

    return check


def _ints(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(_int(x) for x in v)


Fields = dict[str, tuple[Callable[[Any], bool], str]]
LOAN_RANGE = (_list_of(amount=_int, term=_ints), "a non-empty list of {amount, term: [...]}")
UNIT = (_one_of(1, 2), "1 (days) or 2 (months)")
MONEY = (_int, "an amount in whole rupiah")
TIME = (_time, "YYYY-MM-DD HH:MM:SS")
PRECHECK: Fields = {
    "is_reloan": (_one_of(0, 1), "0 or 1"),
    "loan_range": LOAN_RANGE,
    "term_unit": UNIT,
}
AMOUNT: Fields = {
    "loan_range": LOAN_RANGE,
    "term_unit": UNIT,
    "default_amount": MONEY,
    "default_term": (_int, "a term"),
}
INTEREST: Fields = {
    "interest_amount": MONEY,
    "admin_amount": MONEY,
    "actual_amount": MONEY,
    "repay_amount": MONEY,
    "expiry_time": TIME,
}
BANKS: Fields = {
    "banklist": (
        _list_of(bank_code=_text, bank_name=_text),
        "a non-empty list of {bank_code, bank_name}",
    )
}
METHODS: Fields = {
    "banklist": (
        _list_of(bank_code=_text, method_code=_text, repay_method=_one_of(1, 2)),
        "a non-empty list of {bank_code, method_code, repay_method}",
    )
}
STATUS: Fields = {"order_no": (_text, "the order_no"), "order_status": (_int, "a status code")}
APPROVED: Fields = {
    **STATUS,
    "approval_amount": MONEY,
    "approval_term": (_int, "a term"),
    "term_unit": UNIT,
    "interest_amount": MONEY,
    "admin_amount": MONEY,
    "actual_amount": MONEY,
    "repay_amount": MONEY,
    "approval_time": TIME,
}
CARDS: Fields = {
    "order_no": (_text, "the order_no"),
    "card_list": (
        _list_of(bank_code=_text, bank_card=_text),
        "the bound account as {bank_code, bank_card}",
    ),
}
CONTRACT: Fields = {"contract_url": (_url, "an http(s) URL")}
PLAN: Fields = {
    "loan_time": TIME,
    "loan_amount": MONEY,
    "loan_term": (_int, "a term"),
    "term_unit": UNIT,
    "interest_amount": MONEY,
    "expiry_time": TIME,
    "expiry_amount": MONEY,
    "is_overdue": (_one_of(0, 1), "0 or 1"),
    "overdue_days": (_int, "days"),
    "repay_amount": MONEY,
}
REPAY_CODE: Fields = {
    "repay_amount": MONEY,
    "repay_code": (_text, "a payment code"),
    "expire_time": TIME,
}
DELAYS: Fields = {
    "delay_list": (lambda v: isinstance(v, list), "a list (empty before any extension)")
}
DELAY_DETAIL: Fields = {"repay_amount": MONEY, "expiry_time": TIME}
DELAY_QUOTE: Fields = {"delay_amount": MONEY, "expiry_time": TIME}  # 17


def field_problems(data: dict, fields: Fields) -> list[str]:
    """One line per field of `data` missing or not as `fields` says."""
    return [
        f"`{name}` should be {what}, got {data.get(name, '(missing)')!r}"
        for name, (ok, what) in fields.items()
        if name not in data or not ok(data[name])
    ]


# ---- what every answer, and every refusal, must look like (docs/protocol.md §1) ----


def message_of(doc: dict) -> str:
    """The answer's text, under either name lenders use."""
    return str(doc.get("message", doc.get("msg", "")))


def envelope_problems(doc: Any, status: int) -> list[str]:
    """What keeps a parsed answer from being a protocol answer (HTTP 200, code, text, data)."""
    if not isinstance(doc, dict):
        return [f"the answer is JSON but not an object: {type(doc).__name__}"]
    problems = [] if status == 200 else [f"HTTP {status} (answers are HTTP 200 with a code)"]
    code = doc.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        problems.append(f"`code` should be an integer, got {code!r}")
    if not isinstance(doc.get("message", doc.get("msg")), str):
        problems.append("no `message` (or `msg`) text")
    if "data" not in doc:
        problems.append("no `data`")
    return problems


def error_problems(doc: dict) -> list[str]:
    """What keeps a refusal from being one: a non-zero code, a text, `data` {}."""
    problems = []
    if doc["code"] == 0:
        problems.append("answered code 0 to a request that should be refused")
    if not message_of(doc).strip():
        problems.append("the refusal has no text")
    if doc.get("data") != {}:
        problems.append(f"`data` of a refusal should be {{}}, got {json.dumps(doc.get('data'))}")
    return problems
