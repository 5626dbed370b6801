"""core.clock: virtual time as arithmetic on an injected wall time (docs/architecture.md)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sandbox.core import clock
from sandbox.core.clock import ClockError, ClockState

W = 1_772_420_400.0  # a wall time (2026-03-02 10:00 WIB)


def test_start_modes() -> None:
    for mode, speed in (("real", 1.0), ("manual", 0.0)):
        c = clock.start(mode, W)
        assert (c.mode, c.speed, c.anchor_wall, c.anchor_virtual) == (mode, speed, W, W)
    c = clock.start("scaled", W, rate=60)
    assert c.speed == 60 and c.rate == 60
    assert clock.start("manual", W, at=1000.0).anchor_virtual == 1000.0


@pytest.mark.parametrize("mode,rate", [("sideways", 1), ("scaled", 0), ("scaled", -2)])
def test_start_refuses_bad_modes(mode: str, rate: float) -> None:
    with pytest.raises(ClockError):
        clock.start(mode, W, rate=rate)


def test_virtual_now_per_mode() -> None:
    assert clock.virtual_now(clock.start("real", W), W + 10) == W + 10
    assert clock.virtual_now(clock.start("manual", W), W + 3600) == W
    assert clock.virtual_now(clock.start("scaled", W, rate=60), W + 10) == W + 600


def test_advance_and_set() -> None:
    c = clock.start("manual", W)
    c = clock.advance(c, W + 5, 86400)
    assert clock.virtual_now(c, W + 999) == W + 86400
    c = clock.set_to(c, W + 7, W + 10 * 86400)
    assert clock.virtual_now(c, W + 7) == W + 10 * 86400
    # a real clock keeps running from the new anchor
    r = clock.advance(clock.start("real", W), W + 100, 3600)
    assert clock.virtual_now(r, W + 160) == W + 100 + 3600 + 60
    s = clock.advance(clock.start("scaled", W, rate=10), W + 1, 0)
    assert clock.virtual_now(s, W + 2) == W + 10 + 10


def test_clocks_only_move_forward() -> None:
    c = clock.start("manual", W)
    with pytest.raises(ClockError, match="only moves forward"):
        clock.advance(c, W, -1)
    with pytest.raises(ClockError, match="only moves forward"):
        clock.set_to(c, W, W - 60)
    assert clock.set_to(c, W, W) == clock.advance(c, W, 0)


def test_change_mode_keeps_the_virtual_time() -> None:
    c = clock.advance(clock.start("manual", W), W, 86400)
    s = clock.change_mode(c, W + 50, "scaled", 100)
    assert clock.virtual_now(s, W + 50) == W + 86400
    assert clock.virtual_now(s, W + 51) == W + 86400 + 100
    r = clock.change_mode(s, W + 60, "real")
    assert r.rate == 100 and r.speed == 1.0
    assert clock.virtual_now(r, W + 60) == W + 86400 + 1000
    with pytest.raises(ClockError):
        clock.change_mode(c, W, "warp")


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("8d", 8 * 86400),
        ("2h30m", 9000),
        ("90m", 5400),
        ("45s", 45),
        ("1w", 604800),
        ("1h 30m", 5400),
        ("1.5h", 5400),
        ("3600", 3600),
        (" 12 ", 12),
        ("0", 0),
        ("2D", 172800),
        (90, 90.0),
        (1.5, 1.5),
        ("1d12h", 129600),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert clock.parse_duration(text) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["8x", "", "d", "soon", "1d 2q", "-5", "1,5h", None, "h1", True, [1]]
)
def test_parse_duration_errors(text: object) -> None:
    with pytest.raises(ClockError, match="cannot read duration"):
        clock.parse_duration(text)  # type: ignore[arg-type]


def test_parse_instant() -> None:
    wib = timezone(timedelta(hours=7))
    expected = datetime(2026, 4, 1, 9, 0, tzinfo=wib).timestamp()
    assert clock.parse_instant("2026-04-01T09:00:00+07:00") == expected
    assert clock.parse_instant("2026-04-01T02:00:00Z") == expected
    assert clock.parse_instant("2026-04-01 09:00:00") == expected  # no zone: WIB
    assert clock.parse_instant("2026-04-01T09:00") == expected
    assert clock.parse_instant("2026-04-01") == datetime(2026, 4, 1, tzinfo=wib).timestamp()
    assert clock.parse_instant(" 2026-04-01T04:00:00+02:00 ") == expected


@pytest.mark.parametrize("text", ["next tuesday", "2026-13-01", "", "01/04/2026", 12345, None])
def test_parse_instant_errors(text: object) -> None:
    with pytest.raises(ClockError, match="cannot read time"):
        clock.parse_instant(text)  # type: ignore[arg-type]


def test_iso_and_describe() -> None:
    assert clock.iso(W) == "2026-03-02T10:00:00+07:00"
    c = clock.advance(clock.start("manual", W), W, 90)
    assert clock.describe(c, W + 10) == {
        "mode": "manual",
        "rate": 0.0,
        "now": "2026-03-02T10:01:30+07:00",
        "now_unix": W + 90,
        "offset_seconds": 80.0,
    }
    assert clock.describe(ClockState("scaled", 60.0, W, W), W)["rate"] == 60.0
