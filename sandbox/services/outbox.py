"""The callback outbox (docs/protocol.md §6): claim due deliveries, send them, record the answers.

`engine.apply` enqueues callbacks 19-21 into the outbox (table `callbacks`) in the
transition's own transaction; this module delivers them. It owns: claiming due rows
atomically with a lease (FOR UPDATE SKIP LOCKED on PostgreSQL, so several processes share the
work), sending each in the partner's request envelope through one injected `Sender`, logging
every attempt (`callback_attempts`), retries with exponential backoff and jitter on the
partner's clock, dead-lettering, per-order ordering and per-partner chaos (duplicate / delay /
reorder). The server's `worker.Worker` and the in-process `deliver_now` both drive it.

Time: a first attempt goes out at once. A retry is due `backoff` seconds later on the
partner's clock (`retry_at`, virtual): on a real or scaled clock that is a wall time
(`next_attempt_at`); a manual clock's retries wait for the clock, and an advance past them
(`follow_clock`) makes them due — each timed from when the one before fell due, so a receiver
failing for a while within the advanced span is retried through it in order.

At-least-once: a pending row is never deleted (retention prunes only delivered and dead
ones: services.retention) and is only marked delivered after the receiver answered `code: 0`;
a delivery interrupted mid-flight (process killed) keeps its lease and is claimed again when
the lease runs out. No database transaction is held across an HTTP call.
Claims and records are SQLAlchemy Core on records (`store.records.CallbackRec`): one short
transaction per batch each way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection

from ..core import clock as clockmod
from ..core.chaos import Chaos
from ..core.crypto import Codec, php_json_encode
from ..core.scenarios import rng_for
from ..core.settings import CallbackSettings
from ..store import fast
from ..store import tables as t
from ..store.records import CallbackRec, PartnerRec
from . import locks
from .lender import Keyed, Lender
from .senders import RESPONSE_LIMIT, AiohttpSender, Sender
from .unit import statement

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


def _roll(lender: Lender, kind: str, row: CallbackRec) -> Any:
    # Seeded per delivery, so a chaos run is reproducible (docs/architecture.md "Outcomes").
    return rng_for(
        lender.settings.scenarios.seed,
        "callback-chaos",
        kind,
        row.partner_token,
        row.id,
        row.attempts,
    )


CALLBACKS: Table = t.Callback.__table__  # type: ignore[assignment]
ATTEMPTS: Table = t.CallbackAttempt.__table__  # type: ignore[assignment]
PARTNERS: Table = t.Partner.__table__  # type: ignore[assignment]
NEVER = clockmod.LATEST  # next_attempt_at of a retry waiting for a manual clock to move
URL_LIMIT = 500  # callback_attempts.url


# ---- claiming ----


@dataclass(frozen=True)
class Job:
    """One claimed delivery: everything the send needs, taken from the row at claim time."""

    id: int
    url: str
    content: bytes
    lease: float
    duplicate: bool = False
    partner_token: str = ""


@dataclass(frozen=True)
class Receiver:
    partner: PartnerRec
    chaos: Chaos


class Envelope(Keyed, Protocol):
    """What a callback's envelope needs of its partner (a record or a row)."""

    partner_token: str
    encrypt_callbacks: bool


def request_content(partner: Envelope, body: dict, codec: Codec | None = None) -> bytes:
    """docs/protocol.md §2: the request envelope with the partner's key/IV (or plain JSON).

    Encoded like a PHP lender would (json_encode: `\\/` and `\\uXXXX` escapes)."""
    if not partner.encrypt_callbacks:
        return php_json_encode(body).encode()
    data = (codec or Codec(partner.aes_key, partner.aes_iv)).encrypt_json(body)
    return php_json_encode({"partner_token": partner.partner_token, "encode_data": data}).encode()


RECEIVERS = select(*PartnerRec.select_columns()).where(
    PARTNERS.c.callback_url != "", PARTNERS.c.callbacks_paused.is_(False)
)
CALLBACK_COLUMNS = CallbackRec.select_columns()


