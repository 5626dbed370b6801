"""The metronome: APScheduler ticks, the database holds the business events.

APScheduler only fires periodic jobs; business events live in the database. Job "due":
process due events of every partner whose clock moves by itself (real/scaled). Manual clocks
move only when advanced, and advancing processes their events itself. Job "outbox": wake the
callback worker (worker.Worker, an asyncio task in the server's loop, also woken at once
by `lender.on_outbox` when a transaction enqueues callbacks), so retries fall due on time.
Job "prune": the journal's retention (services.retention), every [journal] prune_every.
Several processes may run this at once: due events and outbox rows are claimed atomically
(store.claim), and one pruner works at a time. `Heartbeat` is what /sandbox/health reads.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from ..store import Partner
from .due import process_due
from .lender import Lender
from .retention import prune
from .senders import AiohttpSender
from .worker import Worker

log = logging.getLogger("sandbox.scheduler")


def process_moving_clocks(lender: Lender) -> int:
    """One pass of the "due" job: every partner with a real or scaled clock, up to its now."""
    with lender.store.transaction() as s:
        partners = list(s.scalars(select(Partner).where(Partner.clock_mode != "manual")))
        targets = [(p.partner_token, lender.now(p)) for p in partners]
    fired = 0
    for token, now in targets:
        try:
            fired += process_due(lender, token, now)
        except Exception:  # one partner's trouble must not stop the others' clocks
            log.exception("processing due events of %s failed", token)
    return fired


@dataclass
class Heartbeat:
    """When the jobs last ran (wall): /sandbox/health reads it."""

    tick: float
    started: float
    last_tick: float | None = None
    last_prune: float | None = None
    pruned: dict[str, Any] = field(default_factory=dict)  # what the last prune deleted
    stopped: bool = False


def _due_job(lender: Lender, beat: Heartbeat) -> None:
    try:
        process_moving_clocks(lender)
    finally:
        beat.last_tick = lender.wall()


def _prune_job(lender: Lender, beat: Heartbeat) -> None:
    beat.pruned = prune(lender)
    beat.last_prune = lender.wall()
    if beat.pruned["journal_deleted"] or beat.pruned["callbacks_deleted"]:
        log.info("retention: %s", beat.pruned)


@dataclass
class Runner:
    scheduler: BackgroundScheduler
    worker: Worker
    sender: AiohttpSender
    heartbeat: Heartbeat

    async def stop(self) -> None:
        """Stop ticking, let in-flight callbacks finish briefly (the rest are handed back to
        the outbox), then close the HTTP client."""
        self.heartbeat.stopped = True
        await asyncio.to_thread(self.scheduler.shutdown, True)
        try:
            await self.worker.stop()
        finally:
            await self.sender.aclose()


def start(lender: Lender) -> Runner:
    """Start the metronome and the callback worker; call from inside the server's event loop."""
    tick = lender.settings.scheduler.tick
    sender = AiohttpSender(policy=lender.callback_policy)  # [callbacks] allow
    worker = Worker(lender, sender)
    sched = BackgroundScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    )
    beat = Heartbeat(tick, lender.wall())
    sched.add_job(_due_job, "interval", args=[lender, beat], seconds=tick, id="due")
    sched.add_job(worker.wake, "interval", seconds=tick, id="outbox")
    every = lender.settings.journal.prune_every
    sched.add_job(_prune_job, "interval", args=[lender, beat], seconds=every, id="prune")
    worker.start()
    sched.start()
    return Runner(sched, worker, sender, beat)
