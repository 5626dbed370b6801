"""The order state machine (docs/protocol.md §5): statuses, the transition table, and `fire`.

This table is the single authority on what may happen to an order. Endpoint handlers,
due events and the control API all call `fire`; an illegal trigger raises `IllegalTransition`
and nothing changes. Effects (timeline rows, due events, callbacks) are computed by the
service *after* a successful fire, because `transitions` callbacks do not roll back.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass

from transitions import Machine, MachineError


class Status(enum.IntEnum):
    NEW = 80
    REVIEWING = 90
    APPROVED = 100
    REJECTED = 110
    CANCELLED = 161
    PAYOUT_FAILED = 169
    REPAYING = 170
    OVERDUE = 180
    SETTLED = 200


S = Status

# trigger, sources, dest.  A dest equal to the source ("reflexive") still records a
# timeline row: binding a card or confirming is part of an order's history.
TRANSITIONS: tuple[tuple[str, tuple[Status, ...], Status | None], ...] = (
    ("submit", (S.NEW,), S.REVIEWING),  # 06 push-supplement-info
    ("bind_card", (S.NEW, S.REVIEWING, S.APPROVED, S.PAYOUT_FAILED), None),  # 08 (stays)
    ("approve", (S.REVIEWING,), S.APPROVED),  # review decides (timer/forced)
    ("reject", (S.REVIEWING,), S.REJECTED),
    ("confirm", (S.APPROVED, S.PAYOUT_FAILED), S.APPROVED),  # 11 push-order-confirm
    ("disburse", (S.APPROVED,), S.REPAYING),  # payout succeeds
    ("fail_payout", (S.APPROVED,), S.PAYOUT_FAILED),  # payout fails
    ("cancel", (S.NEW, S.REVIEWING, S.APPROVED, S.PAYOUT_FAILED), S.CANCELLED),
    ("overdue", (S.REPAYING,), S.OVERDUE),  # due date (+ grace) passed
    ("extend", (S.REPAYING, S.OVERDUE), S.REPAYING),  # extension fee paid
    ("settle", (S.REPAYING, S.OVERDUE), S.SETTLED),  # full repayment received
)

TRIGGERS = tuple(t[0] for t in TRANSITIONS)
FINAL = frozenset({S.REJECTED, S.CANCELLED, S.SETTLED})
DISBURSED = frozenset({S.REPAYING, S.OVERDUE, S.SETTLED})


class IllegalTransition(Exception):
    def __init__(self, status: Status, trigger: str):
        self.status, self.trigger = status, trigger
        allowed = ", ".join(allowed_triggers(status)) or "none (final status)"
        super().__init__(
            f"'{trigger}' is not allowed in status {int(status)} ({status.name.lower()}); "
            f"allowed: {allowed}"
        )


@dataclass(frozen=True)
class Transition:
    source: Status
    dest: Status
    trigger: str


def _machine_transitions() -> list[dict]:
    rows = []
    for trigger, sources, dest in TRANSITIONS:
        for src in sources:
            rows.append({"trigger": trigger, "source": src, "dest": dest or src})
    return rows


class _Model:
    state: Status


# One machine shared by all calls: it holds only the table; each fire attaches a throwaway
# model under a lock (cheaper than building a Machine per call, and thread-safe).
_MACHINE = Machine(
    model=None,
    states=Status,
    transitions=_machine_transitions(),
    initial=S.NEW,
    auto_transitions=False,
)
_LOCK = threading.Lock()


def fire(status: Status | int, trigger: str) -> Transition:
    """Return the transition `trigger` makes from `status`, or raise IllegalTransition."""
    status = Status(status)
    if trigger not in TRIGGERS:
        raise IllegalTransition(status, trigger)
    model = _Model()
    with _LOCK:
        _MACHINE.add_model(model, initial=status)
        try:
            model.trigger(trigger)  # type: ignore[attr-defined]
        except MachineError:
            raise IllegalTransition(status, trigger) from None
        finally:
            _MACHINE.remove_model(model)
    return Transition(status, Status(model.state), trigger)


def allowed_triggers(status: Status | int) -> list[str]:
    status = Status(status)
    return [t for t, sources, _ in TRANSITIONS if status in sources]