def _receivers(conn: Connection) -> dict[str, Receiver]:
    """Partners that can receive now: a callback URL and not paused (others' rows just wait)."""
    partners = (PartnerRec.load(r) for r in conn.execute(RECEIVERS))
    return {p.partner_token: Receiver(p, Chaos.of(p.chaos)) for p in partners}


def _due(lender: Lender, now: float, receivers: dict[str, Receiver], limit: int) -> Any:
    c = CALLBACKS.c
    q = select(*CALLBACK_COLUMNS).where(
        c.state == "pending",
        # "+ 0" keeps SQLite's planner off ix_callbacks_due (state, next_attempt_at), whose
        # every due row it then sorted by id: it reads ix_callbacks_partner_state in id order
        # instead and stops at the limit (5 000 pending: 6 ms -> 0.03 ms a claim).
        c.next_attempt_at + 0 <= now,
        c.lease_until <= now,
        c.partner_token.in_(list(receivers)),
    )
    if lender.settings.callbacks.ordered:
        earlier = CALLBACKS.alias("earlier")
        blocked = (
            select(earlier.c.id)
            .where(
                # The order's id (every callback row has it: engine.Ctx.callback), so the
                # check reads that order's rows (ix_callbacks_order_id), not every pending
                # row of the partner (ix_callbacks_partner_state): a claim with 5 000 pending
                # took 500 ms that way.
                earlier.c.order_id == c.order_id,
                earlier.c.state == "pending",
                earlier.c.id < c.id,
            )
            .exists()
        )
        # Partners with reorder chaos are ordered in Python (`_reorder`), row by row.
        loose = [t for t, r in receivers.items() if r.chaos.reorder]
        q = q.where(or_(c.partner_token.in_(loose), ~blocked) if loose else ~blocked)
    return lender.store.claim(q.order_by(c.id).limit(limit))


def claim(lender: Lender, now: float, limit: int) -> list[Job]:
    """Lease up to `limit` due deliveries (one short transaction) and build their requests."""
    if limit <= 0:
        return []
    with lender.store.begin() as conn:
        receivers = _receivers(conn)
        if not receivers:
            return []
        rows = [CallbackRec.load(r) for r in conn.execute(_due(lender, now, receivers, limit))]
        # Their partners shared (services.locks), skipping a partner being reset: its rows are
        # about to go, and waiting for the reset while holding claimed rows could deadlock.
        tokens = {row.partner_token for row in rows}
        open_ = locks.share_many(lender.store, conn, tokens, skip_locked=True) if rows else set()
        rows = [row for row in rows if row.partner_token in open_]
        touched = {row.id: row for row in rows}  # chaos may change earlier rows too
        rows = _apply_chaos(lender, conn, rows, receivers, now, touched)
        lease = now + lease_seconds(lender.settings.callbacks)
        for row in rows:
            row.lease_until = lease
        _write(lender, conn, touched.values())
        return [_job(lender, row, receivers[row.partner_token], lease) for row in rows]


