"""JSON text read and written by orjson, with exactly what the stdlib's json gives.

A request parses its envelope and payload and stores four or five JSON values; a clock
advance reads an order's JSON columns per transition. orjson does each in a third to a tenth
of the stdlib's time, but differs at the edges, where the stdlib's answer is the one kept:
it reads an integer beyond 64 bits as a float (so text with a run of 19 digits or more is
read by the stdlib), and it refuses NaN/Infinity, lone surrogates, a BOM and integers beyond
64 bits or non-text keys when writing (so what it refuses goes to the stdlib, which accepts
or refuses it as before). One difference is kept on purpose: NaN and ±inf (a payload's 1e400
reads as inf) are written as null, where the stdlib writes NaN/Infinity, which is not JSON and
which PostgreSQL refuses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

# Digits as "9", then a run of 19 nines: two C calls (a regex took ten times as long).
_AS_NINES = bytes.maketrans(b"012345678", b"999999999")
_LONG_RUN = b"9" * 19


def has_long_number(text: str | bytes) -> bool:
    """A run of 19 digits or more: where an integer may be beyond 64 bits."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return _LONG_RUN in raw.translate(_AS_NINES)


def loads(text: str | bytes, stdlib: Callable[[Any], Any] = json.loads) -> Any:
    """stdlib(text) (json.loads, or a JSONDecoder's decode): the same value, or its exception."""
    if not has_long_number(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # the stdlib decides: it may accept (NaN, a lone surrogate) or say why not
    return stdlib(text)


def dumps(value: Any) -> str:
    """Compact JSON text of `value` (UTF-8, not \\u-escaped), as json.dumps would read back."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: beyond 64 bits, non-text keys, surrogates
        return json.dumps(value)
