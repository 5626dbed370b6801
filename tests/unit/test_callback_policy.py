"""Where callbacks may go (issue 12 #4): the pure policy (core.addresses), the `[callbacks]
allow` setting, and deliveries over real loopback sockets — for a loopback bind (allowed: how
a developer tests) and a shared one (refused unless listed; simulated by `[server] host`, the
receivers stay on 127.0.0.1). A refused delivery is a failed attempt with its reason in the
attempt log, never a crash; a callback URL that can never be allowed is a 400 when set."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator

import pytest
from callback_rows import IV, KEY, T0, enqueue
from starlette.testclient import TestClient

from sandbox.core.addresses import CallbackPolicy, parse_allow
from sandbox.core.errors import ControlError
from sandbox.harness.sink import CallbackSink
from sandbox.services import control, deliveries, outbox, scheduler
from sandbox.services.config import ConfigError, load_settings
from sandbox.services.lender import Lender, create_lender
from sandbox.services.senders import AiohttpSender, CallbackRefused, HttpxSender, callback_policy
from sandbox.store import Store
from sandbox.web.app import create_app

SHARED = CallbackPolicy.of("0.0.0.0", [], frozenset({ipaddress.ip_address("203.0.113.7")}))


# ---- the policy ----


@pytest.mark.parametrize(
    "address, kind",
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.10", "private"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT; some clouds' metadata lives here
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("fc00::1", "private"),
        ("203.0.113.7", "this sandbox's own address"),
    ],
)
def test_a_shared_sandbox_refuses_what_is_not_public(address: str, kind: str) -> None:
    why = SHARED.refusal("receiver.example", address)
    assert kind in why and "[callbacks] allow" in why and "0.0.0.0" in why


def test_public_addresses_go_and_a_loopback_bind_sends_anywhere() -> None:
    assert SHARED.refusal("receiver.example", "8.8.8.8") == ""
    assert SHARED.refusal("receiver.example", "2606:4700::1111") == ""
    local = CallbackPolicy.of("127.0.0.1", [])
    assert not local.shared
    for ip in ("127.0.0.1", "10.0.0.1", "169.254.169.254"):
        assert local.refusal("x", ip) == ""


def test_allow_lists_networks_addresses_and_names() -> None:
    policy = CallbackPolicy.of(
        "0.0.0.0", ["10.20.0.0/16", "192.168.1.5", "receiver.internal", "*.corp.example"]
    )
    assert policy.refusal("a", "10.20.3.4") == ""
    assert policy.refusal("a", "10.21.3.4") != ""
    assert policy.refusal("a", "192.168.1.5") == "" and policy.refusal("a", "192.168.1.6") != ""
    assert policy.refusal("receiver.internal", "10.9.9.9") == ""
    assert policy.refusal("RECEIVER.internal.", "10.9.9.9") == ""
    assert policy.refusal("hooks.corp.example", "127.0.0.1") == ""
    assert policy.refusal("corp.example", "127.0.0.1") != ""  # *.x is what is under x
    assert policy.refusal("evilreceiver.internal", "10.9.9.9") != ""


@pytest.mark.parametrize("entry", ["not a host", "10.0.0.0/33", "http://x", "*", "a..b"])
def test_a_bad_allow_entry_is_named(entry: str) -> None:
    with pytest.raises(ValueError, match="allow"):
        parse_allow([entry])
    with pytest.raises(ConfigError, match="allow"):
        load_settings(overrides={"callbacks": {"allow": [entry]}}, env={})


def test_allow_from_a_variable_is_a_list() -> None:
    env = {"LENDER_SANDBOX_CALLBACKS_ALLOW": "10.0.0.0/8, receiver.internal *.corp.example"}
    settings = load_settings(env=env)
    assert settings.callbacks.allow == ["10.0.0.0/8", "receiver.internal", "*.corp.example"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432",
        "http://[::1]:8000",
        "http://10.0.0.8/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:8000",
        "http://hooks.localhost",
        "http://[::ffff:127.0.0.1]",
        "http://0.0.0.0:8000",
    ],
)
def test_a_url_that_can_never_be_allowed_is_refused_when_set(url: str) -> None:
    assert SHARED.url_refusal(url) != ""


def test_names_are_judged_when_they_are_resolved() -> None:
    assert SHARED.url_refusal("http://receiver.example/hooks") == ""
    assert SHARED.url_refusal("https://8.8.8.8/hooks") == ""
    assert CallbackPolicy.of("127.0.0.1", []).url_refusal("http://127.0.0.1:9000") == ""


# ---- deliveries over real sockets ----


def lender_for(host: str, *allow: str) -> Lender:
    settings = load_settings(
        overrides={
            "server": {"host": host, "admin_token": "x" * 20},
            "database": {"url": "sqlite://"},
            "clock": {"mode": "manual"},
            "callbacks": {"allow": list(allow), "max_attempts": 3, "jitter": 0, "timeout": 5},
        },
        env={},
    )
    return create_lender(settings, store=Store("sqlite://"), wall=lambda: T0)


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    with CallbackSink(KEY, IV) as s:
        yield s


def point(lender: Lender, url: str) -> int:
    """Partner p1 with its callbacks going to `url`, one callback waiting; the callback's id."""
    with lender.store.transaction() as s:
        s.add(lender.new_partner("p1", KEY, IV, callback_url=url))
    return enqueue(lender)


def deliver(lender: Lender, sender: object) -> None:
    async def run() -> None:
        async with sender:  # type: ignore[attr-defined]
            await outbox.flush_until_idle(lender, sender)  # type: ignore[arg-type]

    asyncio.run(run())


