"""The test receivers (sandbox.sink) and the live server's config writer (sandbox.liveserver):
CallbackSink over real loopback HTTP, MemorySink in-process, TOML written by hand."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import tomllib

import httpx
import pytest

from sandbox.core.crypto import Codec, php_json_encode
from sandbox.harness.liveserver import LiveServer, LiveServerError, to_toml
from sandbox.harness.sink import CallbackSink, MemorySink, SinkTimeout
from sandbox.services.senders import RESPONSE_LIMIT, AiohttpSender, HttpxSender

KEY, IV = "K" * 16, "I" * 16
BODY = {"order_no": "ORD0000001", "order_status": 90, "update_time": 1764300000}


def envelope(body: dict = BODY, token: str = "p1", key: str = KEY) -> bytes:
    return php_json_encode(
        {"partner_token": token, "encode_data": Codec(key, IV).encrypt_json(body)}
    ).encode()


def post(
    sink: CallbackSink, content: bytes, path: str = "/callback-order-status", timeout: float = 5
) -> httpx.Response:
    with httpx.Client(trust_env=False) as c:
        return c.post(sink.url + path, content=content, timeout=timeout)


@pytest.fixture
def sink():
    with CallbackSink(KEY, IV) as s:
        yield s


def test_acknowledges_and_records_the_decrypted_callback(sink):
    r = post(sink, envelope())
    assert r.status_code == 200 and r.json() == {"code": 0, "message": "success", "data": {}}
    assert sink.received() == [BODY] and sink.received("callback-order-status") == [BODY]
    assert sink.received("/callback-repay-plan") == []
    (rec,) = sink.records()
    assert rec.partner_token == "p1" and rec.outcome == "ok" and rec.raw == envelope().decode()


def test_fail_next_by_status_or_by_code_then_recovers(sink):
    sink.fail_next(1, status=503)
    sink.fail_next(1, code=2)
    answers = [post(sink, envelope()) for _ in range(3)]
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(503, 503), (200, 2), (200, 0)]
    assert [r.outcome for r in sink.records()] == ["failed", "failed", "ok"]
    assert sink.received() == [BODY]


def test_recover_drops_pending_failures(sink):
    sink.fail_next(5)
    sink.recover()
    assert post(sink, envelope()).json()["code"] == 0


def test_a_wrong_key_is_refused_with_a_reason(sink):
    r = post(sink, envelope(key="X" * 16))
    assert r.json()["code"] == 1 and "cannot decrypt" in r.json()["message"]
    assert sink.records()[0].outcome == "unreadable" and sink.received() == []


def test_plain_json_without_keys():
    with CallbackSink() as plain:
        post(plain, json.dumps(BODY).encode())
        assert plain.received() == [BODY]
        r = post(plain, envelope())
        assert r.json()["code"] == 1 and "no key for partner_token 'p1'" in r.json()["message"]


def test_keys_per_partner():
    with CallbackSink(partners={"p1": (KEY, IV), "p2": Codec("Z" * 16, IV)}) as s:
        post(s, envelope())
        post(s, envelope(token="p2", key="Z" * 16))
        assert [r.partner_token for r in s.records() if r.acknowledged] == ["p1", "p2"]


def test_hang_outlasts_the_senders_timeout_and_recover_answers_again(sink):
    sink.hang()
    with pytest.raises(httpx.ReadTimeout):
        post(sink, envelope(), timeout=0.2)
    assert sink.records()[0].outcome == "hung" and sink.records()[0].status is None
    sink.recover()
    assert post(sink, envelope()).json()["code"] == 0


def test_stop_is_prompt_with_a_hung_request_and_a_kept_alive_connection():
    sink = CallbackSink(KEY, IV).start()
    client = httpx.Client(trust_env=False)
    client.post(sink.url + "/callback-order-status", content=envelope())  # pooled connection
    sink.hang()
    errors: list[Exception] = []

    def hung_call() -> None:
        try:
            httpx.post(sink.url + "/x", content=envelope(), timeout=30, trust_env=False)
        except httpx.HTTPError as e:
            errors.append(e)

    caller = threading.Thread(target=hung_call)
    caller.start()
    sink.wait_for_requests(2)
    started = time.monotonic()
    sink.stop()
    assert time.monotonic() - started < 1.0
    caller.join(5)
    client.close()
    assert errors and isinstance(errors[0], httpx.RemoteProtocolError)


def test_wait_for_blocks_until_the_callbacks_are_in(sink):
    threading.Timer(0.05, post, (sink, envelope())).start()
    assert sink.wait_for(1, timeout=5) == [BODY]
    with pytest.raises(SinkTimeout, match=r"waited 0\.05s for 2 acknowledged callback"):
        sink.wait_for(2, timeout=0.05)


SENDERS = [HttpxSender, AiohttpSender]


@pytest.mark.parametrize("make", SENDERS)
def test_a_sender_talks_to_the_sink(sink, make):
    async def send() -> tuple[int, str]:
        async with make() as sender:
            return await sender.send(sink.url + "/callback-order-status", envelope(), 5)

    status, text = asyncio.run(send())
    assert status == 200 and json.loads(text)["code"] == 0
    assert sink.records()[0].headers["content-type"] == "application/json;charset=utf-8"
    assert sink.records()[0].body == BODY


@pytest.mark.parametrize("make", SENDERS)
def test_a_sender_bounds_the_whole_attempt(sink, make):
    sink.hang()

    async def send() -> None:
        async with make() as sender:
            await sender.send(sink.url + "/callback-order-status", envelope(), 0.2)

    started = time.monotonic()
    with pytest.raises((TimeoutError, httpx.TimeoutException)):
        asyncio.run(send())
    assert time.monotonic() - started < 1.0


class _Receiver(http.server.BaseHTTPRequestHandler):
    """Answers by path: a redirect, an error page, or 200 KB of text."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("location", "/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        status, body = (500, b"oops") if self.path == "/error" else (200, b"x" * 200_000)
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("make", SENDERS)
def test_a_sender_reports_what_the_receiver_answered(receiver, make):
    """A redirect is an answer (not followed: it acknowledges nothing), an error is its
    status and text, and a huge answer is cut at the attempt log's limit."""

    async def send(path: str) -> tuple[int, str]:
        async with make() as sender:
            return await sender.send(receiver + path, envelope(), 5)

    assert asyncio.run(send("/moved"))[0] == 302
    assert asyncio.run(send("/error")) == (500, "oops")
    status, text = asyncio.run(send("/big"))
    assert status == 200 and text == "x" * RESPONSE_LIMIT


