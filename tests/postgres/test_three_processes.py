"""Three real `lender-sandbox serve` processes on one PostgreSQL schema, as staging runs them
(README "Running a shared staging instance", "Several processes").

The three start at the same moment on an empty schema (so all of them migrate and load the
fixtures at once) and are then driven at once, each request to whichever process: orders
through 02 05 06 08 10 11, the same person sent to every process at the same moment, the
identical 05 to every process at the same moment, clock advances of one partner through
different processes, payments (15, then POST /sandbox/payments) while the clocks move — two
codes of one order paid at once among them. Then, read from the database and from the callback
receiver:

- every order's timeline is a legal walk of core/lifecycle.py's table, with exactly the
  transitions the test caused (none twice), and the order's status is where it ends;
- each transition's callbacks (docs/protocol.md §6) are in the outbox once, delivered, and
  the receiver got each once (a second copy only for an attempt logged as failed: a retry);
- nobody holds two open loans with a partner (NIK, and mobile);
- no answer was an HTTP 5xx or code 10099, and no process logged a traceback;
- each partner's clock moved by exactly the sum of its advances (docs/errors.md 10015: a
  conflicting advance is sent again; none is lost).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine
from test_postgres import h, pg_url  # noqa: F401  (pg_url: the fixture, a fresh empty schema)

from sandbox.client import LenderClient
from sandbox.core.clock import parse_duration
from sandbox.core.lifecycle import OPEN, fire
from sandbox.core.people import Person
from sandbox.core.samples import SampleOrder
from sandbox.harness.liveserver import LiveServer
from sandbox.harness.sink import CallbackSink
from sandbox.services.config import DEFAULT_FIXTURES
from sandbox.store import Callback, CallbackAttempt, JournalEntry, Order, TimelineRow

pytestmark = pytest.mark.postgres

PROCESSES = 3
# partner token -> (aes_key, aes_iv): three partners, manual clocks, callbacks to the receiver
PARTNERS = {
    "tp-alpha": ("ThreeProc-Key-A1", "ThreeProc-IV-A01"),
    "tp-bravo": ("ThreeProc-Key-B2", "ThreeProc-IV-B02"),
    "tp-charlie": ("ThreeProc-Key-C3", "ThreeProc-IV-C03"),
}
SETTINGS = {
    "lifecycle": {"review_delay": "10s", "payout_delay": "5s"},  # an advance of 1m passes both
    "callbacks": {"timeout": 10.0},  # a busy 2-core machine must not turn a slow ack into a retry
    "scheduler": {"tick": 0.25},
}
UNSETTLED = 11004  # docs/errors.md: the person has an open loan with this lender
PAYMENT_REJECTED = 11010  # docs/errors.md: /sandbox/payments, e.g. the order is not repaying
CONFLICT = 10015  # docs/errors.md: the clock kept moving under this request: send it again
INTERNAL = 10099
# What one order's life asks of the lender, by kind (the mobile suffix picks the scenario).
KINDS = {  # kind: (scenario of fixtures/scenarios.toml, how many per partner)
    "pay": ("approve", 2),  # full repayment
    "extend": ("approve", 2),  # extension fee paid, then full repayment
    "both": ("approve", 2),  # extension and full codes paid at the same moment
    "reduced": ("approve_reduced", 1),  # confirmed at the reduced approved amount
    "fail_once": ("payout_fail_once", 1),  # 169, bound and confirmed again, then paid
    "reject": ("reject_review", 2),  # 110 at review
}
BASE = ("create", "submit", "bind_card", "approve", "confirm", "disburse", "settle")


# ---------------------------------------------------------------------------- the setup


def at_once(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread, all released by one barrier; their results in order
    (the first exception is raised)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(30)
            results[i] = calls[i]()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def parallel(calls: Sequence[Callable[[], Any]], workers: int = 12) -> list[Any]:
    """Run the calls on a pool of threads (interleaved, not synchronised); their results."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(c) for c in calls]
        return [f.result(timeout=60) for f in futures]


