"""The checks of how the partner follows an order's life (docs/conformance.md): callbacks
acknowledged, duplicated and out of order, and the scenarios walked."""

from __future__ import annotations

import json

from .facts import (
    Facts,
    Verdict,
    answered,
    attempt_evidence,
    call_evidence,
    failed,
    passed,
    plural,
    untested,
)
from .records import NO_CARD, NO_EXTENSION, NOT_OFFERED, PATH, Attempt, OrderRecord

# ---- callbacks (docs/protocol.md §6) ----


def _ack_problem(a: Attempt, timeout: float) -> str:
    if a.error:
        return a.error
    if a.latency_ms > timeout * 1000:
        return f"answered after {a.latency_ms / 1000:.1f}s, over the {timeout:g}s timeout"
    try:
        code = json.loads(a.response).get("code")
    except (ValueError, AttributeError):
        return ""
    return 'code is the string "0": answer the number 0' if code == "0" else ""


def check_callbacks_acknowledged(f: Facts) -> Verdict:
    timeout, evidence = f.limits.callback_timeout, []
    for d in f.deliveries:
        for a in d.cycle:
            problem = _ack_problem(a, timeout)
            if problem:
                evidence.append(
                    attempt_evidence(d, a, f"{d.number} {d.path} for {d.order_no}: {problem}")
                )
    if evidence:
        return failed(
            f"{plural(len(evidence), 'callback attempt')} not acknowledged with "
            f"code 0 within {timeout:g}s",
            evidence,
        )
    acked = {d.number for d in f.deliveries if d.first_ack is not None}
    missing = sorted({"19", "20", "21"} - acked)
    if missing:
        return untested(f"not delivered yet: {', '.join(missing)}")
    return passed("19, 20 and 21 acknowledged with code 0")


def check_duplicates(f: Facts) -> Verdict:
    dups = [(d, a) for d in f.deliveries for a in d.duplicates]
    bad = [(d, a) for d, a in dups if a.error]
    if bad:
        return failed(
            f"{plural(len(bad), 'duplicate callback')} refused",
            [
                attempt_evidence(
                    d,
                    a,
                    f"{d.number} for {d.order_no} sent again after "
                    f"attempt {d.cycle[-1].id}: {a.error}",
                )
                for d, a in bad
            ],
        )
    if not dups:
        return untested("no callback was delivered twice yet")
    return passed(f"{plural(len(dups), 'duplicate')} acknowledged")


def check_out_of_order(f: Facts) -> Verdict:
    if not f.reorders:
        return untested("no callback overtook an earlier one of its order yet")
    if f.regressions:
        evidence = []
        for late, ack, c in f.regressions.values():
            evidence += [
                attempt_evidence(
                    late,
                    ack,
                    f"{late.number} with order_status "
                    f"{late.body.get('order_status')} for "
                    f"{late.order_no} arrived after a newer one",
                ),
                call_evidence(c, f"then {answered(c)}"),
            ]
        return failed(
            "an order was treated as in an older status after an out-of-order callback", evidence
        )
    orders = sorted({late.order_no for late, _ in f.reorders})
    return passed(f"out-of-order callbacks for {', '.join(orders)} did not set an order back")


# ---- scenarios (docs/protocol.md §5, §8) ----


def _orders_with(f: Facts, trigger: str) -> list[OrderRecord]:
    return [o for o in f.orders.values() if o.has(trigger)]


def _stale_verdict(f: Facts, status: int, what: str, trigger: str) -> Verdict:
    """Walked when an order reached `status`; failed by a call that treated such an order as
    still open (answered wrong_state)."""
    stale = f.stale(status)
    if stale:
        return failed(
            f"{plural(len(stale), 'call')} on {what} orders",
            [call_evidence(c, f"after {status}: {answered(c)}") for c in stale],
        )
    walked = _orders_with(f, trigger)
    if not walked:
        return untested(f"no order {what} yet")
    return passed(
        f"{what}: {', '.join(o.order_no for o in walked[:5])}",
        [f.link(o.order_no, f"{what} ({status})") for o in walked[:5]],
    )


