"""Callback delivery (design.md "Callbacks", protocol.md §5): the outbox worker and its routes.

`orders.apply` enqueues callbacks 19-21 into the outbox (store.Callback) in the transition's
own transaction; this module delivers them. It owns: claiming due rows atomically with a
lease (FOR UPDATE SKIP LOCKED on PostgreSQL, so several processes share the work), sending
each in the partner's request envelope through one injected `Sender`, logging every attempt
(store.CallbackAttempt), retries with exponential backoff and jitter, dead-lettering,
per-order ordering, per-partner chaos (duplicate / delay / reorder), the `Worker` the
server runs, and the /sandbox/callbacks routes.

At-least-once: a row is never deleted and is only marked delivered after the receiver
answered `code: 0`; a delivery interrupted mid-flight (process killed) keeps its lease and is
claimed again when the lease runs out. No database transaction is held across an HTTP call.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from . import clock as clockmod
from .config import CallbackSettings
from .crypto import Codec, php_json_encode
from .errors import SandboxError
from .lender import Lender
from .scenarios import rng_for
from .store import Callback, CallbackAttempt, Partner

log = logging.getLogger("sandbox.callbacks")

RESPONSE_LIMIT = 64 * 1024      # characters of a receiver's answer kept in the attempt log
JSON_TYPE = "application/json;charset=utf-8"
STATES = ("pending", "delivered", "dead")


# ---- the network, injected ----

class Sender(Protocol):
    """Sends one callback: (HTTP status, response text); raises on network error or timeout."""

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]: ...


class HttpxSender:
    """The real sender: ONE `httpx.AsyncClient` (pooled connections) for every delivery."""

    def __init__(self, client: httpx.AsyncClient | None = None, *, connections: int = 100):
        # trust_env=False: callbacks go where the partner said, not through a proxy from the env.
        # Keep-alive for every connection the worker may use at once: with httpx's default (20)
        # a busy worker closes and reopens connections all the time.
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.client = client or httpx.AsyncClient(trust_env=False, limits=limits)

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]:
        # httpx's timeout is per phase; asyncio.timeout bounds the whole attempt, so a receiver
        # that trickles bytes cannot outlive the lease.
        async with asyncio.timeout(timeout):
            async with self.client.stream("POST", url, content=content, timeout=timeout,
                                          headers={"content-type": JSON_TYPE}) as r:
                body = await _read_capped(r)
        return r.status_code, body.decode(r.encoding or "utf-8", "replace")

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> "HttpxSender":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _read_capped(r: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in r.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > RESPONSE_LIMIT:
            break
    return b"".join(chunks)[:RESPONSE_LIMIT]


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
    """Why an answer is not an acknowledgement (protocol.md §5: HTTP 2xx and `code` 0), or ""."""
    if not 200 <= status < 300:
        return f"HTTP {status}"
    try:
        doc = json.loads(text)
    except ValueError:
        return f"HTTP {status}, but the body is not JSON"
    if not isinstance(doc, dict):
        return f"HTTP {status}, but the body is not a JSON object"
    code = doc.get("code")
    if (code == 0 and not isinstance(code, bool)) or code == "0":  # PHP receivers send "0" too
        return ""
    return f"code {code!r}: {doc.get('message', doc.get('msg', ''))}"


# ---- chaos ----

CHAOS_KEYS = {
    "duplicate": "probability 0-1 that a delivered callback is sent a second time",
    "delay": "seconds, or [min, max] seconds, of wall time added before the first attempt",
    "reorder": "probability 0-1 that a callback overtakes earlier pending ones of its order",
    "reorder_hold": "seconds an overtaken callback is held back (default 1)",
}


def _chaos_error(detail: str) -> SandboxError:
    return SandboxError("invalid_field", f"chaos: {detail}", http_status=400)


def _probability(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise _chaos_error(f"{key} must be a probability between 0 and 1, not {value!r}")
    return float(value)


def _seconds(key: str, value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise clockmod.ClockError(str(value))
        seconds = clockmod.parse_duration(value)
    except (clockmod.ClockError, TypeError):
        raise _chaos_error(f"{key} must be seconds (or a duration like '2s'), not {value!r}") from None
    if not 0 <= seconds <= 3600:
        raise _chaos_error(f"{key} must be between 0 and 3600 seconds, not {value!r}")
    return seconds


def _delay(key: str, value: Any) -> float | list[float]:
    if not isinstance(value, (list, tuple)):
        return _seconds(key, value)
    if len(value) != 2:
        raise _chaos_error(f"{key} must be seconds or a [min, max] pair, not {value!r}")
    lo, hi = _seconds(key, value[0]), _seconds(key, value[1])
    if lo > hi:
        raise _chaos_error(f"{key} range [{lo}, {hi}] has min > max")
    return [lo, hi]


_CHAOS_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "duplicate": _probability, "delay": _delay, "reorder": _probability, "reorder_hold": _seconds,
}


def validate_chaos(raw: Any) -> dict:
    """Check a partner's chaos settings (PATCH /sandbox/partners/{token} {"chaos": {...}}).

    Returns them normalised (numbers as floats, durations in seconds); raises SandboxError
    `invalid_field` (HTTP 400) naming the key and the rule. `{}` turns chaos off.
    """
    if not isinstance(raw, dict):
        raise _chaos_error('must be an object, e.g. {"duplicate": 0.5, "delay": [1, 3]}')
    unknown = sorted(set(raw) - set(CHAOS_KEYS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in CHAOS_KEYS.items())
        raise _chaos_error(f"unknown key {', '.join(map(repr, unknown))}; known keys — {known}")
    return {key: _CHAOS_CHECKS[key](key, value) for key, value in raw.items()}


@dataclass(frozen=True)
class Chaos:
    duplicate: float = 0.0
    delay: tuple[float, float] = (0.0, 0.0)
    reorder: float = 0.0
    reorder_hold: float = 1.0

    @classmethod
    def of(cls, partner: Partner) -> "Chaos":
        try:
            d = validate_chaos(partner.chaos or {})
        except SandboxError as e:  # stored before validation existed: deliver without chaos
            log.debug("partner %s: ignoring chaos settings: %s", partner.partner_token, e.detail)
            return cls()
        delay = d.get("delay", 0.0)
        lo, hi = delay if isinstance(delay, list) else (delay, delay)
        return cls(d.get("duplicate", 0.0), (lo, hi), d.get("reorder", 0.0),
                   d.get("reorder_hold", 1.0))


def _roll(lender: Lender, kind: str, row: Callback) -> Any:
    # Seeded per delivery, so a chaos run is reproducible (design.md "Outcomes").
    return rng_for(lender.settings.scenarios.seed, "callback-chaos", kind, row.partner_token,
                   row.id, row.attempts)


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
    """protocol.md §2: the request envelope with the partner's key/IV, or plain JSON if it asked.

    Encoded like a PHP lender would (json_encode: `\\/` and `\\uXXXX` escapes)."""
    if not partner.encrypt_callbacks:
        return php_json_encode(body).encode()
    data = Codec(partner.aes_key, partner.aes_iv).encrypt_json(body)
    return php_json_encode({"partner_token": partner.partner_token, "encode_data": data}).encode()


def _receivers(s: Session) -> dict[str, Receiver]:
    """Partners that can receive now: a callback URL and not paused (others' rows just wait)."""
    rows = s.scalars(select(Partner).where(Partner.callback_url != "",
                                           Partner.callbacks_paused.is_(False)))
    return {p.partner_token: Receiver(p, Chaos.of(p)) for p in rows}


def _due(lender: Lender, now: float, receivers: dict[str, Receiver], limit: int) -> Any:
    q = select(Callback).where(Callback.state == "pending", Callback.next_attempt_at <= now,
                               Callback.lease_until <= now,
                               Callback.partner_token.in_(list(receivers)))
    if lender.settings.callbacks.ordered:
        earlier = aliased(Callback)
        blocked = select(earlier.id).where(
            earlier.partner_token == Callback.partner_token, earlier.order_no == Callback.order_no,
            earlier.state == "pending", earlier.id < Callback.id).exists()
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
    duplicate = r.chaos.duplicate > 0 and _roll(lender, "duplicate", row).random() < r.chaos.duplicate
    return Job(row.id, r.partner.callback_url + row.path, request_content(r.partner, row.body),
               lease, duplicate)


def _apply_chaos(lender: Lender, s: Session, rows: list[Callback],
                 receivers: dict[str, Receiver], now: float) -> list[Callback]:
    held: set[int] = set()
    keep = []
    for row in rows:
        chaos = receivers[row.partner_token].chaos
        if _delayed(lender, row, chaos, now):
            continue
        if chaos.reorder and lender.settings.callbacks.ordered \
                and not _reorder(lender, s, row, chaos, now, held):
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


def _reorder(lender: Lender, s: Session, row: Callback, chaos: Chaos, now: float,
             held: set[int]) -> bool:
    """Chaos `reorder`: may `row` go although earlier rows of its order are pending?

    Not chosen: ordinary ordering (it waits). Chosen: it goes, and the earlier rows that
    are due now are held back for `reorder_hold` seconds so it really overtakes them."""
    earlier = list(s.scalars(select(Callback).where(
        Callback.partner_token == row.partner_token, Callback.order_no == row.order_no,
        Callback.state == "pending", Callback.id < row.id)))
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
                s.add(CallbackAttempt(callback_id=row.id, at=a.at, url=job.url,
                                      request_body=job.content.decode("utf-8"),
                                      status_code=a.status, response_body=a.response,
                                      latency_ms=round(a.latency_ms, 3), error=a.error))
            row.attempts += len(results)
            row.lease_until = 0.0
            _judge(lender, lender.settings.callbacks, row, results)


def _judge(lender: Lender, cfg: CallbackSettings, row: Callback, results: Sequence[Attempt]) -> None:
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
    jobs = await asyncio.to_thread(claim, lender, lender.wall(), lender.settings.callbacks.batch_size)
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
    """Sync `flush_until_idle` for in-process use; without `sender`, a fresh HttpxSender."""
    async def run() -> int:
        if sender is not None:
            return await flush_until_idle(lender, sender, max_rounds)
        async with HttpxSender() as own:
            return await flush_until_idle(lender, own, max_rounds)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run())
    # Called from code running inside an event loop: run ours on a helper thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