def write_fixtures(folder: Path, callback_url: str) -> Path:
    """The packaged products, banks and scenarios, and the three partners."""
    folder.mkdir()
    for name in ("products", "banks", "scenarios"):
        text = (DEFAULT_FIXTURES / f"{name}.toml").read_text("utf-8")
        (folder / f"{name}.toml").write_text(text, "utf-8")
    partners = "".join(
        f'[[partners]]\npartner_token = "{token}"\naes_key = "{key}"\naes_iv = "{iv}"\n'
        f'callback_url = "{callback_url}"\nclock_mode = "manual"\n\n'
        for token, (key, iv) in PARTNERS.items()
    )
    (folder / "partners.toml").write_text(partners, "utf-8")
    return folder


@dataclass
class Flow:
    """One order the test walks through its life, and what it did to it."""

    token: str
    kind: str
    sample: SampleOrder
    extensions_paid: int = 0  # extension codes the payment route accepted

    @property
    def order_no(self) -> str:
        return self.sample.order_no

    def expected(self) -> Counter[str]:
        """The triggers its timeline must hold, each as often as the test caused it."""
        if self.kind == "reject":
            return Counter(("create", "submit", "reject"))
        extra = ["extend"] * self.extensions_paid
        if self.kind == "fail_once":  # the first payout fails: bound and confirmed again
            extra += ["fail_payout", "bind_card", "confirm"]
        return Counter(BASE) + Counter(extra)


@dataclass
class Cluster:
    """The three processes seen by an aggregator; every answer is kept to be judged at the end."""

    servers: list[LiveServer]
    http: httpx.Client = field(init=False)
    statuses: list[tuple[str, int]] = field(default_factory=list)  # (url, HTTP status)
    codes: list[tuple[str, Any]] = field(default_factory=list)  # (what, code answered)
    advanced: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    retried: int = 0  # advances answered 10015 and sent again
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            timeout=60, trust_env=False, event_hooks={"response": [self._seen]}
        )

    def _seen(self, r: httpx.Response) -> None:
        with self._lock:
            self.statuses.append((str(r.request.url), r.status_code))

    def _keep(self, what: str, code: Any) -> None:
        with self._lock:
            self.codes.append((what, code))

    def url(self, proc: int) -> str:
        return self.servers[proc % PROCESSES].base_url

    # ---- the lender API ----

    def call(self, proc: int, token: str, path: str, payload: dict) -> dict:
        key, iv = PARTNERS[token]
        client = LenderClient(self.url(proc), token, key, iv, http=self.http)
        doc = client.call(path, payload)
        self._keep(path, doc.get("code"))
        return doc

    def ok(self, proc: int, token: str, path: str, payload: dict) -> Any:
        doc = self.call(proc, token, path, payload)
        assert doc["code"] == 0, (proc, token, path, doc)
        return doc["data"]

    # ---- the control API ----

    def control(self, proc: int, method: str, path: str, body: Any = None) -> httpx.Response:
        r = self.http.request(method, self.url(proc) + path, json=body)
        self._keep(f"{method} {path}", r.json().get("code") if r.status_code >= 400 else 0)
        return r

    def advance(self, proc: int, token: str, by: str) -> None:
        """Advance `token`'s clock through process `proc`; a 10015 conflict is sent again, as
        docs/errors.md says (the clock moved under it: that move did not happen)."""
        path = f"/sandbox/partners/{token}/clock/advance"
        for _ in range(20):
            r = self.control(proc, "POST", path, {"by": by})
            if r.status_code == 409 and r.json()["code"] == CONFLICT:
                with self._lock:
                    self.retried += 1
                continue
            assert r.status_code == 200, r.text
            with self._lock:
                self.advanced[token] += parse_duration(by)
            return
        raise AssertionError(f"advance of {token} by {by} conflicted 20 times")

    def advance_round(self, token: str, by: str) -> None:
        """The same partner's clock advanced by `by` through every process at the same moment."""
        at_once([lambda p=p: self.advance(p, token, by) for p in range(PROCESSES)])

    def every_partner(self, by: str) -> None:
        parallel([lambda t=t: self.advance_round(t, by) for t in PARTNERS], workers=len(PARTNERS))

    def now(self, proc: int, token: str) -> float:
        r = self.control(proc, "GET", f"/sandbox/partners/{token}/clock")
        assert r.status_code == 200, r.text
        return float(r.json()["now_unix"])

    def pay(self, proc: int, code: str) -> httpx.Response:
        return self.control(proc, "POST", "/sandbox/payments", {"repay_code": code})