def _write(lender: Lender, conn: Connection, rows: Iterable[CallbackRec]) -> None:
    """Write the rows' changed columns: one executemany per set of columns."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        changed = row.changes()
        if changed:
            by_columns[tuple(changed)].append({"_id": row.id, **changed})
            row.saved()
    for keys, values in by_columns.items():
        fast.many(conn, lender.store.fast(statement(CALLBACKS, keys, update=True)), values)


def _job(lender: Lender, row: CallbackRec, r: Receiver, lease: float) -> Job:
    duplicate = (
        r.chaos.duplicate > 0 and _roll(lender, "duplicate", row).random() < r.chaos.duplicate
    )
    content = request_content(r.partner, row.body, lender.codec(r.partner))
    return Job(
        row.id, r.partner.callback_url + row.path, content, lease, duplicate, row.partner_token
    )


def _apply_chaos(
    lender: Lender,
    conn: Connection,
    rows: list[CallbackRec],
    receivers: dict[str, Receiver],
    now: float,
    touched: dict[int, CallbackRec],
) -> list[CallbackRec]:
    held: set[int] = set()
    keep = []
    for row in rows:
        chaos = receivers[row.partner_token].chaos
        if _delayed(lender, row, chaos, now):
            continue
        if (
            chaos.reorder
            and lender.settings.callbacks.ordered
            and not _reorder(lender, conn, row, chaos, now, held, touched)
        ):
            continue
        keep.append(row)
    return [row for row in keep if row.id not in held]


def _delayed(lender: Lender, row: CallbackRec, chaos: Chaos, now: float) -> bool:
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


EARLIER_PENDING = select(*CALLBACK_COLUMNS).where(
    CALLBACKS.c.partner_token == bindparam("token"),
    CALLBACKS.c.order_no == bindparam("order_no"),
    CALLBACKS.c.state == "pending",
    CALLBACKS.c.id < bindparam("before"),
)


def _reorder(
    lender: Lender,
    conn: Connection,
    row: CallbackRec,
    chaos: Chaos,
    now: float,
    held: set[int],
    touched: dict[int, CallbackRec],
) -> bool:
    """Chaos `reorder`: may `row` go although earlier rows of its order are pending?

    Not chosen: ordinary ordering (it waits). Chosen: it goes, and the earlier rows that
    are due now are held back for `reorder_hold` seconds so it really overtakes them."""
    found = conn.execute(
        EARLIER_PENDING, {"token": row.partner_token, "order_no": row.order_no, "before": row.id}
    )
    earlier = [touched.setdefault(r.id, CallbackRec.load(r)) for r in found]
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


RELEASE = (
    update(CALLBACKS)
    .where(CALLBACKS.c.id == bindparam("_id"), CALLBACKS.c.lease_until == bindparam("_lease"))
    .values(lease_until=0.0)
)


def release(lender: Lender, jobs: Sequence[Job]) -> None:
    """Give leased rows back (shutdown): they are due again at once, on any process."""
    if jobs:
        with lender.store.begin() as conn:
            conn.execute(RELEASE, [{"_id": j.id, "_lease": j.lease} for j in jobs])


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


def _by_ids(store: Any) -> Any:
    return store.lock_row(  # in id order, as every batch locks them: no two wait on each other
        select(*CALLBACK_COLUMNS)
        .where(CALLBACKS.c.id.in_(bindparam("ids", expanding=True)))
        .order_by(CALLBACKS.c.id)
    )


PARTNERS_BY_TOKEN = select(*PartnerRec.select_columns()).where(
    PARTNERS.c.partner_token.in_(bindparam("tokens", expanding=True))
)
ATTEMPT_KEYS = (
    "callback_id",
    "at",
    "url",
    "request_body",
    "status_code",
    "response_body",
    "latency_ms",
    "error",
)
ATTEMPT_INSERT = insert(ATTEMPTS).values({k: bindparam(k) for k in ATTEMPT_KEYS})


def record(lender: Lender, outcomes: Sequence[Outcome]) -> None:
    """Log the attempts and move each row on — delivered, retry later, or dead — in ONE
    transaction for the lot (a commit per callback would cap throughput on SQLite). Should the
    database refuse the lot, each is recorded on its own: one delivery's trouble never takes
    another's result with it."""
    if not outcomes:
        return
    try:
        _record(lender, outcomes)
    except Exception:
        if len(outcomes) == 1:
            raise
        log.warning("recording %d deliveries at once failed; one by one", len(outcomes))
        for outcome in outcomes:
            try:
                _record(lender, [outcome])
            except Exception:  # its row keeps its lease and goes out again after it
                log.exception("recording the delivery of callback %s failed", outcome[0].id)


