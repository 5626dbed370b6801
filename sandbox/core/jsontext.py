"""JSON text read and written by orjson, with exactly what the stdlib's json gives.

A request parses its envelope and payload and stores four or five JSON values; a clock
advance reads an order's JSON columns per transition. orjson does each in a third to a tenth
of the stdlib's time, but differs at the edges, where the stdlib's answer is the one kept:
it reads an integer beyond 64 bits as a float (so text with a run of 19 digits or more is
read by the stdlib), and it refuses NaN/Infinity, lone surrogates, a BOM and integers beyond
64 bits or non-text keys when writing (so what it refuses goes to the stdlib, which accepts
or refuses it as before).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson

LONG_DIGITS = re.compile(r"\d{19}")


def loads(text: str | bytes, stdlib: Callable[[Any], Any] = json.loads) -> Any:
    """stdlib(text) (json.loads, or a JSONDecoder's decode): the same value, or its exception."""
    if not LONG_DIGITS.search(text if isinstance(text, str) else text.decode("utf-8", "replace")):
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