@pytest.fixture
def cluster(pg_url: str, tmp_path: Path) -> Iterator[tuple[Cluster, CallbackSink, Engine]]:  # noqa: F811
    """A callback receiver, then three `serve` processes released at the same moment against
    the empty schema of `pg_url`; all must come up healthy."""
    sink = CallbackSink(partners=PARTNERS).start()
    fixtures = write_fixtures(tmp_path / "fixtures", sink.url)
    overrides = {**SETTINGS, "fixtures": {"dir": str(fixtures)}}
    servers = [
        LiveServer(overrides, database_url=pg_url, workdir=tmp_path / f"p{i}", startup_timeout=60)
        for i in range(PROCESSES)
    ]
    engine = create_engine(pg_url)
    cluster = Cluster(servers)
    try:
        at_once([s.start for s in servers])  # each waits for its own /sandbox/health
        for s in servers:
            assert s.request("GET", "/sandbox/health").json()["status"] == "ok", s.log()
        yield cluster, sink, engine
    finally:
        cluster.http.close()
        for s in servers:  # shown when the test fails: where a 10099 came from
            if "Traceback" in s.log():
                print(f"--- the process on port {s.port} ---\n{s.log()}")
            s.close()
        sink.stop()
        engine.dispose()


# ---------------------------------------------------------------------------- the people


def people() -> Iterator[Person]:
    """Distinct borrowers (no NIK or mobile twice among them), for any scenario suffix; drawn
    by the racing threads at once, so behind a lock (a generator refuses a second caller)."""
    return Locked(_people())


class Locked(Iterator[Person]):
    def __init__(self, inner: Iterator[Person]):
        self.inner, self.lock = inner, threading.Lock()

    def __next__(self) -> Person:
        with self.lock:
            return next(self.inner)


def _people() -> Iterator[Person]:
    seen: set[str] = set()
    n = 0
    while True:
        n += 1
        p = h.person(f"three-processes-{n}", "000")
        if p.nik not in seen and p.mobile[:-3] not in seen:
            seen |= {p.nik, p.mobile[:-3]}
            yield p


def with_suffix(p: Person, scenario: str) -> Person:
    suffix = h.SUFFIX[scenario]
    return replace(p, mobile=p.mobile[: -len(suffix)] + suffix)


def make_flows(crowd: Iterator[Person]) -> list[Flow]:
    """The same borrowers and order numbers with every partner: a person may hold one open
    loan per partner, so each partner's unique indexes must keep to their partner."""
    samples = []
    for kind, (scenario, count) in KINDS.items():
        for i in range(count):
            p = with_suffix(next(crowd), scenario)
            samples.append((kind, SampleOrder(f"ORD-3P-{kind.upper()}-{i:02d}", p)))
    return [Flow(token, kind, sample) for token in PARTNERS for kind, sample in samples]


# ---------------------------------------------------------------------------- the drive


def apply(c: Cluster, f: Flow, first: int) -> None:
    """02, 05, 06 (and 08) of one order, each step through the next process."""
    s = f.sample
    c.ok(first, f.token, "/get-loan-precheck", s.precheck())
    c.ok(first + 1, f.token, "/push-basic-info", s.basic_info())
    c.ok(first + 2, f.token, "/push-supplement-info", s.supplement_info())
    if f.kind != "reject":  # the review may fire before 08 (100): binding is still allowed
        c.ok(first + 3, f.token, "/push-bind-bank", s.bind_bank())


def confirm(c: Cluster, f: Flow, first: int) -> None:
    """10 for the approved amount, then 11 with it."""
    approved = c.ok(first, f.token, "/get-approval-result", f.sample.order())
    assert approved["order_status"] == 100, (f, approved)
    c.ok(first + 1, f.token, "/push-order-confirm", f.sample.confirm(approved["approval_amount"]))