def test_a_loopback_sandbox_delivers_to_a_loopback_receiver(sink: CallbackSink) -> None:
    lender = lender_for("127.0.0.1")
    callback = point(lender, sink.url)
    outbox.deliver_now(lender)  # the server's sender, with the server's policy
    assert deliver_state(lender, callback) == ("delivered", "")
    assert len(sink.received()) == 1


@pytest.mark.parametrize("how", ["address", "name"])
def test_a_shared_sandbox_refuses_a_loopback_receiver_at_delivery(
    sink: CallbackSink, how: str
) -> None:
    """The name `localhost` passes the URL check only as far as the resolver: the address it
    resolves to when the callback goes is what is refused."""
    lender = lender_for("0.0.0.0")
    url = sink.url if how == "address" else sink.url.replace("127.0.0.1", "localhost")
    callback = point(lender, url)
    outbox.deliver_now(lender)
    state, error = deliver_state(lender, callback)
    assert state == "pending"  # a failed attempt, retried later: not a crash, not a loss
    # a loopback address (or, where this host's name resolves to 127.0.0.1, its own)
    assert "refused: 127.0.0.1 is" in error and "[callbacks] allow" in error
    assert sink.records() == []  # nothing reached the receiver
    log = deliveries.get_delivery(lender, callback)["attempt_log"]
    assert len(log) == 1 and log[0]["status_code"] is None and "refused" in log[0]["error"]


@pytest.mark.parametrize("allow", ["127.0.0.1", "127.0.0.0/8", "localhost"])
def test_what_allow_lists_is_delivered_on_a_shared_sandbox(sink: CallbackSink, allow: str) -> None:
    lender = lender_for("0.0.0.0", allow)
    url = sink.url.replace("127.0.0.1", "localhost") if allow == "localhost" else sink.url
    callback = point(lender, url)
    outbox.deliver_now(lender)
    assert deliver_state(lender, callback) == ("delivered", "")


def test_the_httpx_sender_checks_before_sending(sink: CallbackSink) -> None:
    shared = lender_for("0.0.0.0")
    callback = point(shared, sink.url.replace("127.0.0.1", "localhost"))
    deliver(shared, HttpxSender(policy=shared.callback_policy))
    state, error = deliver_state(shared, callback)
    assert state == "pending" and "CallbackRefused" in error and sink.records() == []
    allowed = lender_for("0.0.0.0", "localhost")
    callback = point(allowed, sink.url.replace("127.0.0.1", "localhost"))
    deliver(allowed, HttpxSender(policy=allowed.callback_policy))
    assert deliver_state(allowed, callback) == ("delivered", "")


def test_a_sender_without_a_policy_sends_anywhere(sink: CallbackSink) -> None:
    async def send() -> int:
        async with AiohttpSender() as sender:
            status, _ = await sender.send(sink.url + "/callback-order-status", b"{}", 5)
            return status

    assert asyncio.run(send()) == 200


def test_the_refusal_is_an_oserror_the_outbox_records() -> None:
    assert issubclass(CallbackRefused, OSError)


def deliver_state(lender: Lender, callback: int) -> tuple[str, str]:
    d = deliveries.get_delivery(lender, callback)
    log = d["attempt_log"]
    return d["state"], (log[-1]["error"] or "") if log else ""


# ---- the 400 when it is set ----


def test_setting_a_url_that_can_never_be_allowed_is_a_400() -> None:
    lender = lender_for("0.0.0.0")
    with lender.store.transaction() as s:
        s.add(lender.new_partner("p1", KEY, IV))
    for url in (
        "http://127.0.0.1:5432",
        "http://[::1]/",
        "http://10.0.0.5/h",
        "http://localhost:1",
    ):
        with pytest.raises(ControlError, match="refused") as e:
            control.update_partner(lender, "p1", {"callback_url": url})
        assert e.value.http_status == 400 and e.value.name == "callback_refused"
        with pytest.raises(ControlError, match="refused"):
            control.create_partner(lender, {"callback_url": url})
    control.update_partner(lender, "p1", {"callback_url": "http://receiver.example/hooks"})
    assert control.get_partner(lender, "p1")["callback_url"] == "http://receiver.example/hooks"


def test_a_loopback_sandbox_takes_a_loopback_url() -> None:
    lender = lender_for("127.0.0.1")
    view = control.create_partner(lender, {"callback_url": "http://127.0.0.1:9000"})
    assert view["callback_url"] == "http://127.0.0.1:9000"


def test_the_sandboxs_own_addresses_are_known_on_a_shared_bind() -> None:
    lender = lender_for("0.0.0.0")
    own = callback_policy(lender.settings).own
    expected = {
        ipaddress.ip_address(info[4][0])
        for info in socket.getaddrinfo(socket.gethostname(), None)
        if not ipaddress.ip_address(info[4][0]).is_unspecified
    }
    assert expected <= own


def test_the_servers_worker_sends_with_the_policy() -> None:
    lender = lender_for("0.0.0.0")

    async def run() -> object:
        runner = scheduler.start(lender)
        try:
            return runner.sender.policy
        finally:
            await runner.stop()

    assert asyncio.run(run()) is lender.callback_policy


def test_over_http_the_refusal_is_a_400_naming_it() -> None:
    lender = lender_for("0.0.0.0")
    admin = {"authorization": "Bearer " + "x" * 20}
    with TestClient(create_app(lender=lender, background=False)) as http:
        r = http.post("/sandbox/partners", json={"callback_url": "http://10.0.0.5"}, headers=admin)
    assert r.status_code == 400
    assert r.json()["code"] == 10020 and r.json()["error"] == "callback_refused"
