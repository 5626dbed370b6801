"""A control-API request as one of its models (core.control_models), or one clear HTTP 400:
pydantic's errors become `missing_field` or `invalid_field` with a message naming the field
and its rule in words ("limit must be an integer 1-500"), read from the field's constraints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, get_args

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from .errors import ControlError

M = TypeVar("M", bound=BaseModel)


def _constraints(model: type[BaseModel], name: str) -> list[Any]:
    """The constraint objects (Ge, MaxLen, ...) of a field, also inside `Annotated[...] | None`."""
    field = model.model_fields.get(name)
    if field is None:
        return []
    found: list[Any] = list(field.metadata)
    todo = [field.annotation]
    while todo:
        tp = todo.pop()
        for arg in get_args(tp):
            if isinstance(arg, FieldInfo):
                found += arg.metadata
            elif not isinstance(arg, (str, int, float)):
                todo.append(arg)
        found += getattr(tp, "__metadata__", ())
    return found


def _bounds(model: type[BaseModel], name: str) -> tuple[Any, Any]:
    lo = hi = None
    for c in _constraints(model, name):
        lo = c.ge if isinstance(c, Ge) else c.gt if isinstance(c, Gt) else lo
        hi = c.le if isinstance(c, Le) else c.lt if isinstance(c, Lt) else hi
    return lo, hi


def _lengths(model: type[BaseModel], name: str) -> tuple[Any, Any]:
    lo = hi = None
    for c in _constraints(model, name):
        lo = c.min_length if isinstance(c, MinLen) else lo
        hi = c.max_length if isinstance(c, MaxLen) else hi
    return lo, hi


def _rule(model: type[BaseModel], err: Mapping[str, Any], name: str) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    leaf = str(err["loc"][-1]) if err["loc"] else name
    if kind in (
        "int_parsing",
        "int_type",
        "int_from_float",
        "greater_than_equal",
        "less_than_equal",
        "greater_than",
        "less_than",
    ):
        lo, hi = _bounds(model, leaf)
        if lo is not None and hi is not None:
            return (
                f"must be an integer {lo}-{hi}"
                if "int" in kind or isinstance(lo, int)
                else f"must be a number {lo}-{hi}"
            )
        if lo is not None:
            return f"must be a whole number >= {lo}"
        return "must be an integer"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return "must be a number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind in ("string_type", "string_too_short", "string_too_long"):
        lo, hi = _lengths(model, leaf)
        return f"must be a string of {lo or 0}-{hi} characters" if hi else "must be a string"
    if kind in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected', '')}"
    if kind == "extra_forbidden":
        known = ", ".join(model.model_fields)
        return f"is not a field of this request (fields: {known})"
    if kind in ("dict_type", "model_type"):
        return "must be a JSON object"
    if kind == "list_type":
        return "must be a JSON array"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return str(err["msg"][0].lower() + err["msg"][1:])


def translate(model: type[BaseModel], e: ValidationError) -> ControlError:
    """The first error of `e` as a ControlError naming the field."""
    errors = sorted(e.errors(include_url=False), key=lambda er: er["type"] != "missing")
    err = errors[0]
    name = ".".join(str(p) for p in err["loc"])
    if err["type"] == "missing" and not err["loc"]:  # a model validator: its own words
        return ControlError("missing_field", err["msg"])
    if err["type"] == "missing":
        return ControlError("missing_field", f"{name} is required")
    if err["type"] == "value_error" and not err["loc"]:  # a model validator: its own words
        return ControlError("invalid_field", str((err.get("ctx") or {}).get("error", err["msg"])))
    if err["type"] == "extra_forbidden":
        hint = getattr(
            model, "UNKNOWN_FIELD", "{name} is not a field of this request (fields: {fields})"
        )
        return ControlError(
            "invalid_field", hint.format(name=name, fields=", ".join(model.model_fields))
        )
    return ControlError("invalid_field", f"{name} {_rule(model, err, name)}")


def parse(model: type[M], data: Any) -> M:
    """`data` (a JSON body, or a query string as a dict) as `model`, or a ControlError (400)."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as e:
        raise translate(model, e) from None


def ensure(model: type[M], data: M | Mapping[str, Any]) -> M:
    """`data` as `model`: a model passes through, a mapping is parsed (`parse`)."""
    return data if isinstance(data, model) else parse(model, data)
