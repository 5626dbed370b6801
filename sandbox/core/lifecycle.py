"""The order state machine (docs/protocol.md §5): statuses, the transition table, and `fire`.

This table is the single authority on what may happen to an order. Endpoint handlers,
due events and the control API all call `fire`; an illegal trigger raises `IllegalTransition`
and nothing changes. Effects (timeline rows, due events, callbacks) are computed by the
service *after* a successful fire, because `transitions` callbacks do not roll back.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from transitions import Machine

# `transitions` logs two INFO lines per fire ("Finished processing state NEW exit
# callbacks"): noise in `serve`, the harness and every test run. Its warnings still show.
logging.getLogger("transitions").setLevel(logging.WARNING)


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
# A person's open loan: every status but the ends (rejected, cancelled, settled). One at a time
# per person and lender (docs/protocol.md §4 02): a unique index holds it across processes.
OPEN = frozenset({S.NEW, S.REVIEWING, S.APPROVED, S.PAYOUT_FAILED, S.REPAYING, S.OVERDUE})


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


# The machine holds the table; `transitions` is the authority on what each trigger does. Its
# answers are read once into `_TABLE` (firing a trigger on a model costs about a millisecond,
# most of a due event's work), so `fire` is a lookup in what the machine says.
_MACHINE = Machine(
    model=None,
    states=Status,
    transitions=_machine_transitions(),
    initial=S.NEW,
    auto_transitions=False,
)


def _table(machine: Machine) -> dict[tuple[Status, str], Status]:
    table = {}
    for trigger, event in machine.events.items():
        for source, moves in event.transitions.items():
            for move in moves:
                table[(Status[source], trigger)] = Status[str(move.dest)]
    return table


_TABLE = _table(_MACHINE)


def fire(status: Status | int, trigger: str) -> Transition:
    """Return the transition `trigger` makes from `status`, or raise IllegalTransition."""
    status = Status(status)
    dest = _TABLE.get((status, trigger))
    if dest is None:
        raise IllegalTransition(status, trigger)
    return Transition(status, dest, trigger)


def allowed_triggers(status: Status | int) -> list[str]:
    status = Status(status)
    return [t for t, sources, _ in TRANSITIONS if status in sources]