def _record(lender: Lender, outcomes: Sequence[Outcome]) -> None:
    store = lender.store
    with store.begin() as conn:
        # The partners first (services.locks): a reset deleting these rows and their attempts
        # waits for the record, or the record for the reset (and then finds the rows gone).
        locks.share_many(store, conn, {job.partner_token for job, _ in outcomes})
        ids = [job.id for job, _ in outcomes]
        found = conn.execute(store.prepared(_by_ids), {"ids": ids})
        rows = {r.id: r for r in (CallbackRec.load(x) for x in found)}
        tokens = sorted({r.partner_token for r in rows.values()})
        partners = {
            p.partner_token: p
            for p in (
                PartnerRec.load(x) for x in conn.execute(PARTNERS_BY_TOKEN, {"tokens": tokens})
            )
        }
        attempts: list[dict[str, Any]] = []
        for job, results in outcomes:
            row = rows.get(job.id)
            if row is None or row.lease_until != job.lease:
                # reset or re-claimed meanwhile: the row is no longer ours to judge
                log.info("callback %s changed while in flight; result dropped", job.id)
                rows.pop(job.id, None)
                continue
            attempts.extend(_attempt_row(job, a) for a in results)
            row.attempts += len(results)
            row.lease_until = 0.0
            _judge(lender, lender.settings.callbacks, row, results, partners.get(row.partner_token))
        if attempts:
            fast.many(conn, store.fast(ATTEMPT_INSERT), attempts)
        _write(lender, conn, rows.values())


def _attempt_row(job: Job, a: Attempt) -> dict[str, Any]:
    return {
        "callback_id": job.id,
        "at": a.at,
        "url": job.url[:URL_LIMIT],
        "request_body": job.content.decode("utf-8"),
        "status_code": a.status,
        "response_body": a.response,
        "latency_ms": round(a.latency_ms, 3),
        "error": a.error,
    }


def _judge(
    lender: Lender,
    cfg: CallbackSettings,
    row: CallbackRec,
    results: Sequence[Attempt],
    partner: PartnerRec | None,
) -> None:
    first = results[0]
    wall = lender.wall()
    if first.ok:
        row.state, row.delivered_at, row.retry_at = "delivered", wall, None
        row.last_error = "chaos: sent twice (duplicate)" if len(results) > 1 else ""
        return
    row.last_error = first.error
    if row.attempts >= cfg.max_attempts:
        row.state, row.retry_at = "dead", None
        return
    rng = rng_for(lender.settings.scenarios.seed, "callback-jitter", row.id, row.attempts)
    delay = backoff(cfg, row.attempts, rng)
    if partner is None:  # the partner is gone: only the wall is left
        row.next_attempt_at = wall + delay
        return
    clock = lender.clock_of(partner)
    now = clockmod.virtual_now(clock, wall)
    # A manual clock moves in jumps: an attempt belongs to the moment it fell due, so the
    # retries of an advanced span happen within it, in order. A moving clock: from now.
    at = row.retry_at if clock.speed == 0 and row.retry_at is not None else now
    row.retry_at = at + delay
    when = clockmod.wall_when(clock, wall, row.retry_at)
    row.next_attempt_at = NEVER if when is None else when


def follow_clock(lender: Lender, conn: Connection, token: str, clock: clockmod.ClockState) -> int:
    """Re-time partner `token`'s waiting retries after its clock changed: those the clock has
    reached are due now, the rest due when a moving clock reaches them or waiting for a manual
    one. Returns how many became due (`lender.enqueued` counts them: the harness delivers)."""
    wall = lender.wall()
    now = clockmod.virtual_now(clock, wall)
    c = CALLBACKS.c
    retries = (c.partner_token == token, c.state == "pending", c.attempts > 0)
    became_due = conn.execute(
        update(CALLBACKS)
        .where(*retries, c.retry_at <= now, c.next_attempt_at > wall)
        .values(next_attempt_at=wall)
    ).rowcount
    later = c.retry_at > now
    if clock.speed == 0:
        conn.execute(update(CALLBACKS).where(*retries, later).values(next_attempt_at=NEVER))
    else:
        when = wall + (c.retry_at - now) / clock.speed
        conn.execute(update(CALLBACKS).where(*retries, later).values(next_attempt_at=when))
    lender.enqueued += became_due
    return int(became_due)


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
