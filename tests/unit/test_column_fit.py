"""Every limit of a request model fits the column its value is stored in (store/tables.py).

A value a model accepts must be storable on both backends: a string no longer than its
VARCHAR, an integer inside its column type, 32 bits for Integer on PostgreSQL (SQLite takes
64), 64 for BigInteger. Otherwise PostgreSQL refuses the row and the request is a 500 (a
620-character callback_url, a forced approve of 2**40 rupiah were). A field meets its columns
by name (`order_no` -> orders.order_no, callbacks.order_no), by ALSO (stored under another
name), or is declared UNSTORED with the reason; a new field must be one of the three.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any, Literal, get_args, get_origin

import pytest
from annotated_types import Ge, Gt, Le, Lt, MaxLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from sqlalchemy import BigInteger, Column, Integer, SmallInteger, String

from sandbox.core import control_models as m
from sandbox.core import faultrules as f
from sandbox.core import validation as v
from sandbox.core.protocol import CALLBACKS, SPECS
from sandbox.core.settings import PartnerFixture
from sandbox.store.tables import Base

INT_BITS = {SmallInteger: 16, Integer: 32, BigInteger: 64}  # PostgreSQL's widths

QUERIES = [c for c in vars(m).values() if inspect.isclass(c) and issubclass(c, m.Query)]
RULE_KINDS = [c for c in vars(f).values() if inspect.isclass(c) and issubclass(c, f.RuleBase)]
# Fields stored in a column of another name.
ALSO: dict[tuple[type, str], list[str]] = {
    (m.Transition, "amount"): ["orders.approved_amount"],
    (m.Transition, "reason"): ["orders.payout_error"],  # fail_payout (reject: remark, TEXT)
    (m.Payment, "repay_code"): ["repay_codes.code"],
    (m.Transition, "trigger"): ["timeline.trigger"],
    **{(k, "count"): ["faults.remaining"] for k in RULE_KINDS},
}
# Whole models, or single fields, whose values meet no column as given.
UNSTORED: dict[type | tuple[type, str], str] = {
    v.BasicInfo: "kept inside orders.basic_info (JSON)",
    v.SupplementInfo: "kept inside orders.supplement_info (JSON)",
    v.Area: "kept inside orders.supplement_info (JSON)",
    v.Emerg: "kept inside orders.supplement_info (JSON)",
    m.CodecChoice: "the envelope tools store nothing",
    m.Encrypt: "the envelope tools store nothing",
    m.Decrypt: "the envelope tools store nothing",
    m.ClockAdvance: "read as a duration; the clock stores a float",
    m.ClockSet: "read as an instant; the clock stores a float",
    (v.BankListReq, "action_type"): "chooses the list answered",
    (v.BasicInfoReq, "basic_info"): "orders.basic_info (JSON)",
    (v.BasicInfoReq, "order_info"): "its fields are checked on OrderInfo",
    (v.SupplementReq, "supplement_info"): "orders.supplement_info (JSON)",
    (v.SupplementReq, "order_info"): "its fields are checked on OrderInfoSupplement",
    **{
        (q, name): "a page of a list: its size or cursor"
        for q in QUERIES
        for name in ("limit", "cursor")
        if name in q.model_fields
    },
    (m.SecretsQuery, "secrets"): "a flag",
    (m.Reset, "all"): "a flag: which partners are wiped",
    (PartnerFixture, "control_token"): "stored as its SHA-256 (partner_credentials.token_hash)",
    (m.Prune, "max_rows_per_partner"): "a bound for this pruning pass, compared with counts",
    (m.WaitQuery, "callback"): "what to wait for",
    (m.WaitQuery, "timeout"): "seconds to wait",
    (m.PartnerPatch, "callbacks_paused"): "partners.callbacks_paused (BOOLEAN)",
    **{
        (k, name): "inside faults.rule (JSON)"
        for k in RULE_KINDS
        for name in k.model_fields
        if name not in ("partner_token", "path", "order_no", "count")
    },
}


def columns() -> dict[str, list[Column]]:
    by_name: dict[str, list[Column]] = {}
    for table in Base.metadata.tables.values():
        for c in table.columns:
            by_name.setdefault(c.name, []).append(c)
    return by_name


COLUMNS = columns()
BY_QUALIFIED = {f"{c.table.name}.{c.name}": c for cs in COLUMNS.values() for c in cs}


def _nested(tp: Any) -> Iterator[type[BaseModel]]:
    if inspect.isclass(tp) and issubclass(tp, BaseModel):
        yield tp
    for arg in get_args(tp):
        yield from _nested(arg)


def request_models() -> list[type[BaseModel]]:
    """The lender's request models (and the models inside them), the control API's bodies and
    queries, the fault rules, the fixture partners."""
    found: list[type[BaseModel]] = []
    todo: list[type[BaseModel]] = [s.model for s in SPECS]
    todo += [c for c in vars(m).values() if inspect.isclass(c) and issubclass(c, (m.Body, m.Query))]
    todo += [*RULE_KINDS, f.RuleSet, PartnerFixture]
    while todo:
        model = todo.pop()
        if model in found or model in (m.Body, m.Query):
            continue
        found.append(model)
        for field in model.model_fields.values():
            todo += list(_nested(field.annotation))
    return found


def metadata(field: FieldInfo) -> list[Any]:
    out = list(field.metadata)
    todo = [field.annotation]
    while todo:
        tp = todo.pop()
        for arg in get_args(tp):
            if isinstance(arg, FieldInfo):
                out += arg.metadata
            elif not isinstance(arg, (str, int, float)):
                todo.append(arg)
        out += [x for x in getattr(tp, "__metadata__", ()) if not isinstance(x, FieldInfo)]
    return out


def kinds(tp: Any) -> set[type]:
    """The scalar types a field takes: str, int (Literals count by their values)."""
    if get_origin(tp) is Literal:
        return {type(a) for a in get_args(tp)}
    if tp in (str, int):
        return {tp}
    if get_origin(tp) in (list, dict):  # kept as JSON
        return set()
    return {k for arg in get_args(tp) for k in kinds(arg)}


def literal_values(tp: Any) -> list[Any]:
    if get_origin(tp) is Literal:
        return list(get_args(tp))
    return [x for arg in get_args(tp) for x in literal_values(arg)]


def longest(field: FieldInfo) -> int | None:
    values = [x for x in literal_values(field.annotation) if isinstance(x, str)]
    if values:
        return max(map(len, values))
    lengths = [c.max_length for c in metadata(field) if isinstance(c, MaxLen)]
    return min(lengths) if lengths else None


def int_range(field: FieldInfo) -> tuple[int | None, int | None]:
    values = [x for x in literal_values(field.annotation) if isinstance(x, int)]
    if values:
        return min(values), max(values)
    lo = hi = None
    for c in metadata(field):
        lo = c.ge if isinstance(c, Ge) else c.gt + 1 if isinstance(c, Gt) else lo
        hi = c.le if isinstance(c, Le) else c.lt - 1 if isinstance(c, Lt) else hi
    return lo, hi


def targets(model: type[BaseModel], name: str, kind: type) -> list[Column]:
    named = [BY_QUALIFIED[q] for q in ALSO.get((model, name), ())]
    for c in COLUMNS.get(name, []):
        if (kind is str and isinstance(c.type, String)) or (
            kind is int and type(c.type) in INT_BITS
        ):
            named.append(c)
    return named


def problems(model: type[BaseModel]) -> Iterator[str]:
    if model in UNSTORED:
        return
    for name, field in model.model_fields.items():
        where = f"{model.__name__}.{name}"
        found = False
        for kind in kinds(field.annotation):
            for col in targets(model, name, kind):
                found = True
                yield from _fits(where, field, kind, col)
        if not found and (model, name) not in UNSTORED and not _json_only(field):
            yield f"{where}: meets no column; add it to ALSO or UNSTORED with the reason"


def _json_only(field: FieldInfo) -> bool:
    """Floats, booleans, free JSON: no length or range to fit."""
    return not kinds(field.annotation)


def _fits(where: str, field: FieldInfo, kind: type, col: Column) -> Iterator[str]:
    target = f"{col.table.name}.{col.name}"
    if kind is str:
        length = longest(field)
        if col.type.length is not None and (length is None or length > col.type.length):
            yield f"{where}: up to {length or 'any'} characters, {target} holds {col.type.length}"
    else:
        bits = INT_BITS[type(col.type)]
        lo, hi = int_range(field)
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if lo is None or hi is None or lo < low or hi > high:
            yield f"{where}: integers {lo}..{hi}, {target} holds {low}..{high}"


def test_the_walk_sees_the_models_that_matter() -> None:
    names = {model.__name__ for model in request_models()}
    assert {"BasicInfoReq", "OrderInfo", "Emerg", "Transition", "Payment", "Latency"} <= names
    assert {"PartnerCreate", "PartnerPatch", "PartnerFixture", "JournalQuery"} <= names


@pytest.mark.parametrize("model", request_models(), ids=lambda model: model.__name__)
def test_every_limit_fits_its_column(model: type[BaseModel]) -> None:
    assert list(problems(model)) == []


def test_a_callback_url_fits_the_attempt_log_with_every_callback_path() -> None:
    url = BY_QUALIFIED["callback_attempts.url"].type.length
    longest_base = longest(m.PartnerPatch.model_fields["callback_url"])
    assert longest_base is not None
    assert all(longest_base + len(path) <= url for _, path, _ in CALLBACKS)


def test_the_check_catches_a_field_that_outgrows_its_column() -> None:
    """The test can fail: a model allowing more than its column is reported."""

    class TooLong(m.Body):
        order_no: str = m.Field(max_length=40)
        amount: int = m.Field(ge=1, le=2**40)
        note: str = ""

    assert list(problems(TooLong)) == [
        "TooLong.order_no: up to 40 characters, orders.order_no holds 32",
        "TooLong.order_no: up to 40 characters, callbacks.order_no holds 32",
        "TooLong.amount: integers 1..1099511627776, repay_codes.amount holds "
        "-2147483648..2147483647",
        "TooLong.amount: integers 1..1099511627776, payments.amount holds -2147483648..2147483647",
        "TooLong.note: meets no column; add it to ALSO or UNSTORED with the reason",
    ]