# ---- the server's worker ----

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
        self._background = [self._loop.create_task(self._claim_loop(), name="callback-claims"),
                            self._loop.create_task(self._record_loop(), name="callback-records")]
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


# ---- visibility: /sandbox/callbacks ----

def _wall_iso(lender: Lender, ts: float | None) -> str | None:
    if not ts:
        return None
    return datetime.fromtimestamp(ts, lender.tz).isoformat(timespec="milliseconds")


def _attempt_view(lender: Lender, a: CallbackAttempt) -> dict:
    return {"at": _wall_iso(lender, a.at), "url": a.url, "request_body": a.request_body,
            "status_code": a.status_code, "response_body": a.response_body,
            "latency_ms": a.latency_ms, "error": a.error}


def _blocker(s: Session, row: Callback) -> int | None:
    return s.scalar(select(Callback.id).where(
        Callback.partner_token == row.partner_token, Callback.order_no == row.order_no,
        Callback.state == "pending", Callback.id < row.id).order_by(Callback.id).limit(1))


def _waiting(lender: Lender, s: Session, row: Callback, p: Partner | None, now: float) -> str | None:
    """Why a pending delivery has not gone out yet, in words."""
    if row.state != "pending":
        return None
    token = row.partner_token
    if p is None or not p.callback_url:
        return f"no callback_url: set one with PATCH /sandbox/partners/{token}"
    if p.callbacks_paused:
        return f"callbacks paused: POST /sandbox/partners/{token}/callbacks/resume"
    if row.lease_until > now:
        return "in flight"
    blocker = _blocker(s, row) if lender.settings.callbacks.ordered else None
    if blocker is not None and not Chaos.of(p).reorder:
        return f"behind #{blocker} of the same order (ordered delivery)"
    if row.next_attempt_at > now:
        return f"next attempt at {_wall_iso(lender, row.next_attempt_at)}"
    return "due now"


