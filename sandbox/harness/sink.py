"""Callback receivers for tests: `CallbackSink`, a real HTTP server on loopback, and
`MemorySink`, the same receiver as an in-process `callbacks.Sender` (no network).

Both play the aggregator's side of docs/protocol.md §6: decrypt each callback with the partner's
key/IV (or read plain JSON), record it, and acknowledge with
`{"code":0,"message":"success","data":{}}` — unless told to refuse (`fail_next`) or to stop
answering (`hang`) until `recover()`, or given a `relay` that answers instead (`lender-sandbox
listen` forwards to a developer's handler). `wait_for` blocks on a Condition until the
callbacks are in: no sleeps. Used by the pytest plugin, the e2e tests, the benchmark, the demo
and `listen`.
`MemorySink.deliver_to(app)` hands the callbacks to the aggregator's own app instead, whose
answer counts (harness/delivery.py).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..core.crypto import Codec, CryptoError
from ..services.outbox import refusal

if TYPE_CHECKING:
    from .delivery import AppRelay

__all__ = ["CallbackSink", "MemorySink", "Record", "Relay", "SinkTimeout"]

ACK = json.dumps({"code": 0, "message": "success", "data": {}})
MAX_HANG = 300.0  # a hung request gives up after this even if nobody calls recover()/stop()


class SinkTimeout(AssertionError):
    """`wait_for` ran out of time (an AssertionError, so pytest shows the message)."""


@dataclass(frozen=True)
class Record:
    """One request the sink received: what came, what it made of it, what it answered."""

    path: str
    body: dict | None  # decrypted (or plain) callback body; None if unreadable
    raw: str  # the request body as received
    at: float  # wall time of arrival
    partner_token: str = ""  # from the envelope ("" for plain JSON)
    outcome: str = "ok"  # ok | failed | hung | unreadable
    status: int | None = 200  # HTTP status answered (None: no answer)
    headers: dict[str, str] = field(default_factory=dict)
    answer: str = ACK  # the body answered ("" when there was none)
    problem: str = ""  # why the body could not be read ("" when it could)

    @property
    def acknowledged(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True)
class _Hang:
    released: threading.Event


# path, body as received, headers -> (HTTP status, body) to answer with
Relay = Callable[[str, bytes, dict[str, str]], tuple[int, str]]


def _path_matches(path: str, wanted: str | None) -> bool:
    """'callback-order-status' (or with a slash) matches '/hooks/callback-order-status'."""
    if wanted is None:
        return True
    tail = "/" + wanted.strip("/")
    return path.rstrip("/").endswith(tail)


def _as_codec(value: Any) -> Codec:
    if isinstance(value, Codec):
        return value
    if isinstance(value, (tuple, list)):
        return Codec(value[0], value[1])
    return Codec(value.aes_key, value.aes_iv)  # e.g. testing.Credentials or a partner view


class _Receiver:
    """What both sinks share: decoding, the fail/hang switches, the records, waiting."""

    def __init__(
        self,
        key: str | None = None,
        iv: str | None = None,
        *,
        partners: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        relay: Relay | None = None,
        on_record: Callable[[Record], None] | None = None,
    ):
        self._default = Codec(key, iv) if key is not None and iv is not None else None
        self._forward = relay  # answers instead of the built-in ACK (fail_next/hang still win)
        self._on_record = on_record  # told of each request once it is answered
        self._codecs = {token: _as_codec(v) for token, v in (partners or {}).items()}
        self._clock = clock
        self._cond = threading.Condition()
        self._records: list[Record] = []
        self._failures: deque[tuple[int, int | None]] = deque()
        self._hang: threading.Event | None = None

    # ---- configuration ----

    def add_partner(self, token: str, key: str, iv: str) -> None:
        """Decrypt envelopes carrying `token` with this key/IV."""
        with self._cond:
            self._codecs[token] = Codec(key, iv)

    def fail_next(self, n: int = 1, *, status: int = 500, code: int | None = None) -> None:
        """Refuse the next `n` callbacks: HTTP `status`, or HTTP 200 with `code` (!= 0) if given."""
        if code == 0 or (code is None and 200 <= status < 300):
            raise ValueError("that answer would acknowledge the callback, not refuse it")
        with self._cond:
            self._failures.extend([(200 if code is not None else status, code)] * n)

    def hang(self) -> None:
        """Stop answering: requests are held open (past any sender timeout) until recover()."""
        with self._cond:
            if self._hang is None:
                self._hang = threading.Event()

    def recover(self) -> None:
        """Answer normally again: pending failures are dropped, held requests let go."""
        with self._cond:
            self._failures.clear()
            if self._hang is not None:
                self._hang.set()
            self._hang = None

    def clear(self) -> None:
        """Forget what was received (failures and hang stay as set)."""
        with self._cond:
            self._records.clear()

    # ---- reading ----

    def records(self, path: str | None = None) -> list[Record]:
        """Every request, refused and unanswered ones included, oldest first."""
        with self._cond:
            return [r for r in self._records if _path_matches(r.path, path)]

    def received(self, path: str | None = None) -> list[dict]:
        """The bodies of the acknowledged callbacks (decrypted), oldest first."""
        return [r.body for r in self.records(path) if r.acknowledged and r.body is not None]

    def wait_for(self, count: int = 1, path: str | None = None, timeout: float = 5.0) -> list[dict]:
        """Block until `count` callbacks (on `path`) were acknowledged; their bodies."""
        self._wait(
            lambda: len(self.received(path)) >= count,
            timeout,
            f"{count} acknowledged callback(s) on {path or 'any path'}",
        )
        return self.received(path)

    def wait_for_requests(
        self, count: int = 1, path: str | None = None, timeout: float = 5.0
    ) -> list[Record]:
        """Block until `count` requests (acknowledged or not) arrived; their records."""
        self._wait(
            lambda: len(self.records(path)) >= count,
            timeout,
            f"{count} request(s) on {path or 'any path'}",
        )
        return self.records(path)

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(ready, timeout):
                seen = [(r.path, r.outcome) for r in self._records]
                raise SinkTimeout(
                    f"waited {timeout}s for {what}; got {len(seen)} request(s): {seen}"
                )

    # ---- answering ----

    def _decode(self, raw: bytes) -> tuple[dict | None, str, str]:
        """(body, partner_token, problem): an envelope is decrypted, plain JSON taken as is."""
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None, "", "the body is not UTF-8 JSON"
        if not isinstance(doc, dict):
            return None, "", "the body is not a JSON object"
        if "encode_data" not in doc:
            return doc, "", ""
        token = str(doc.get("partner_token", ""))
        codec = self._codecs.get(token, self._default)
        if codec is None:
            return None, token, f"no key for partner_token {token!r}"
        try:
            body = codec.decrypt_json(str(doc["encode_data"]))
        except CryptoError as e:
            return None, token, f"cannot decrypt: {e}"
        return (body, token, "") if isinstance(body, dict) else (None, token, "not an object")

    def _answer(self, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, str] | _Hang:
        """Record the request and decide the answer: (HTTP status, text), or hang."""
        body, token, problem = self._decode(raw)
        at = self._clock()
        with self._cond:
            answer, outcome = self._decide(problem)
            relayed = self._forward is not None and outcome in ("ok", "unreadable")
            if not relayed:
                record = self._store(path, body, raw, at, token, outcome, answer, headers, problem)
        if relayed:  # outside the lock: the relay is a network call
            assert self._forward is not None
            answer = self._forward(path, raw, headers)
            outcome = "ok" if not refusal(*answer) else "failed"
            with self._cond:
                record = self._store(path, body, raw, at, token, outcome, answer, headers, problem)
        if self._on_record is not None:
            self._on_record(record)
        return answer

    def _store(
        self,
        path: str,
        body: dict | None,
        raw: bytes,
        at: float,
        token: str,
        outcome: str,
        answer: tuple[int, str] | _Hang | None,
        headers: dict[str, str],
        problem: str,
    ) -> Record:
        """Append the record and wake the waiters; called holding the lock. `answer` is what was
        answered: (HTTP status, body), or a hang / None when nothing was."""
        status, text = answer if isinstance(answer, tuple) else (None, "")
        record = Record(
            path,
            body,
            raw.decode("utf-8", "replace"),
            at,
            token,
            outcome,
            status,
            headers,
            text,
            problem,
        )
        self._records.append(record)
        self._cond.notify_all()
        return record

    def _decide(self, problem: str) -> tuple[tuple[int, str] | _Hang, str]:
        """(answer, outcome); called holding the lock."""
        if problem:  # an aggregator that cannot read a callback refuses it
            return (200, json.dumps({"code": 1, "message": problem, "data": {}})), "unreadable"
        return self._planned() or ((200, ACK), "ok")

    def _planned(self) -> tuple[tuple[int, str] | _Hang, str] | None:
        """The refusal or hang that fail_next()/hang() set for this request (taken), or None."""
        with self._cond:  # reentrant: _decide calls this holding it
            if self._hang is not None:
                return _Hang(self._hang), "hung"
            if not self._failures:
                return None
            status, code = self._failures.popleft()
        text = json.dumps(
            {"code": status if code is None else code, "message": "sink told to fail", "data": {}}
        )
        return (status, text), "failed"

    def _keep(
        self,
        path: str,
        raw: bytes,
        headers: dict[str, str],
        outcome: str,
        status: int | None,
        answer: str = "",
    ) -> None:
        """Record a request that someone else answered (the app a MemorySink relays to)."""
        body, token, problem = self._decode(raw)
        said = None if status is None else (status, answer)
        with self._cond:
            self._store(path, body, raw, self._clock(), token, outcome, said, headers, problem)


# ---------------------------------------------------------------------------- in-process


class MemorySink(_Receiver):
    """An in-process receiver that is also a `services.senders.Sender`: deliveries never leave
    Python.

    `hang()` makes `send` raise TimeoutError at once (a sender's timeout, without the wait).
    `deliver_to(app)` hands each callback to the aggregator's own app, whose answer counts."""

    _relay: AppRelay | None = None

    def deliver_to(self, app: Any, prefix: str = "") -> AppRelay:
        """Deliver callbacks into `app` (ASGI, WSGI or an httpx client) at `prefix` + path;
        see harness/delivery.py. Usable as a context manager (unbinds on exit)."""
        from .delivery import AppRelay

        self._relay = AppRelay(self, app, prefix, previous=self._relay)
        return self._relay

    async def send(self, url: str, content: bytes, timeout: float) -> tuple[int, str]:
        if self._relay is not None:
            return await self._relay.send(url, content, timeout)
        answer = self._answer(urlsplit(url).path, content, {"content-type": "application/json"})
        if isinstance(answer, _Hang):
            raise TimeoutError(f"no answer within {timeout}s (the sink is hanging)")
        return answer

    async def aclose(self) -> None:
        pass


# ---------------------------------------------------------------------------- over HTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real web server: the sender pools
    timeout = 60  # an idle keep-alive connection does not pin a thread forever
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stalls
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        path = urlsplit(self.path).path
        answer = self.server.sink._answer(
            path, raw, {k.lower(): v for k, v in self.headers.items()}
        )
        if isinstance(answer, _Hang):
            answer.released.wait(MAX_HANG)  # set by recover() or stop(): shutdown stays prompt
            self.close_connection = True  # then drop the connection without an answer
            return
        self._reply(*answer)

    def _reply(self, status: int, text: str) -> None:
        data = text.encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the sender gave up (timeout) and closed the connection
            self.close_connection = True

    def do_GET(self) -> None:
        self._reply(405, json.dumps({"code": 405, "message": "callbacks are POSTed", "data": {}}))

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the records are the log


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its open connections, so stop() can end them at once."""

    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads
    request_queue_size = 128  # the default backlog (5) drops connections a pooled sender opens

    def __init__(self, address: tuple[str, int], sink: CallbackSink):
        self.sink = sink
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked reading keep-alive
            except OSError:
                pass


class CallbackSink(_Receiver):
    """A real HTTP callback receiver on 127.0.0.1 (a free port), served from a thread.

    `with CallbackSink(key, iv) as sink:` (or start()/stop()); point a partner's callback_url
    at `sink.url`. Without key/IV (and `partners`), it expects plain JSON callbacks."""

    def __init__(
        self,
        key: str | None = None,
        iv: str | None = None,
        *,
        partners: Mapping[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        relay: Relay | None = None,
        on_record: Callable[[Record], None] | None = None,
    ):
        super().__init__(key, iv, partners=partners, clock=clock, relay=relay, on_record=on_record)
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sink is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> CallbackSink:
        if self._server is None:
            self._server = _Server(self._address, self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="callback-sink",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        with self._cond:
            if self._hang is not None:
                self._hang.set()  # held requests end now, without an answer
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if thread is not None:
            thread.join(5)

    def __enter__(self) -> CallbackSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
