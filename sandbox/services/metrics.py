"""The Prometheus metrics of one process (GET /metrics, the text format of prometheus-client).

Counted as requests come (per process): lender requests by path and answer code with their
latency, requests per partner, control requests by route and HTTP status. Read from the
database at scrape time (the same on every process of an instance): transitions by trigger
and callback attempts by result (totals, counted once at the first scrape and then from the
rows added since), the outbox's pending deliveries per partner, dead ones, and how overdue
the oldest pending one is. Every scrape query is a range of an index; backlog counts stop at
`health.COUNT_CAP`.

Label cardinality is bounded: paths and codes come from the protocol's tables, routes from
the control table (their templates, not the URLs); partner labels are the first
`MAX_PARTNERS` partners a process sees, the rest are counted under "_other", and a token no
partner has is "_unknown". The registry belongs to the app (no module-level state).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from ..store import Callback, CallbackAttempt, Partner, TimelineRow
from .health import COUNT_CAP, backlog, capped_count
from .lender import Lender

PREFIX = "lender_sandbox"
MAX_PARTNERS = 100  # partner label values per process; more are "_other"
# Seconds: a lender answer takes ~0.1-1 ms in process; fault rules add up to 30 s.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """The registry of one app and the call each request makes into it."""

    def __init__(self, lender: Lender):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_lender_requests",
            "Lender requests (02-18) answered, by path and answer code ('none': a fault "
            "answered instead of the envelope)",
            ["path", "code"],
            registry=r,
        )
        self.latency = Histogram(
            f"{PREFIX}_lender_request_duration_seconds",
            "Lender requests: from the first byte of the body read to the answer sent",
            ["path"],
            buckets=BUCKETS,
            registry=r,
        )
        self.partners = Counter(
            f"{PREFIX}_partner_requests",
            f"Lender requests by partner (the first {MAX_PARTNERS} seen; then '_other')",
            ["partner"],
            registry=r,
        )
        self.control = Counter(
            f"{PREFIX}_http_requests",
            "Other requests (control API, dashboard, docs, pages) by route and HTTP status",
            ["method", "route", "status"],
            registry=r,
        )
        ProcessCollector(namespace=PREFIX, registry=r)
        r.register(StoreCollector(lender))
        self._lender_children: dict[tuple[str, Any], tuple[Any, Any]] = {}
        self._partner_children: dict[str, Any] = {}

    def lender_request(self, path: str, code: Any, partner: str | None, seconds: float) -> None:
        """One lender request (the one call the lender endpoint makes): children are made
        once per (path, code) and per partner, so a request costs two increments and an
        observation."""
        children = self._lender_children.get((path, code))
        if children is None:
            label = "none" if code is None else str(code)
            children = self._lender_children[(path, code)] = (
                self.requests.labels(path, label),
                self.latency.labels(path),
            )
        children[0].inc()
        children[1].observe(seconds)
        key = partner if partner is not None else "_unknown"
        child = self._partner_children.get(key)
        if child is None:
            if len(self._partner_children) >= MAX_PARTNERS:
                key = "_other"
                child = self._partner_children.get(key)
            if child is None:
                child = self._partner_children[key] = self.partners.labels(key)
        child.inc()

    def other_request(self, method: str, route: str, status: int) -> None:
        self.control.labels(method, route, str(status)).inc()


class StoreCollector(Collector):
    """What the database knows, read at scrape time. Totals of transitions and attempts
    are counted in full once, then from the rows with ids above the last seen (a primary
    key range). A row committed late with a lower id (PostgreSQL, concurrent writers) can
    be missed: these totals are for rates and dashboards, not for accounting."""

    def __init__(self, lender: Lender):
        self.lender = lender
        self.transitions: dict[str, int] = {}
        self.attempts = {"acknowledged": 0, "failed": 0}
        self.timeline_id: int | None = None
        self.attempt_id: int | None = None

    def describe(self) -> list[Metric]:
        return []  # read at scrape time only: registering must not query the database

    def collect(self) -> Iterator[Metric]:
        with self.lender.store.begin() as conn:
            self._count_transitions(conn)
            self._count_attempts(conn)
            pending = {
                token: capped_count(
                    conn, (Callback.partner_token == token) & (Callback.state == "pending")
                )
                for token in conn.scalars(select(Partner.partner_token))
            }
            outbox = backlog(conn, self.lender.wall())
        yield _counter("transitions", "Order transitions by trigger", "trigger", self.transitions)
        yield _counter(
            "callback_attempts",
            "Callback delivery attempts by result",
            "result",
            self.attempts,
        )
        gauge = GaugeMetricFamily(
            f"{PREFIX}_callbacks_pending",
            f"Deliveries waiting, by partner, each counted up to {COUNT_CAP} (the "
            f"{MAX_PARTNERS} largest; the rest summed as '_other')",
            labels=["partner"],
        )
        for token, n in _top(pending).items():
            gauge.add_metric([token], n)
        yield gauge
        yield GaugeMetricFamily(
            f"{PREFIX}_callbacks_dead",
            f"Deliveries that ran out of attempts (counted up to {COUNT_CAP})",
            value=outbox["dead"],
        )
        age = outbox["oldest_pending_seconds"]
        yield GaugeMetricFamily(
            f"{PREFIX}_callbacks_oldest_pending_seconds",
            "How long the most overdue pending delivery has been due (0: none)",
            value=age or 0.0,
        )

    def _count_transitions(self, conn: Any) -> None:
        q = select(TimelineRow.trigger, func.count(), func.max(TimelineRow.id)).group_by(
            TimelineRow.trigger
        )
        if self.timeline_id is not None:
            q = q.where(TimelineRow.id > self.timeline_id)
        highest = self.timeline_id or 0
        for trigger, n, top in conn.execute(q):
            self.transitions[trigger] = self.transitions.get(trigger, 0) + n
            highest = max(highest, top)
        self.timeline_id = highest

    def _count_attempts(self, conn: Any) -> None:
        failed = case((CallbackAttempt.error != "", 1), else_=0)
        q = select(func.count(), func.sum(failed), func.max(CallbackAttempt.id))
        if self.attempt_id is not None:
            q = q.where(CallbackAttempt.id > self.attempt_id)
        n, bad, top = conn.execute(q).one()
        self.attempts["failed"] += int(bad or 0)
        self.attempts["acknowledged"] += int(n or 0) - int(bad or 0)
        self.attempt_id = max(self.attempt_id or 0, top or 0)


def _counter(name: str, doc: str, label: str, values: dict[str, int]) -> Metric:
    family = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _top(counts: dict[str, int]) -> dict[str, int]:
    """At most MAX_PARTNERS labels: the largest, the rest summed as "_other"."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    out = dict(ranked[:MAX_PARTNERS])
    if len(ranked) > MAX_PARTNERS:
        out["_other"] = sum(n for _, n in ranked[MAX_PARTNERS:])
    return out
