"""The server's delivery worker: an asyncio task that drains the outbox as callbacks fall due.

Woken at once when a transaction enqueued callbacks (`lender.on_outbox`) and on every
scheduler tick (retries); each claimed delivery is sent as its own task and the results are
recorded in batches (services.outbox does the claiming, sending and recording).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .lender import Lender
from .outbox import Job, Outcome, claim, record, release, send
from .senders import Sender

log = logging.getLogger("sandbox.callbacks")


class Worker:
    """The server's delivery loop, in the server's event loop.

    Woken by `wake()` — thread-safe: the outbox hook (`lender.on_outbox`, called after a
    transaction enqueued callbacks) and the scheduler's "outbox" tick (retries). Each wake
    claims what is due and sends every job as its own task, so one slow receiver never holds
    up another partner's callbacks; at most `batch_size` deliveries are in flight. Results go
    to one recorder task that writes whatever has finished in a single transaction."""

    def __init__(self, lender: Lender, sender: Sender, *, limit: int | None = None):
        self.lender, self.sender = lender, sender
        self.limit = limit or lender.settings.callbacks.batch_size
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._done: asyncio.Queue[Outcome | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: list[asyncio.Task[None]] = []
        self._stopping = False
        self._previous_hook: Callable[[], None] | None = None

    def start(self) -> None:
        self._previous_hook = previous = self.lender.on_outbox

        def hook() -> None:
            previous()
            self.wake()

        self.lender.on_outbox = hook
        self._background = [
            self._loop.create_task(self._claim_loop(), name="callback-claims"),
            self._loop.create_task(self._record_loop(), name="callback-records"),
        ]
        self._wake.set()  # rows left pending by an earlier run go out now

    def wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the loop is closed (server gone): nothing left to wake
            pass

    async def _claim_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            await self._claim()

    async def _claim(self) -> None:
        room = self.limit - len(self._tasks)
        if room <= 0:
            return  # the recorder wakes us when deliveries finish
        try:
            jobs = await asyncio.to_thread(claim, self.lender, self.lender.wall(), room)
        except Exception:  # e.g. the database is briefly unavailable: the next tick retries
            log.exception("claiming callback deliveries failed")
            return
        if self._stopping:
            await asyncio.to_thread(release, self.lender, jobs)
            return
        for job in jobs:
            task = self._loop.create_task(self._send(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if len(jobs) == room:
            self._wake.set()  # there may be more due

    async def _send(self, job: Job) -> None:
        self._done.put_nowait(await send(self.lender, self.sender, job))

    async def _record_loop(self) -> None:
        while True:
            batch = [await self._done.get()]
            while not self._done.empty():
                batch.append(self._done.get_nowait())
            outcomes = [o for o in batch if o is not None]
            if outcomes:
                try:
                    await asyncio.to_thread(record, self.lender, outcomes)
                except Exception:  # the rows keep their leases and go out again after them
                    log.exception("recording %d callback deliveries failed", len(outcomes))
            if None in batch:
                return
            self._wake.set()  # room again, and ordered successors may be due

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming; give in-flight sends `grace` seconds, then cancel (rows handed back);
        record every finished send."""
        self._stopping = True
        if self._previous_hook is not None:
            self.lender.on_outbox = self._previous_hook
        self._wake.set()
        if not self._background:
            return
        claims, recorder = self._background
        await claims
        if self._tasks:
            grace = min(self.lender.settings.callbacks.timeout, 2.0) if grace is None else grace
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._done.put_nowait(None)
        await recorder
