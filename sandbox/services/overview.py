"""What the dashboard shows: a partner at a glance (clock, callbacks, orders by status, fault
rules, recent requests), an order with every callback attempt and its borrower pages, and a
partner's acceptance report with where its evidence is.

Plain data from the control operations (`control`, `deliveries`, `faults`, `journal`); times
are labelled by the pages as virtual (the partner's clock) or wall clock (this machine's).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ..core.control_models import FORCEABLE
from ..store import Callback, Order
from . import conformance, control, deliveries, faults, journal
from .lender import Lender

RECENT_REQUESTS = 30


def order_counts(lender: Lender, token: str) -> dict[int, int]:
    with lender.store.transaction() as s:
        rows = s.execute(
            select(Order.status, func.count())
            .where(Order.partner_token == token)
            .group_by(Order.status)
        )
        return {int(status): n for status, n in rows}


def callback_states(lender: Lender, token: str) -> dict[str, int]:
    with lender.store.transaction() as s:
        rows = s.execute(
            select(Callback.state, func.count())
            .where(Callback.partner_token == token)
            .group_by(Callback.state)
        )
        return {state: n for state, n in rows}


def recent_requests(lender: Lender, token: str, limit: int = RECENT_REQUESTS) -> list[dict]:
    """The partner's newest requests: time (wall clock) and virtual_time, decrypted payload,
    the answer's code (as GET /sandbox/journal shows them)."""
    return journal.list_entries(lender, token, limit=limit)


def _moving(clock: dict[str, Any]) -> bool:
    return clock["mode"] != "manual"


def _deliverable(partner: dict[str, Any]) -> bool:
    """Pending callbacks of this partner go out by themselves (a URL, not paused)."""
    return bool(partner["callback_url"]) and not partner["callbacks_paused"]


def partner_page(lender: Lender, token: str, status: int | None = None) -> dict[str, Any]:
    """Everything the partner page shows. `live`: something moves without anyone clicking
    (a real or scaled clock, callbacks on their way), so the page refreshes itself."""
    partner = control.get_partner(lender, token)
    clock = control.get_clock(lender, token)
    states = callback_states(lender, token)
    rules = faults.list_rules(lender)["rules"]
    return {
        "partner": partner,
        "clock": clock,
        "counts": order_counts(lender, token),
        "callbacks": states,
        "orders": control.list_orders(lender, token, status, 100),
        "faults": [r for r in rules if r.get("partner_token") in ("", token)],
        "requests": recent_requests(lender, token),
        "live": _moving(clock) or (states.get("pending", 0) > 0 and _deliverable(partner)),
    }


def order_page(lender: Lender, token: str, order_no: str) -> dict[str, Any]:
    """The order (`control.order_detail`), each callback delivery with every attempt, the
    triggers a person may force, and the borrower's pages (signed links)."""
    detail = control.order_detail(lender, token, order_no)
    sent = deliveries.list_deliveries(lender, token, order_no, limit=1000)
    clock = control.get_clock(lender, token)
    pending = any(d["state"] == "pending" for d in sent)
    with lender.store.transaction() as s:
        partner = lender.partner_or_404(s, token)
        links = {
            "contract": lender.contract_url(partner, order_no),
            "repayment": lender.repay_url(partner, order_no),
        }
    return {
        "order": detail,
        "deliveries": sent,
        "clock": clock,
        "links": links,
        "forceable": [t for t in detail["allowed_triggers"] if t in FORCEABLE],
        "live": _moving(clock) or (pending and _deliverable(control.get_partner(lender, token))),
    }


def conformance_page(lender: Lender, token: str) -> dict[str, Any]:
    """The acceptance checklist (`conformance.checklist`: the report and its sections), and
    the order of each callback its evidence names, so a failed attempt links to its row on
    that order's page."""
    page = conformance.checklist(lender, token)
    named = {
        e["delivery"]
        for c in page["report"]["checks"]
        for e in c["evidence"]
        if e["kind"] == "attempt" and e.get("delivery") is not None
    }
    page["delivery_orders"] = _delivery_orders(lender, token, named)
    return page


def _delivery_orders(lender: Lender, token: str, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    with lender.store.transaction() as s:
        rows = s.execute(
            select(Callback.id, Callback.order_no).where(
                Callback.partner_token == token, Callback.id.in_(sorted(ids))
            )
        )
        return {int(i): str(order_no) for i, order_no in rows}