def check_approval(f: Facts) -> Verdict:
    full = [
        o
        for o in f.orders.values()
        if o.has("disburse") and f.approvals.get(o.order_no) == o.application_amount
    ]
    if not full:
        return untested("no order approved in full and paid out yet")
    return passed(
        f"approved in full and paid out: {full[0].order_no}",
        [f.link(full[0].order_no, "approved in full, disbursed (170)")],
    )


def check_reduced(f: Facts) -> Verdict:
    reduced = {
        o.order_no: f.approvals[o.order_no]
        for o in f.orders.values()
        if f.approvals.get(o.order_no, o.application_amount) < o.application_amount
    }
    over = [c for c in f.answered(NOT_OFFERED, "11") if c.order_no in reduced]
    if over:
        return failed(
            "confirmed more than the reduced amount approved",
            [
                call_evidence(
                    c,
                    f"11 for {c.order_no} confirmed "
                    f"{(c.request or {}).get('application_amount')} but "
                    f"{reduced[c.order_no]} was approved",
                )
                for c in over
            ],
        )
    confirmed = [c for c in f.on("11") if c.code == 0 and c.order_no in reduced]
    if not confirmed:
        return untested(
            "no order approved for less and confirmed yet"
            + (f" (approved for less: {', '.join(reduced)})" if reduced else "")
        )
    c = confirmed[0]
    return passed(
        f"{c.order_no} approved for {reduced[c.order_no]} and confirmed",
        [call_evidence(c, f"11 confirmed {(c.request or {}).get('application_amount')}")],
    )


def check_rejection(f: Facts) -> Verdict:
    return _stale_verdict(f, 110, "rejected", "reject")


def check_payout_failure(f: Facts) -> Verdict:
    blind = [c for c in f.answered(NO_CARD, "11") if f.status_when(c) == 169]
    if blind:
        return failed(
            "confirmed again after a failed payout without re-binding a card",
            [
                call_evidence(
                    c, f"11 for {c.order_no} in 169 answered 11006: bind another account (08) first"
                )
                for c in blind
            ],
        )
    failed_payouts = _orders_with(f, "fail_payout")
    recovered = [
        o
        for o in failed_payouts
        if any(
            s.trigger == "disburse"
            for s in o.timeline
            if s.id > next(t.id for t in o.timeline if t.trigger == "fail_payout")
        )
    ]
    if not recovered:
        return untested(
            "no failed payout re-bound and paid out yet"
            + (
                f" (failed: {', '.join(o.order_no for o in failed_payouts)})"
                if failed_payouts
                else ""
            )
        )
    o = recovered[0]
    return passed(
        f"{o.order_no}: payout failed (169), re-bound, confirmed and paid out",
        [f.link(o.order_no, "169, then 08 + 11, then 170")],
    )


def check_overdue(f: Facts) -> Verdict:
    late = _orders_with(f, "overdue")
    if not late:
        return untested("no order overdue yet")
    return passed(f"overdue: {late[0].order_no}", [f.link(late[0].order_no, "overdue (180)")])


def check_full_repayment(f: Facts) -> Verdict:
    return _stale_verdict(f, 200, "settled", "settle")


def check_extension(f: Facts) -> Verdict:
    refused = [
        c
        for c in f.answered(NO_EXTENSION, "15", "17")
        if c.path == PATH["17"] or (c.request or {}).get("repay_type") in (2, "2")
    ]
    if refused:
        return failed(
            f"{plural(len(refused), 'extension')} asked where none is offered",
            [call_evidence(c, answered(c)) for c in refused],
        )
    extended = _orders_with(f, "extend")
    if not extended:
        return untested("no order extended yet")
    return passed(
        f"extended: {extended[0].order_no}",
        [f.link(extended[0].order_no, "extension paid, back to 170")],
    )


def check_cancellation(f: Facts) -> Verdict:
    return _stale_verdict(f, 161, "cancelled", "cancel")