def delivery_view(lender: Lender, s: Session, row: Callback, partner: Partner | None,
                  attempts: list[CallbackAttempt]) -> dict:
    now = lender.wall()
    as_sent = attempts[-1].request_body if attempts else (
        request_content(partner, row.body).decode("utf-8") if partner else None)
    return {
        "id": row.id, "partner_token": row.partner_token, "order_no": row.order_no,
        "path": row.path, "state": row.state,
        "waiting": _waiting(lender, s, row, partner, now),
        "attempts": row.attempts, "max_attempts": lender.settings.callbacks.max_attempts,
        "created_at": lender.fmt(row.created_at),            # virtual: the transition's time
        "next_attempt_at": _wall_iso(lender, row.next_attempt_at) if row.state == "pending" else None,
        "delivered_at": _wall_iso(lender, row.delivered_at),
        "last_error": row.last_error,
        "url": (partner.callback_url + row.path) if partner and partner.callback_url else None,
        "body": row.body,                                     # decrypted
        "request_body": as_sent,                              # as sent (or as it will be)
        "attempt_log": [_attempt_view(lender, a) for a in attempts],
    }


def _views(lender: Lender, s: Session, rows: list[Callback]) -> list[dict]:
    ids = [r.id for r in rows]
    log_of: dict[int, list[CallbackAttempt]] = {i: [] for i in ids}
    for a in s.scalars(select(CallbackAttempt).where(CallbackAttempt.callback_id.in_(ids))
                       .order_by(CallbackAttempt.id)):
        log_of[a.callback_id].append(a)
    partners = {t: s.get(Partner, t) for t in {r.partner_token for r in rows}}
    return [delivery_view(lender, s, r, partners[r.partner_token], log_of[r.id]) for r in rows]