def test_memory_sink_is_a_sender():
    mem = MemorySink(KEY, IV)

    async def run() -> list:
        out = [await mem.send("http://x.invalid/hooks/callback-order-status", envelope(), 1)]
        mem.fail_next(1)
        out.append(await mem.send("http://x.invalid/hooks/callback-order-status", envelope(), 1))
        mem.hang()
        with pytest.raises(TimeoutError):
            await mem.send("http://x.invalid/hooks/callback-order-status", envelope(), 1)
        return out

    (ok, failed) = asyncio.run(run())
    assert ok[0] == 200 and failed[0] == 500
    assert mem.received("callback-order-status") == [BODY]
    assert mem.records()[0].path == "/hooks/callback-order-status"
    mem.clear()
    assert mem.records() == []


def test_memory_sink_learns_partners_later():
    mem = MemorySink()
    mem.add_partner("p1", KEY, IV)
    asyncio.run(mem.send("http://x.invalid/callback-order-status", envelope(), 1))
    assert mem.received() == [BODY]


# ---- the live server's config ----


def test_to_toml_round_trips_through_tomllib():
    sections = {
        "server": {"host": "127.0.0.1", "port": 8123},
        "callbacks": {"first_delay": 0.05, "ordered": True, "timeout": "2s"},
        "odd keys": {
            "a.b": 'quote " back \\ tab \t nl \n del \x7f é',
            "list": [1, 2.5, "x"],
            "table": {"k": False},
        },
    }
    assert tomllib.loads(to_toml(sections)) == sections


def test_to_toml_refuses_what_it_cannot_write():
    with pytest.raises(ValueError):
        to_toml({"x": {"y": float("nan")}})
    with pytest.raises(TypeError):
        to_toml({"x": {"y": None}})


def test_live_server_config_uses_the_packaged_fixtures(tmp_path):
    server = LiveServer({"callbacks": {"max_attempts": 9}}, workdir=tmp_path, port=8999)
    s = server.settings
    assert s["callbacks"]["max_attempts"] == 9 and s["callbacks"]["first_delay"] == 0.05
    assert (
        s["server"]["port"] == 8999 and s["database"]["url"] == f"sqlite:///{tmp_path}/sandbox.db"
    )
    assert "fixtures" not in s and s["clock"]["mode"] == "manual"  # "": the packaged ones
    assert server.base_url == "http://127.0.0.1:8999" and not server.running


def test_live_server_takes_a_config_file_but_keeps_its_address_and_database(tmp_path):
    (tmp_path / "project").mkdir()
    config = tmp_path / "project" / "sandbox.toml"
    config.write_text(
        '[server]\nhost = "0.0.0.0"\nport = 1\nmax_body_bytes = 4096\n'
        '[fixtures]\ndir = "my-fixtures"\n[lifecycle]\nreview_delay = "1d"\n'
        "[callbacks]\nmax_attempts = 3\nfactor = 3.0\n",
        "utf-8",
    )
    work = tmp_path / "work"
    server = LiveServer({"callbacks": {"max_attempts": 9}}, config=config, workdir=work, port=8999)
    s = server.settings
    assert s["server"] == {"host": "127.0.0.1", "port": 8999, "max_body_bytes": 4096}
    assert s["fixtures"]["dir"] == str((tmp_path / "project" / "my-fixtures").resolve())
    assert s["lifecycle"] == {"review_delay": "1d", "payout_delay": "5s"}  # over the test defaults
    assert s["callbacks"]["max_attempts"] == 9 and s["callbacks"]["factor"] == 3.0
    assert s["callbacks"]["first_delay"] == 0.05 and s["clock"]["mode"] == "manual"
    assert server.database_url == s["database"]["url"] == f"sqlite:///{work}/sandbox.db"
    assert tomllib.loads(to_toml(s)) == s


def test_live_server_uses_the_database_a_config_names(tmp_path):
    config = tmp_path / "sandbox.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/shared.db"\n[fixtures]\ndir = ""\n', "utf-8"
    )
    server = LiveServer(config=config, workdir=tmp_path / "work")
    assert server.settings["database"]["url"] == f"sqlite:///{tmp_path}/shared.db"
    assert server.settings["fixtures"]["dir"] == ""  # the packaged fixtures
    given = LiveServer(config=config, database_url="sqlite:///other.db", workdir=tmp_path / "w2")
    assert given.settings["database"]["url"] == "sqlite:///other.db"
    with pytest.raises(LiveServerError, match=r"missing\.toml"):
        LiveServer(config=tmp_path / "missing.toml", workdir=tmp_path / "w3")
