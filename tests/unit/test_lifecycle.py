"""sandbox.lifecycle: every trigger from every status, against the table written out here."""

from __future__ import annotations

import threading

import pytest

from sandbox.core.lifecycle import (
    DISBURSED,
    FINAL,
    TRIGGERS,
    IllegalTransition,
    Status,
    Transition,
    allowed_triggers,
    fire,
)

S = Status
# (status, trigger) -> destination, per docs/protocol.md "Order lifecycle". Anything not
# listed must be refused.
LEGAL: dict[tuple[Status, str], Status] = {
    (S.NEW, "submit"): S.REVIEWING,
    (S.NEW, "bind_card"): S.NEW,
    (S.NEW, "cancel"): S.CANCELLED,
    (S.REVIEWING, "bind_card"): S.REVIEWING,
    (S.REVIEWING, "approve"): S.APPROVED,
    (S.REVIEWING, "reject"): S.REJECTED,
    (S.REVIEWING, "cancel"): S.CANCELLED,
    (S.APPROVED, "bind_card"): S.APPROVED,
    (S.APPROVED, "confirm"): S.APPROVED,
    (S.APPROVED, "disburse"): S.REPAYING,
    (S.APPROVED, "fail_payout"): S.PAYOUT_FAILED,
    (S.APPROVED, "cancel"): S.CANCELLED,
    (S.PAYOUT_FAILED, "bind_card"): S.PAYOUT_FAILED,
    (S.PAYOUT_FAILED, "confirm"): S.APPROVED,
    (S.PAYOUT_FAILED, "cancel"): S.CANCELLED,
    (S.REPAYING, "overdue"): S.OVERDUE,
    (S.REPAYING, "extend"): S.REPAYING,
    (S.REPAYING, "settle"): S.SETTLED,
    (S.OVERDUE, "extend"): S.REPAYING,
    (S.OVERDUE, "settle"): S.SETTLED,
}
ALL_TRIGGERS = (
    "submit",
    "bind_card",
    "approve",
    "reject",
    "confirm",
    "disburse",
    "fail_payout",
    "cancel",
    "overdue",
    "extend",
    "settle",
)


def test_status_codes_are_the_spec_enum() -> None:
    assert [int(s) for s in Status] == [80, 90, 100, 110, 161, 169, 170, 180, 200]
    assert FINAL == {S.REJECTED, S.CANCELLED, S.SETTLED}
    assert DISBURSED == {S.REPAYING, S.OVERDUE, S.SETTLED}


def test_the_trigger_list() -> None:
    assert set(TRIGGERS) == set(ALL_TRIGGERS)


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("trigger", ALL_TRIGGERS)
def test_every_trigger_from_every_status(status: Status, trigger: str) -> None:
    expected = LEGAL.get((status, trigger))
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            fire(status, trigger)
        assert info.value.status == status and info.value.trigger == trigger
        assert f"'{trigger}' is not allowed in status {int(status)}" in str(info.value)
        assert trigger not in allowed_triggers(status)
    else:
        t = fire(int(status), trigger)  # an int status is fine too
        assert t == Transition(status, expected, trigger)
        assert isinstance(t.dest, Status)
        assert trigger in allowed_triggers(status)


@pytest.mark.parametrize("status", list(Status))
def test_allowed_triggers(status: Status) -> None:
    expected = [t for t in ALL_TRIGGERS if (status, t) in LEGAL]
    assert sorted(allowed_triggers(status)) == sorted(expected)
    if status in FINAL:
        assert allowed_triggers(status) == []


def test_the_message_lists_what_is_allowed() -> None:
    with pytest.raises(
        IllegalTransition,
        match=r"status 90 \(reviewing\); allowed: bind_card, "
        r"approve, reject, cancel",
    ):
        fire(S.REVIEWING, "settle")
    with pytest.raises(IllegalTransition, match=r"allowed: none \(final status\)"):
        fire(S.SETTLED, "extend")


def test_unknown_trigger_and_status() -> None:
    with pytest.raises(IllegalTransition, match="'teleport' is not allowed"):
        fire(S.NEW, "teleport")
    with pytest.raises(ValueError):
        fire(81, "submit")
    with pytest.raises(IllegalTransition):
        fire(S.NEW, "to_REVIEWING")  # no auto transitions


def test_every_status_is_reachable_from_new() -> None:
    seen, todo = {S.NEW}, [S.NEW]
    while todo:
        src = todo.pop()
        for t in allowed_triggers(src):
            dest = fire(src, t).dest
            if dest not in seen:
                seen.add(dest)
                todo.append(dest)
    assert seen == set(Status)


def test_fire_is_thread_safe() -> None:
    errors: list[BaseException] = []
    cases = list(LEGAL.items())

    def worker(offset: int) -> None:
        try:
            for i in range(300):
                (status, trigger), dest = cases[(i + offset) % len(cases)]
                assert fire(status, trigger).dest == dest
                with pytest.raises(IllegalTransition):
                    fire(S.SETTLED, trigger)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