def confirm_again(c: Cluster, f: Flow, first: int) -> None:
    """After the failed payout (169): bind again and confirm again."""
    status = c.ok(first, f.token, "/get-order-status", f.sample.order())["order_status"]
    assert status == 169, (f, status)
    c.ok(first + 1, f.token, "/push-bind-bank", f.sample.bind_bank())
    approved = c.ok(first + 2, f.token, "/get-approval-result", f.sample.order())
    c.ok(first, f.token, "/push-order-confirm", f.sample.confirm(approved["approval_amount"]))


def status(c: Cluster, f: Flow, proc: int) -> int:
    return int(c.ok(proc, f.token, "/get-order-status", f.sample.order())["order_status"])


def code(c: Cluster, f: Flow, proc: int, repay_type: int = 1) -> str:
    """15: a payment code, full repayment (1) or the 7-day extension fee (2)."""
    body = f.sample.repay_detail(repay_type, delay_term=7 if repay_type == 2 else None)
    return str(c.ok(proc, f.token, "/get-repay-detail", body)["repay_code"])


def repay(c: Cluster, f: Flow, first: int) -> None:
    """Pay what the kind says, each code from one process paid through another."""
    if f.kind == "extend":
        paid = c.pay(first + 1, code(c, f, first, repay_type=2))
        assert paid.status_code == 200, paid.text
        f.extensions_paid += 1
    if f.kind == "both":
        extension, full = code(c, f, first, repay_type=2), code(c, f, first + 1)
        answers = at_once([lambda: c.pay(first + 1, extension), lambda: c.pay(first + 2, full)])
        for r in answers:  # each is paid, or refused as docs/errors.md 11010 says
            assert r.status_code == 200 or (
                r.status_code in (400, 404, 409) and r.json()["code"] == PAYMENT_REJECTED
            ), r.text
        f.extensions_paid += answers[0].status_code == 200
        if answers[1].status_code == 200:
            return
    paid = c.pay(first + 2, code(c, f, first + 1))
    assert paid.status_code == 200, paid.text


def race_one_person(c: Cluster, token: str, crowd: Iterator[Person]) -> list[str]:
    """05 of the same person (same NIK; same mobile; both) as three orders, one to each
    process at the same moment: one order is made, the others refused with 11004, never
    10099. Returns the order numbers made."""
    made = []
    for tag in ("BOTH", "NIK", "MOBILE"):
        a, b, d = (with_suffix(next(crowd), "approve") for _ in range(3))
        if tag == "NIK":  # one NIK, three mobiles
            b, d = replace(b, nik=a.nik), replace(d, nik=a.nik)
        elif tag == "MOBILE":  # one mobile, three NIKs
            b, d = replace(b, mobile=a.mobile), replace(d, mobile=a.mobile)
        else:
            b = d = a
        orders = [SampleOrder(f"ORD-3P-RACE-{tag}-{i}", p) for i, p in enumerate((a, b, d))]
        docs = at_once(
            [
                lambda i=i, o=o: c.call(i, token, "/push-basic-info", o.basic_info())
                for i, o in enumerate(orders)
            ]
        )
        assert sorted(d["code"] for d in docs) == [0, UNSETTLED, UNSETTLED], (tag, docs)
        made += [o.order_no for o, d in zip(orders, docs, strict=True) if d["code"] == 0]
    return made


def race_one_order(c: Cluster, token: str, crowd: Iterator[Person]) -> list[str]:
    """The identical 05 to every process at the same moment: all answer 0 (docs/protocol.md
    §4: an identical replay is idempotent), one order is made."""
    o = SampleOrder("ORD-3P-SAME-05", with_suffix(next(crowd), "approve"))
    docs = at_once(
        [lambda p=p: c.call(p, token, "/push-basic-info", o.basic_info()) for p in range(3)]
    )
    assert [d["code"] for d in docs] == [0, 0, 0], docs
    return [o.order_no]


