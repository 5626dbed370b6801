"""What the dashboard shows: a partner at a glance (clock, callbacks, orders by status, a page
of its orders, fault rules, recent requests), an order with every callback attempt and its
borrower pages, and a partner's acceptance report with where its evidence is.

Plain data from the control operations (`control`, `deliveries`, `faults`, `journal`,
`listing`); times are labelled by the pages as virtual (the partner's clock) or wall clock
(this machine's). The partner page costs the same at 100 000 orders as at 100
(bench/bench_scale.py): its orders are one page of GET /sandbox/orders (core.paging), its
requests the newest few, and its counts stop at COUNT_CAP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session, load_only

from ..core import clock as clockmod
from ..core import control_models as m
from ..core.control_models import FORCEABLE
from ..core.control_parsing import parse
from ..core.lifecycle import Status
from ..store import Callback, JournalEntry, Order
from . import conformance, control, deliveries, faults, listing
from .lender import Lender
from .outbox import STATES

RECENT_REQUESTS = 30
ORDERS_PAGE = 50  # orders a page of the partner page lists (`limit` asks for another size)
# The partner page counts orders of a status and callbacks of a state up to this many; past it
# a count says COUNT_CAP + 1 ("10000+" on the page). A count reads every entry of its index
# range: uncapped, 100 000 orders and their 394 000 callbacks cost ~25 ms on an idle core
# and grow with them, where the rest of the page costs the same at any size.
COUNT_CAP = 10_000


def _counts(s: Session, key: Any, values: Sequence[Any], *where: Any) -> list[int]:
    """How many rows hold each of `values` in `key`, up to COUNT_CAP + 1, in one statement: a
    count per value, each at most COUNT_CAP + 1 entries of the index on (partner_token, key,
    id). A GROUP BY would read the key of every entry of the partner."""
    counts = [
        select(func.count())
        .select_from(select(literal(1)).where(*where, key == v).limit(COUNT_CAP + 1).subquery())
        .scalar_subquery()
        for v in values
    ]
    return list(s.execute(select(*counts)).one())


def order_counts(lender: Lender, token: str) -> dict[int, int]:
    """The partner's orders by status (the statuses it has; COUNT_CAP + 1: more than the cap)."""
    codes = [int(st) for st in Status]
    with lender.store.transaction() as s:
        found = _counts(s, Order.status, codes, Order.partner_token == token)
    return {code: n for code, n in zip(codes, found, strict=True) if n}


def callback_states(lender: Lender, token: str) -> dict[str, int]:
    """The partner's callbacks by state (the states it has, in alphabetical order;
    COUNT_CAP + 1: more than the cap)."""
    states = sorted(STATES)
    with lender.store.transaction() as s:
        found = _counts(s, Callback.state, states, Callback.partner_token == token)
    return {state: n for state, n in zip(states, found, strict=True) if n}


# What the page shows of a request: not its raw envelope (as long as the payload, unused).
REQUEST_SHOWN = (
    JournalEntry.id,
    JournalEntry.at,
    JournalEntry.virtual_at,
    JournalEntry.path,
    JournalEntry.request,
    JournalEntry.response,
    JournalEntry.http_status,
    JournalEntry.code,
    JournalEntry.fault,
)


def recent_requests(lender: Lender, token: str, limit: int = RECENT_REQUESTS) -> list[dict]:
    """The partner's newest requests: time (wall clock) and virtual_time, decrypted payload,
    the answer's code (as GET /sandbox/journal shows them, without the raw envelope)."""
    stmt = (
        select(JournalEntry)
        .options(load_only(*REQUEST_SHOWN))
        .where(JournalEntry.partner_token == token)
        .order_by(JournalEntry.id.desc())
        .limit(limit)
    )
    with lender.store.transaction() as s:
        return [
            {
                "id": e.id,
                "time": clockmod.iso(e.at),
                "virtual_time": clockmod.iso(e.virtual_at) if e.virtual_at is not None else None,
                "path": e.path,
                "request": e.request,
                "response": e.response,
                "http_status": e.http_status,
                "code": e.code,
                "fault": e.fault,
            }
            for e in s.scalars(stmt)
        ]


def _moving(clock: dict[str, Any]) -> bool:
    return clock["mode"] != "manual"


def _deliverable(partner: dict[str, Any]) -> bool:
    """Pending callbacks of this partner go out by themselves (a URL, not paused)."""
    return bool(partner["callback_url"]) and not partner["callbacks_paused"]


def partner_page(
    lender: Lender,
    token: str,
    status: int | None = None,
    cursor: str | None = None,
    limit: int = ORDERS_PAGE,
) -> dict[str, Any]:
    """Everything the partner page shows. Its orders are a page of GET /sandbox/orders
    (newest first, of `status` if given): `limit` of them from `cursor` (None: the newest),
    and `next_cursor`, the next page's (None: this is the last); a `cursor` that list would
    refuse is a ControlError. `live`: something moves without anyone
    clicking (a real or scaled clock, callbacks on their way), so the page refreshes itself."""
    partner = control.get_partner(lender, token)
    query = {"partner_token": token, "status": status, "limit": limit, "cursor": cursor}
    orders = listing.orders(lender, parse(m.OrdersQuery, query))
    clock = control.get_clock(lender, token)
    states = callback_states(lender, token)
    rules = faults.list_rules(lender)["rules"]
    return {
        "partner": partner,
        "clock": clock,
        "counts": order_counts(lender, token),
        "callbacks": states,
        "orders": orders.body,
        "cursor": cursor,
        "next_cursor": orders.next_cursor,
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
