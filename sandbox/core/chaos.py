"""Callback chaos settings (for the receiver's sake): duplicate, delay or reorder deliveries.

A partner turns them on with PATCH /sandbox/partners/{token} {"chaos": {...}}; the outbox
applies them (services.outbox). Pure: validation and the settings' parsed form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import clock as clockmod
from .errors import SandboxError

CHAOS_KEYS = {
    "duplicate": "probability 0-1 that a delivered callback is sent a second time",
    "delay": "seconds, or [min, max] seconds, of wall time added before the first attempt",
    "reorder": "probability 0-1 that a callback overtakes earlier pending ones of its order",
    "reorder_hold": "seconds an overtaken callback is held back (default 1)",
}

_SECONDS = {"type": "number", "minimum": 0, "maximum": 3600}
_PROBABILITY = {"type": "number", "minimum": 0, "maximum": 1}
# The settings as JSON Schema (the OpenAPI document): seconds as numbers (a duration text like
# "2s" is read too); a [min, max] delay also needs min <= max.
CHAOS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "duplicate": _PROBABILITY,
        "delay": {
            "anyOf": [_SECONDS, {"type": "array", "items": _SECONDS, "minItems": 2, "maxItems": 2}]
        },
        "reorder": _PROBABILITY,
        "reorder_hold": _SECONDS,
    },
    "additionalProperties": False,
}


def _chaos_error(detail: str) -> SandboxError:
    return SandboxError("invalid_field", f"chaos: {detail}", http_status=400)


def _probability(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise _chaos_error(f"{key} must be a probability between 0 and 1, not {value!r}")
    return float(value)


def _seconds(key: str, value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise clockmod.ClockError(str(value))
        seconds = clockmod.parse_duration(value)
    except (clockmod.ClockError, TypeError):
        raise _chaos_error(
            f"{key} must be seconds (or a duration like '2s'), not {value!r}"
        ) from None
    if not 0 <= seconds <= 3600:
        raise _chaos_error(f"{key} must be between 0 and 3600 seconds, not {value!r}")
    return seconds


def _delay(key: str, value: Any) -> float | list[float]:
    if not isinstance(value, (list, tuple)):
        return _seconds(key, value)
    if len(value) != 2:
        raise _chaos_error(f"{key} must be seconds or a [min, max] pair, not {value!r}")
    lo, hi = _seconds(key, value[0]), _seconds(key, value[1])
    if lo > hi:
        raise _chaos_error(f"{key} range [{lo}, {hi}] has min > max")
    return [lo, hi]


_CHAOS_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "duplicate": _probability,
    "delay": _delay,
    "reorder": _probability,
    "reorder_hold": _seconds,
}


def validate_chaos(raw: Any) -> dict:
    """Check a partner's chaos settings (PATCH /sandbox/partners/{token} {"chaos": {...}}).

    Returns them normalised (numbers as floats, durations in seconds); raises SandboxError
    `invalid_field` (HTTP 400) naming the key and the rule. `{}` turns chaos off.
    """
    if not isinstance(raw, dict):
        raise _chaos_error('must be an object, e.g. {"duplicate": 0.5, "delay": [1, 3]}')
    unknown = sorted(set(raw) - set(CHAOS_KEYS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in CHAOS_KEYS.items())
        raise _chaos_error(f"unknown key {', '.join(map(repr, unknown))}; known keys — {known}")
    return {key: _CHAOS_CHECKS[key](key, value) for key, value in raw.items()}


@dataclass(frozen=True)
class Chaos:
    duplicate: float = 0.0
    delay: tuple[float, float] = (0.0, 0.0)
    reorder: float = 0.0
    reorder_hold: float = 1.0

    @classmethod
    def of(cls, settings: dict | None) -> Chaos:
        """A partner's stored chaos settings; settings that no longer validate mean no chaos."""
        try:
            d = validate_chaos(settings or {})
        except SandboxError:  # stored before validation existed: deliver without chaos
            return cls()
        delay = d.get("delay", 0.0)
        lo, hi = delay if isinstance(delay, list) else (delay, delay)
        return cls(
            d.get("duplicate", 0.0), (lo, hi), d.get("reorder", 0.0), d.get("reorder_hold", 1.0)
        )