def list_deliveries(lender: Lender, token: str | None = None, order_no: str | None = None,
                    state: str | None = None, limit: int = 200) -> list[dict]:
    """The newest `limit` deliveries matching the filters, oldest first."""
    if state and state not in STATES:
        raise SandboxError("invalid_field", f"state must be one of {', '.join(STATES)}",
                           http_status=400)
    q = select(Callback).order_by(Callback.id.desc()).limit(max(1, min(limit, 1000)))
    for column, value in ((Callback.partner_token, token), (Callback.order_no, order_no),
                          (Callback.state, state)):
        if value:
            q = q.where(column == value)
    with lender.store.transaction() as s:
        return _views(lender, s, list(reversed(list(s.scalars(q)))))


def _row(s: Session, callback_id: int) -> Callback:
    row = s.get(Callback, callback_id) if 0 < callback_id < 2**63 else None  # SQL integer range
    if row is None:
        raise SandboxError("not_found", f"no callback delivery with id {callback_id}",
                           http_status=404)
    return row


def get_delivery(lender: Lender, callback_id: int) -> dict:
    with lender.store.transaction() as s:
        return _views(lender, s, [_row(s, callback_id)])[0]


def redeliver(lender: Lender, callback_id: int) -> dict:
    """Send again: a new attempt cycle (pending, due now, attempt count from 0); the attempt
    log keeps the earlier attempts. A delivery in flight keeps its lease."""
    with lender.store.transaction() as s:
        row = _row(s, callback_id)
        row.state, row.attempts, row.delivered_at = "pending", 0, None
        row.next_attempt_at = lender.wall()
        row.last_error = "redelivery requested"
    lender.on_outbox()
    return get_delivery(lender, callback_id)


# ---- routes ----

def _limit(request: Any) -> int:
    value = request.query_params.get("limit") or "200"
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise SandboxError("invalid_field", "limit must be an integer 1-1000", http_status=400)
    return int(value)


def list_route(lender: Lender, request: Any) -> list[dict]:
    """GET /sandbox/callbacks?partner_token=&order_no=&state=&limit= — deliveries (newest
    `limit`, default 200, oldest first), each with its decrypted body, the request body as
    sent, the reason it is still waiting, and every attempt (request, status, response,
    latency, error). `state` is pending, delivered or dead."""
    q = request.query_params
    return list_deliveries(lender, q.get("partner_token"), q.get("order_no"), q.get("state"),
                           _limit(request))


def get_route(lender: Lender, request: Any) -> dict:
    """GET /sandbox/callbacks/{id} — one delivery, as in the list."""
    return get_delivery(lender, request.path_params["id"])


def redeliver_route(lender: Lender, request: Any) -> dict:
    """POST /sandbox/callbacks/{id}/redeliver — send it again now, whatever its state: a new
    attempt cycle (state pending, attempts from 0); earlier attempts stay in the log."""
    return redeliver(lender, request.path_params["id"])


def pause_route(lender: Lender, request: Any) -> dict:
    """POST /sandbox/partners/{token}/callbacks/pause — hold this partner's deliveries: they
    stay pending (and listed) without using attempts until resumed. Same as PATCH
    /sandbox/partners/{token} {"callbacks_paused": true}."""
    from . import control
    return control.update_partner(lender, request.path_params["token"], {"callbacks_paused": True})


def resume_route(lender: Lender, request: Any) -> dict:
    """POST /sandbox/partners/{token}/callbacks/resume — deliver what was held, in order. Same
    as PATCH /sandbox/partners/{token} {"callbacks_paused": false}."""
    from . import control
    return control.update_partner(lender, request.path_params["token"], {"callbacks_paused": False})


ROUTES: tuple[tuple[str, str, Callable[[Lender, Any], Any]], ...] = (
    ("GET", "/sandbox/callbacks", list_route),
    ("GET", "/sandbox/callbacks/{id:int}", get_route),
    ("POST", "/sandbox/callbacks/{id:int}/redeliver", redeliver_route),
    ("POST", "/sandbox/partners/{token}/callbacks/pause", pause_route),
    ("POST", "/sandbox/partners/{token}/callbacks/resume", resume_route),
)


def routes(lender: Lender) -> list[Any]:
    """The /sandbox/callbacks routes (plain JSON, errors as 4xx JSON like the control API)."""
    from starlette.routing import Route

    from .app import control_endpoint  # imported here: app imports this module
    return [Route(path, control_endpoint(functools.partial(fn, lender)), methods=[method])
            for method, path, fn in ROUTES]
