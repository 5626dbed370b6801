"""Virtual clocks: real | scaled | manual arithmetic, wall time as an argument.

See docs/architecture.md "Time".

A clock is an anchor pair (wall, virtual) and a rate: virtual = anchor_virtual +
(wall - anchor_wall) * rate, with rate 1 for `real`, N for `scaled` and 0 for `manual`.
Advancing or setting re-anchors at the current wall time, so modes never drift. Nothing
here reads the wall clock: callers pass `wall` (seconds since the epoch).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

MODES = ("real", "scaled", "manual")
WIB = timezone(timedelta(hours=7), "WIB")


class ClockError(ValueError):
    pass


@dataclass(frozen=True)
class ClockState:
    mode: str = "real"
    rate: float = 1.0  # only meaningful for `scaled`
    anchor_wall: float = 0.0
    anchor_virtual: float = 0.0

    @property
    def speed(self) -> float:
        return {"real": 1.0, "manual": 0.0}.get(self.mode, self.rate)


# Virtual time stays below this (year 9000): every date must still render as a calendar date.
LATEST = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
MAX_RATE = 1e6


def start(mode: str, wall: float, *, rate: float = 1.0, at: float | None = None) -> ClockState:
    """A new clock at virtual time `at` (default: the wall time)."""
    if mode not in MODES:
        raise ClockError(f"clock mode must be one of {', '.join(MODES)}, not {mode!r}")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= MAX_RATE:
        raise ClockError(f"clock rate must be a number > 0 and <= {MAX_RATE:g}, not {rate!r}")
    return ClockState(mode, float(rate), wall, wall if at is None else at)


def virtual_now(state: ClockState, wall: float) -> float:
    return state.anchor_virtual + (wall - state.anchor_wall) * state.speed


def wall_when(state: ClockState, wall: float, virtual: float) -> float | None:
    """The wall time at which the clock reads `virtual`: `wall` if it already has, None if
    it never will by itself (a manual clock waits for an advance)."""
    now = virtual_now(state, wall)
    if virtual <= now:
        return wall
    if state.speed == 0:
        return None
    return wall + (virtual - now) / state.speed


def advance(state: ClockState, wall: float, seconds: float) -> ClockState:
    if seconds < 0:
        raise ClockError("a clock only moves forward: orders already lived through that time")
    to = virtual_now(state, wall) + seconds
    if not to < LATEST:  # also catches inf and nan
        raise ClockError("that would move the clock past the year 9000")
    return replace(state, anchor_wall=wall, anchor_virtual=to)


def set_to(state: ClockState, wall: float, to: float) -> ClockState:
    return advance(state, wall, to - virtual_now(state, wall))


def change_mode(state: ClockState, wall: float, mode: str, rate: float | None = None) -> ClockState:
    now = virtual_now(state, wall)
    return start(mode, wall, rate=state.rate if rate is None else rate, at=now)


_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhms])")


def _shown(value: object) -> str:
    """A value as an error message quotes it: a 400-digit number is cut, not printed whole."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"


def parse_duration(text: str | int | float) -> float:
    """'8d', '2h30m', '90m', '45s', '1w' or plain seconds -> seconds (a finite number)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text) if isinstance(text, float) or abs(text) < 2**1000 else math.inf
    else:
        s = str(text).strip().lower().replace(" ", "")
        if not s or (not re.fullmatch(r"\d+(\.\d+)?", s) and _PART.sub("", s)):
            raise ClockError(
                f"cannot read duration {_shown(text)}: use e.g. '8d', '2h30m', '90m', '45s' "
                "or seconds"
            )
        parts = _PART.findall(s) or [(s, "s")]
        seconds = float(sum(float(n) * _UNITS[u] for n, u in parts))
    if not math.isfinite(seconds):
        raise ClockError(f"cannot read duration {_shown(text)}: too large, or not a finite number")
    return seconds


def parse_instant(text: str) -> float:
    """ISO 8601 -> epoch seconds; a time without a zone is taken as WIB (docs/protocol.md §7)."""
    try:
        dt = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ClockError(
            f"cannot read time {text!r}: use ISO 8601, e.g. 2026-12-01T09:00:00+07:00"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=WIB)
    return dt.timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, WIB).isoformat(timespec="seconds")


def describe(state: ClockState, wall: float) -> dict:
    now = virtual_now(state, wall)
    return {
        "mode": state.mode,
        "rate": state.speed,
        "now": iso(now),
        "now_unix": round(now, 3),
        "offset_seconds": round(now - wall, 3),
    }
