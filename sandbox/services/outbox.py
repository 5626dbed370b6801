"""The callback outbox (docs/protocol.md §6): claim due deliveries, send them, record the answers.

`engine.apply` enqueues callbacks 19-21 into the outbox (store.Callback) in the transition's
own transaction; this module delivers them. It owns: claiming due rows atomically with a
lease (FOR UPDATE SKIP LOCKED on PostgreSQL, so several processes share the work), sending
each in the partner's request envelope through one injected `Sender`, logging every attempt
(store.CallbackAttempt), retries with exponential backoff and jitter, dead-lettering,
per-order ordering and per-partner chaos (duplicate / delay / reorder). The server's
`worker.Worker` and the in-process `deliver_now` both drive it.

At-least-once: a row is never deleted and is only marked delivered after the receiver
answered `code: 0`; a delivery interrupted mid-flight (process killed) keeps its lease and is
claimed again when the lease runs out. No database transaction is held across an HTTP call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from ..core.chaos import Chaos
from ..core.crypto import Codec, php_json_encode
from ..core.scenarios import rng_for
from ..core.settings import CallbackSettings
from ..store import Callback, CallbackAttempt, Partner
from .lender import Lender
from .senders import RESPONSE_LIMIT, AiohttpSender, Sender

log = logging.getLogger("sandbox.callbacks")

STATES = ("pending", "delivered", "dead")


# ---- the retry policy ----


def backoff(cfg: CallbackSettings, attempts: int, rng: Any | None = None) -> float:
    """Delay before attempt `attempts + 1`: min(first * factor^(attempts-1), max) +/- jitter."""
    base = min(cfg.first_delay * cfg.factor ** max(attempts - 1, 0), cfg.max_delay)
    if rng is None or cfg.jitter <= 0:
        return base
    return max(0.0, base * (1 + rng.uniform(-cfg.jitter, cfg.jitter)))


def lease_seconds(cfg: CallbackSettings) -> float:
    # Long enough for a chaos duplicate (two sends) plus recording; a killed worker's rows
    # come back after this.
    return 2 * cfg.timeout + 2.0


def refusal(status: int, text: str) -> str:
    """Why an answer is not an acknowledgement, or "" (docs/protocol.md §6): HTTP 2xx and a
    JSON object whose `code` is the integer 0 or the string "0" (PHP receivers send both);
    not 0.0, "00", " 0", false or null."""
    if not 200 <= status < 300:
        return f"HTTP {status}"
    try:
        doc = json.loads(text)
    except ValueError:
        return f"HTTP {status}, but the body is not JSON"
    if not isinstance(doc, dict):
        return f"HTTP {status}, but the body is not a JSON object"
    code = doc.get("code")
    if (type(code) is int and code == 0) or code == "0":
        return ""
    return f"code {code!r}: {doc.get('message', doc.get('msg', ''))}"


def _roll(lender: Lender, kind: str, row: Callback) -> Any:
    # Seeded per delivery, so a chaos run is reproducible (docs/architecture.md "Outcomes").
    return rng_for(
        lender.settings.scenarios.seed,
        "callback-chaos",
        kind,
        row.partner_token,
        row.id,
        row.attempts,
    )


# ---- claiming ----


@dataclass(frozen=True)
class Job:
    """One claimed delivery: everything the send needs, taken from the row at claim time."""

    id: int
    url: str
    content: bytes
    lease: float
    duplicate: bool = False


@dataclass(frozen=True)
class Receiver:
    partner: Partner
    chaos: Chaos


def request_content(partner: Partner, body: dict) -> bytes:
    """docs/protocol.md §2: the request envelope with the partner's key/IV (or plain JSON).

    Encoded like a PHP lender would (json_encode: `\\/` and `\\uXXXX` escapes)."""
    if not partner.encrypt_callbacks:
        return php_json_encode(body).encode()
    data = Codec(partner.aes_key, partner.aes_iv).encrypt_json(body)
    return php_json_encode({"partner_token": partner.partner_token, "encode_data": data}).encode()


def _receivers(s: Session) -> dict[str, Receiver]:
    """Partners that can receive now: a callback URL and not paused (others' rows just wait)."""
    rows = s.scalars(
        select(Partner).where(Partner.callback_url != "", Partner.callbacks_paused.is_(False))
    )
    return {p.partner_token: Receiver(p, Chaos.of(p.chaos)) for p in rows}


def _due(lender: Lender, now: float, receivers: dict[str, Receiver], limit: int) -> Any:
    q = select(Callback).where(
        Callback.state == "pending",
        Callback.next_attempt_at <= now,
        Callback.lease_until <= now,
        Callback.partner_token.in_(list(receivers)),
    )
    if lender.settings.callbacks.ordered:
        earlier = aliased(Callback)
        blocked = (
            select(earlier.id)
            .where(
                earlier.partner_token == Callback.partner_token,
                earlier.order_no == Callback.order_no,
                earlier.state == "pending",
                earlier.id < Callback.id,
            )
            .exists()
        )
        # Partners with reorder chaos are ordered in Python (`_reorder`), row by row.
        loose = [t for t, r in receivers.items() if r.chaos.reorder]
        q = q.where(or_(Callback.partner_token.in_(loose), ~blocked) if loose else ~blocked)
    return lender.store.claim(q.order_by(Callback.id).limit(limit))


def claim(lender: Lender, now: float, limit: int) -> list[Job]:
    """Lease up to `limit` due deliveries (one short transaction) and build their requests."""
    if limit <= 0:
        return []
    with lender.store.transaction() as s:
        receivers = _receivers(s)
        if not receivers:
            return []
        rows = list(s.scalars(_due(lender, now, receivers, limit)))
        rows = _apply_chaos(lender, s, rows, receivers, now)
        lease = now + lease_seconds(lender.settings.callbacks)
        jobs = []
        for row in rows:
            row.lease_until = lease
            jobs.append(_job(lender, row, receivers[row.partner_token], lease))
        return jobs


def _job(lender: Lender, row: Callback, r: Receiver, lease: float) -> Job:
    duplicate = (
        r.chaos.duplicate > 0 and _roll(lender, "duplicate", row).random() < r.chaos.duplicate
    )
    return Job(
        row.id,
        r.partner.callback_url + row.path,
        request_content(r.partner, row.body),
        lease,
        duplicate,
    )


def _apply_chaos(
    lender: Lender, s: Session, rows: list[Callback], receivers: dict[str, Receiver], now: float
) -> list[Callback]:
    held: set[int] = set()
    keep = []
    for row in rows:
        chaos = receivers[row.partner_token].chaos
        if _delayed(lender, row, chaos, now):
            continue
        if (
            chaos.reorder
            and lender.settings.callbacks.ordered
            and not _reorder(lender, s, row, chaos, now, held)
        ):
            continue
        keep.append(row)
    return [row for row in keep if row.id not in held]


def _delayed(lender: Lender, row: Callback, chaos: Chaos, now: float) -> bool:
    """Chaos `delay`: hold a never-tried row until enqueue time + delay (once: a note marks it)."""
    lo, hi = chaos.delay
    if hi <= 0 or row.attempts or row.last_error:
        return False
    delay = _roll(lender, "delay", row).uniform(lo, hi)
    due = row.next_attempt_at + delay  # next_attempt_at of a fresh row = its enqueue wall time
    if due <= now:
        return False
    row.next_attempt_at = due
    row.last_error = f"chaos: first attempt delayed {delay:.3f}s"
    return True


def _reorder(
    lender: Lender, s: Session, row: Callback, chaos: Chaos, now: float, held: set[int]
) -> bool:
    """Chaos `reorder`: may `row` go although earlier rows of its order are pending?

    Not chosen: ordinary ordering (it waits). Chosen: it goes, and the earlier rows that
    are due now are held back for `reorder_hold` seconds so it really overtakes them."""
    earlier = list(
        s.scalars(
            select(Callback).where(
                Callback.partner_token == row.partner_token,
                Callback.order_no == row.order_no,
                Callback.state == "pending",
                Callback.id < row.id,
            )
        )
    )
    if not earlier:
        return True
    if _roll(lender, "reorder", row).random() >= chaos.reorder:
        return False
    note = f"chaos: held back {chaos.reorder_hold:g}s so #{row.id} overtakes it"
    for e in earlier:
        if e.lease_until <= now and e.next_attempt_at <= now:  # not in flight, not waiting
            e.next_attempt_at = now + chaos.reorder_hold
            e.last_error = e.last_error or note
            held.add(e.id)
    return True


def release(lender: Lender, jobs: Sequence[Job]) -> None:
    """Give leased rows back (shutdown): they are due again at once, on any process."""
    with lender.store.transaction() as s:
        for job in jobs:
            row = s.get(Callback, job.id)
            if row is not None and row.lease_until == job.lease:
                row.lease_until = 0.0


# ---- sending and recording ----


@dataclass(frozen=True)
class Attempt:
    at: float
    status: int | None
    response: str
    latency_ms: float
    error: str

    @property
    def ok(self) -> bool:
        return not self.error


async def _attempt(lender: Lender, sender: Sender, job: Job) -> Attempt:
    at, t0 = lender.wall(), time.perf_counter()
    try:
        status, text = await sender.send(job.url, job.content, lender.settings.callbacks.timeout)
    except Exception as e:  # any failure to get an answer is a failed attempt, retried
        ms = (time.perf_counter() - t0) * 1000
        return Attempt(at, None, "", ms, f"{type(e).__name__}: {e}".rstrip(": "))
    ms = (time.perf_counter() - t0) * 1000
    return Attempt(at, status, text[:RESPONSE_LIMIT], ms, refusal(status, text))


Outcome = tuple[Job, Sequence[Attempt]]


async def send(lender: Lender, sender: Sender, job: Job) -> Outcome:
    """Send one claimed job (twice under chaos `duplicate`); nothing is recorded yet."""
    try:
        results = [await _attempt(lender, sender, job)]
        if results[0].ok and job.duplicate:
            results.append(await _attempt(lender, sender, job))
    except asyncio.CancelledError:  # shutting down mid-send: hand the row back, retried later
        release(lender, [job])
        raise
    return job, results


def record(lender: Lender, outcomes: Sequence[Outcome]) -> None:
    """Log the attempts and move each row on — delivered, retry later, or dead — in ONE
    transaction for the lot (a commit per callback would cap throughput on SQLite)."""
    with lender.store.transaction() as s:
        for job, results in outcomes:
            row = s.get(Callback, job.id)
            if row is None or row.lease_until != job.lease:
                # reset or re-claimed meanwhile: the row is no longer ours to judge
                log.info("callback %s changed while in flight; result dropped", job.id)
                continue
            for a in results:
                s.add(
                    CallbackAttempt(
                        callback_id=row.id,
                        at=a.at,
                        url=job.url,
                        request_body=job.content.decode("utf-8"),
                        status_code=a.status,
                        response_body=a.response,
                        latency_ms=round(a.latency_ms, 3),
                        error=a.error,
                    )
                )
            row.attempts += len(results)
            row.lease_until = 0.0
            _judge(lender, lender.settings.callbacks, row, results)


def _judge(
    lender: Lender, cfg: CallbackSettings, row: Callback, results: Sequence[Attempt]
) -> None:
    first = results[0]
    if first.ok:
        row.state, row.delivered_at = "delivered", lender.wall()
        row.last_error = "chaos: sent twice (duplicate)" if len(results) > 1 else ""
    elif row.attempts >= cfg.max_attempts:
        row.state, row.last_error = "dead", first.error
    else:
        rng = rng_for(lender.settings.scenarios.seed, "callback-jitter", row.id, row.attempts)
        row.next_attempt_at = lender.wall() + backoff(cfg, row.attempts, rng)
        row.last_error = first.error


# ---- flushing: tests and in-process use ----


async def flush(lender: Lender, sender: Sender) -> int:
    """One pass: claim what is due now (up to batch_size), send it all concurrently, record.

    Returns how many deliveries were attempted."""
    jobs = await asyncio.to_thread(
        claim, lender, lender.wall(), lender.settings.callbacks.batch_size
    )
    if not jobs:
        return 0
    sent = await asyncio.gather(*(send(lender, sender, j) for j in jobs), return_exceptions=True)
    await asyncio.to_thread(record, lender, [o for o in sent if not isinstance(o, BaseException)])
    errors = [o for o in sent if isinstance(o, BaseException)]
    if errors:
        raise errors[0]
    return len(jobs)


async def flush_until_idle(lender: Lender, sender: Sender, max_rounds: int = 100) -> int:
    """Flush while anything is due now (ordered successors become due as predecessors land).

    Retries scheduled for later stay pending. Returns the number of deliveries attempted."""
    total = 0
    for _ in range(max_rounds):
        n = await flush(lender, sender)
        total += n
        if not n:
            break
    return total


def deliver_now(lender: Lender, sender: Sender | None = None, max_rounds: int = 100) -> int:
    """Sync `flush_until_idle` for in-process use; without `sender`, a fresh AiohttpSender."""

    async def run() -> int:
        if sender is not None:
            return await flush_until_idle(lender, sender, max_rounds)
        async with AiohttpSender(policy=lender.callback_policy) as own:
            return await flush_until_idle(lender, own, max_rounds)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run())
    # Called from code running inside an event loop: run ours on a helper thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()
