"""What every input is held to before a model or the store sees it: text that can be stored
and answered, and JSON of bounded depth (docs/protocol.md §3 "Text and nesting").

JSON may escape a lone UTF-16 surrogate (`"\\ud800"`): Python decodes it into a string no
UTF-8 codec, database or JSON answer accepts. JSON, a URL or a query string may also carry
U+0000, which PostgreSQL cannot store in text. Both are refused here, naming the field,
rather than failing later in the store, the journal or an answer; on SQLite and PostgreSQL
alike. Nesting is capped well below what the recursive code after it (pydantic, the JSON
encoders, PostgreSQL) copes with; real payloads nest four levels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MAX_DEPTH = 64
# The largest amount or count a request may carry: it is stored in an Integer column, 32 bits
# on PostgreSQL (store/tables.py; tests/unit/test_column_fit.py holds every model to it).
INT32_MAX = 2**31 - 1
# A \uD800-\uDFFF or \u0000 escape somewhere in JSON text: only then can a decoded string hold
# a lone surrogate or a NUL (raw surrogate bytes are not UTF-8, raw control bytes not JSON).
_BAD_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")


def text_problem(s: str) -> str | None:
    """Why `s` cannot be stored and answered as text, or None when it can."""
    if "\x00" in s:
        return "contains a NUL character (U+0000), which cannot be stored"
    if s.isascii():
        return None
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate: it is not valid text"
    return None


def bad_text(values: Iterable[tuple[str, Any]]) -> tuple[str, str] | None:
    """(name, why) of the first text value that cannot be stored and answered, of named
    values (a URL's path parameters, its query, a form); None when all can."""
    for name, value in values:
        if isinstance(value, str) and (why := text_problem(value)):
            return name, why
    return None


def is_text(s: str) -> bool:
    """`s` can be stored and answered: no lone surrogate, no NUL."""
    return text_problem(s) is None


def raw_text(body: bytes) -> str:
    """Raw request bytes as text the journal can keep: undecodable bytes and NULs replaced."""
    return body.decode("utf-8", "replace").replace("\x00", "\ufffd")


def field_name(path: tuple[Any, ...]) -> str:
    """A path as the errors name fields: `supplement_info.emergs[0].emergs_name`."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + ascii(p)[1:-1]
    return out or "the body"


def _head(path: tuple[Any, ...]) -> tuple[Any, ...]:
    """The start of a deep path that names it: at most three keys, up to the first index."""
    head = path[:3]
    cut = next((i for i, p in enumerate(head) if isinstance(p, int)), len(head))
    return head[:cut]


def problem(doc: Any, raw: bytes) -> tuple[str, str] | None:
    """(field, rule) of the first string that is not text, or too deep value, of `doc`,
    decoded from `raw`; None when it is fine. Cheap for ordinary input: the document is
    walked only when the text holds such an escape or more brackets than MAX_DEPTH."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH and not _BAD_ESCAPE.search(raw):
        return None
    todo: list[tuple[Any, tuple[Any, ...]]] = [(doc, ())]
    while todo:
        value, path = todo.pop()
        if isinstance(value, str) and (why := text_problem(value)):
            return field_name(path), why
        if isinstance(value, (dict, list)) and len(path) >= MAX_DEPTH:
            return field_name(_head(path)), f"is nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, dict):
            for k, v in value.items():
                if why := text_problem(k):
                    return field_name(path), "has a key that " + why
                todo.append((v, (*path, k)))
        elif isinstance(value, list):
            todo += [(v, (*path, i)) for i, v in enumerate(value)]
    return None


def number(text: str) -> float | int:
    """A JSON number as read from a control body: without a fraction it is an integer, as JSON
    Schema reads it (`5.0` is 5), so an integer field takes it."""
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value