def drive(c: Cluster, flows: list[Flow], crowd: Iterator[Person]) -> dict[str, set[str]]:
    """The whole workload; the order numbers of the orders made outside `flows`, by partner."""
    live = [f for f in flows if f.kind != "reject"]
    racers = {t: (race_one_person, race_one_order) for t in PARTNERS}
    raced: dict[str, set[str]] = defaultdict(set)

    def race(token: str, run: Callable[..., list[str]]) -> None:
        raced[token].update(run(c, token, crowd))

    # 1. applications, the races and advances of 5s per process: reviews fire meanwhile
    parallel(
        [lambda f=f, i=i: apply(c, f, i) for i, f in enumerate(flows)]
        + [lambda t=t, r=r: race(t, r) for t, rs in racers.items() for r in rs]
        + [lambda t=t: c.advance_round(t, "5s") for t in PARTNERS]
    )
    c.every_partner("10s")  # every review has fired
    # 2. confirmations while the clocks move on (payouts fire meanwhile)
    parallel(
        [lambda f=f, i=i: confirm(c, f, i) for i, f in enumerate(live)]
        + [lambda t=t: c.advance_round(t, "2s") for t in PARTNERS]
    )
    c.every_partner("1m")  # every payout has fired
    again = [f for f in live if f.kind == "fail_once"]
    parallel([lambda f=f, i=i: confirm_again(c, f, i) for i, f in enumerate(again)])
    c.every_partner("1m")
    disbursed = parallel([lambda f=f, i=i: status(c, f, i) for i, f in enumerate(live)])
    assert set(disbursed) == {170}, list(zip([f.order_no for f in live], disbursed, strict=True))
    # 3. payments while every clock moves an hour at a time (codes live 24h: none expires)
    parallel(
        [lambda f=f, i=i: repay(c, f, i) for i, f in enumerate(live)]
        + [lambda t=t: [c.advance_round(t, "1h") for _ in range(3)] for t in PARTNERS]
    )
    settled = parallel([lambda f=f, i=i: status(c, f, i) for i, f in enumerate(live)])
    assert set(settled) == {200}, list(zip([f.order_no for f in live], settled, strict=True))
    # 4. every partner's clock a day forward through every process at the same moment
    c.every_partner("1d")
    return raced


# ---------------------------------------------------------------------------- the verdict


