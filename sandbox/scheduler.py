"""The metronome (style.md: APScheduler is a metronome, not a model).

APScheduler only fires periodic jobs; business events live in the database. Job "due":
process due events of every partner whose clock moves by itself (real/scaled). Manual clocks
move only when advanced, and advancing processes their events itself. Several processes may
run this at once: due events are claimed atomically (store.claim).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from .lender import Lender
from .orders import process_due
from .store import Partner

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
class Runner:
    scheduler: BackgroundScheduler

    async def stop(self) -> None:
        await run_in_threadpool(self.scheduler.shutdown, True)


def start(lender: Lender) -> Runner:
    tick = lender.settings.scheduler.tick
    sched = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1,
                                              "misfire_grace_time": None})
    sched.add_job(process_moving_clocks, "interval", args=[lender], seconds=tick, id="due")
    sched.start()
    return Runner(sched)
