"""GET /sandbox/health: the database (a trivial query, timed), the scheduler (its last tick)
and the callback outbox's backlog (pending, dead, how overdue the oldest pending one is).

HTTP 503 when the database does not answer, so a load balancer takes the process out; a
scheduler that stopped ticking makes the status "degraded" (the process still answers, but
moving clocks, retries and retention wait). Every figure is one indexed query.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from ..core import clock as clockmod
from ..store import Callback, Partner
from .lender import Lender
from .scheduler import Heartbeat

log = logging.getLogger("sandbox.health")

STALE_TICKS = 10  # a scheduler this many ticks (and 30 s) late is "stalled"
COUNT_CAP = 10_000  # backlog counts stop here: "at least this many" is all a monitor needs


def health(lender: Lender, beat: Heartbeat | None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, the answer)."""
    started = time.perf_counter()
    try:
        with lender.store.begin() as conn:
            conn.execute(text("SELECT 1"))
            ms = (time.perf_counter() - started) * 1000
            partners = int(conn.scalar(select(func.count()).select_from(Partner)) or 0)
            outbox = backlog(conn, lender.wall())
    except SQLAlchemyError as e:
        log.warning("health: the database does not answer: %s", e)
        return 503, {
            "status": "unavailable",
            "database": lender.store.engine.dialect.name,
            "partners": None,
            "database_check": {
                "ok": False,
                "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                "error": type(e).__name__ + ": " + str(e).splitlines()[0][:300],
            },
            "scheduler": scheduler_state(lender, beat),
            "outbox": None,
        }
    sched = scheduler_state(lender, beat)
    return 200, {
        "status": "degraded" if sched["state"] == "stalled" else "ok",
        "database": lender.store.engine.dialect.name,
        "partners": partners,
        "database_check": {"ok": True, "latency_ms": round(ms, 3), "error": None},
        "scheduler": sched,
        "outbox": outbox,
    }


def capped_count(conn: Connection, where: Any) -> int:
    """Rows of the outbox matching `where`, counted up to COUNT_CAP (an index range of at most
    that many entries: a partner without a callback URL can pile up any number)."""
    inner = select(Callback.id).where(where).limit(COUNT_CAP).subquery()
    return int(conn.scalar(select(func.count()).select_from(inner)) or 0)


def backlog(conn: Connection, now: float) -> dict[str, Any]:
    """Pending and dead deliveries (each counted up to COUNT_CAP), and how long the most
    overdue pending delivery has been due: since it was enqueued, or since its retry fell
    due (the first entry of the outbox's due index)."""
    due = conn.scalar(select(func.min(Callback.next_attempt_at)).where(Callback.state == "pending"))
    return {
        "pending": capped_count(conn, Callback.state == "pending"),
        "dead": capped_count(conn, Callback.state == "dead"),
        "oldest_pending_seconds": round(max(0.0, now - due), 3) if due is not None else None,
    }


def scheduler_state(lender: Lender, beat: Heartbeat | None) -> dict[str, Any]:
    """off: this app runs no scheduler (the in-process harness, `background=False`)."""
    if beat is None:
        return {"state": "off", "last_tick": None, "last_prune": None, "pruned": None}
    now = lender.wall()
    since = beat.last_tick if beat.last_tick is not None else beat.started
    late = now - since > max(STALE_TICKS * beat.tick, 30.0)
    state = "stopped" if beat.stopped else "stalled" if late else "running"
    return {
        "state": state,
        "last_tick": clockmod.iso(beat.last_tick) if beat.last_tick is not None else None,
        "last_prune": clockmod.iso(beat.last_prune) if beat.last_prune is not None else None,
        "pruned": beat.pruned or None,
    }