def drain(engine: Engine, timeout: float = 30.0) -> None:
    """Wait, polling the outbox, until no callback is pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            pending = conn.execute(
                select(Callback.id).where(Callback.state == "pending").limit(1)
            ).first()
        if pending is None:
            return
        time.sleep(0.1)
    raise AssertionError(f"callbacks still pending after {timeout}s")


def check_timelines(engine: Engine, flows: list[Flow], raced: dict[str, set[str]]) -> None:
    """Each order's timeline is a legal walk from `create`, ending at the order's status, with
    exactly the expected triggers; the orders are exactly those the test made."""
    expected = {(f.token, f.order_no): f.expected() for f in flows}
    expected |= {(t, no): Counter(["create"]) for t, nos in raced.items() for no in nos}
    with engine.connect() as conn:
        orders = {(o.partner_token, o.order_no): o for o in conn.execute(select(Order))}
        rows = defaultdict(list)
        for r in conn.execute(select(TimelineRow).order_by(TimelineRow.id)):
            rows[r.order_id].append(r)
    assert set(orders) == set(expected)
    for key, o in orders.items():
        timeline = rows[o.id]
        first, rest = timeline[0], timeline[1:]
        assert (first.trigger, first.from_status, first.to_status) == ("create", None, 80), key
        at, status = first.at, first.to_status
        for r in rest:
            assert r.from_status == status, (key, [(t.trigger, t.from_status) for t in timeline])
            assert fire(r.from_status, r.trigger).dest == r.to_status, (key, r.trigger)
            assert r.at >= at, (key, r.trigger, "recorded before the transition before it")
            at, status = r.at, r.to_status
        assert o.status == status, (key, o.status, status)
        assert Counter(r.trigger for r in timeline) == expected[key], key


def expected_callbacks(engine: Engine) -> Counter[tuple[int, str]]:
    """(order id, path) of the callbacks the recorded transitions make (docs/protocol.md §6)."""
    out: Counter[tuple[int, str]] = Counter()
    with engine.connect() as conn:
        for r in conn.execute(select(TimelineRow).where(TimelineRow.trigger != "create")):
            if r.from_status != r.to_status:
                out[(r.order_id, "/callback-order-status")] += 1
            if r.trigger in ("approve", "reject"):
                out[(r.order_id, "/callback-approval-result")] += 1
            if r.trigger in ("disburse", "extend", "overdue", "settle"):
                out[(r.order_id, "/callback-repay-plan")] += 1
    return out


def check_callbacks(engine: Engine, sink: CallbackSink) -> int:
    """Every transition's callbacks once in the outbox, each delivered with one acknowledged
    attempt; the receiver got each once, a second copy only for an attempt logged as failed
    (a documented retry). Returns the number of such retries."""
    with engine.connect() as conn:
        callbacks = list(conn.execute(select(Callback)))
        attempts = defaultdict(list)
        for a in conn.execute(select(CallbackAttempt).order_by(CallbackAttempt.id)):
            attempts[a.callback_id].append(a)
    assert Counter((cb.order_id, cb.path) for cb in callbacks) == expected_callbacks(engine)
    received = Counter(r.raw for r in sink.records())
    assert all(r.outcome == "ok" and r.body is not None for r in sink.records())
    retries, sent = 0, 0
    for cb in callbacks:
        tried = attempts[cb.id]
        acked = [a for a in tried if a.status_code == 200 and a.error == ""]
        assert cb.state == "delivered" and len(acked) == 1 and cb.attempts == len(tried), cb
        for body in {a.request_body for a in tried}:
            copies = [a for a in tried if a.request_body == body]
            answered = [a for a in copies if a.status_code is not None]
            assert len(answered) <= received[body] <= len(copies), (cb.id, received[body])
            sent += received[body]
        retries += len(tried) - 1
    assert sent == sum(received.values()), "the receiver got a callback the outbox never sent"
    return retries


def check_open_loans(engine: Engine) -> None:
    """No person (by NIK, and by mobile) with two open loans with one partner."""
    with engine.connect() as conn:
        open_ = [o for o in conn.execute(select(Order)) if o.status in OPEN]
    for column in ("user_idcard", "user_mobile"):
        held = Counter((o.partner_token, getattr(o, column)) for o in open_)
        assert [k for k, n in held.items() if n > 1] == [], column


def check_answers(c: Cluster, engine: Engine) -> None:
    """No 5xx and no 10099, as the client saw them and as the journal recorded them; no
    traceback in any process's log."""
    assert [s for s in c.statuses if s[1] >= 500] == []
    assert [a for a in c.codes if a[1] == INTERNAL] == []
    with engine.connect() as conn:
        bad = conn.execute(
            select(JournalEntry.path, JournalEntry.code, JournalEntry.http_status).where(
                (JournalEntry.code == INTERNAL) | (JournalEntry.http_status >= 500)
            )
        ).all()
    assert bad == []
    for s in c.servers:
        assert "Traceback" not in s.log(), s.log()


def test_three_processes_started_and_driven_at_once(
    cluster: tuple[Cluster, CallbackSink, Engine],
) -> None:
    c, sink, engine = cluster
    started = {t: c.now(0, t) for t in PARTNERS}
    crowd = people()
    flows = make_flows(crowd)
    raced = drive(c, flows, crowd)
    for t in PARTNERS:  # every process reads the same clock: the sum of the advances
        for p in range(PROCESSES):
            assert c.now(p, t) - started[t] == pytest.approx(c.advanced[t], abs=1e-3), (t, p)
    drain(engine)
    check_answers(c, engine)
    check_timelines(engine, flows, raced)
    retries = check_callbacks(engine, sink)
    check_open_loans(engine)
    print(f"advances sent again after 10015: {c.retried}; callback retries: {retries}")
