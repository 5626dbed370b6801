"""`Listener`: a partner's callbacks pointed at a receiver this process runs (`CallbackSink`),
each one decrypted as it arrives and, with `forward_to`, relayed to the developer's own
handler — the same body, as received, POSTed to `forward_to` + the callback's path — whose
answer goes back to the sandbox as the acknowledgement (docs/protocol.md §6). `close()` puts
the partner's previous callback_url back. `lender-sandbox listen` is its command line.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from .client import SandboxControl
from .sink import CallbackSink, Record

__all__ = ["Forwarder", "Listener"]

JSON_TYPE = "application/json;charset=utf-8"


def _problem(status: int, message: str) -> tuple[int, str]:
    """An answer that is not an acknowledgement: the sandbox retries, and the log says why."""
    return status, json.dumps({"code": status, "message": f"lender-sandbox listen: {message}"})


class Forwarder:
    """POST each callback to `base` + its path and hand back the handler's answer; when the
    handler cannot be reached, a 502 (504 on a timeout) that says so."""

    def __init__(self, base: str, *, timeout: float = 10.0, http: httpx.Client | None = None):
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"forward to an http(s) URL, not {base!r}")
        self.base = base.rstrip("/")
        self.timeout = timeout
        self._own = http is None
        self._http = http or httpx.Client(timeout=timeout, trust_env=False)

    def url(self, path: str) -> str:
        return self.base + path

    def __call__(self, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
        url = self.url(path)
        sent = {"content-type": headers.get("content-type", JSON_TYPE)}
        try:
            r = self._http.post(url, content=raw, headers=sent)
        except httpx.TimeoutException:
            return _problem(504, f"{url} did not answer within {self.timeout:g}s")
        except httpx.TransportError as e:
            return _problem(502, f"cannot reach {url}: {type(e).__name__}: {e}")
        return r.status_code, r.text

    def close(self) -> None:
        if self._own:
            self._http.close()


class Listener:
    """`with Listener(control, "demo", forward_to="http://127.0.0.1:3000/hooks") as ln:` —
    the partner's callbacks come to `ln.url` while it is open.

    `host`/`port`: where the receiver binds (default loopback, a free port); `public_url`:
    the address the sandbox should call when it is not this machine's loopback (a tunnel, a
    VPN name). `on_record` is told of each callback once it is answered."""

    def __init__(
        self,
        control: SandboxControl,
        partner: str = "demo",
        *,
        forward_to: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        on_record: Callable[[Record], None] | None = None,
        timeout: float = 10.0,
    ):
        self.control, self.partner = control, partner
        self.forwarder = Forwarder(forward_to, timeout=timeout) if forward_to else None
        self._bind, self._public = (host, port), public_url
        self._on_record = on_record
        self.sink: CallbackSink | None = None
        self.previous: str = ""  # the partner's callback_url before
        self.paused = False

    @property
    def url(self) -> str:
        """The callback_url the partner has while listening."""
        if self.sink is None:
            raise RuntimeError("the listener is not started")
        return (self._public or self.sink.url).rstrip("/")

    def start(self) -> Listener:
        view = self.control.partner(self.partner, secrets=True)
        self.previous, self.paused = view["callback_url"], view["callbacks_paused"]
        self.sink = CallbackSink(
            view["aes_key"],
            view["aes_iv"],
            host=self._bind[0],
            port=self._bind[1],
            relay=self.forwarder,
            on_record=self._on_record,
        ).start()
        try:
            self.control.update_partner(self.partner, callback_url=self.url)
        except BaseException:
            self.sink.stop()
            raise
        return self

    def close(self) -> bool:
        """Stop receiving; put the previous callback_url back unless someone changed it in the
        meantime. True when it was put back."""
        restored = False
        try:
            if self.sink is not None:
                now = self.control.partner(self.partner)["callback_url"]
                if now == self.url:
                    self.control.update_partner(self.partner, callback_url=self.previous)
                    restored = True
        finally:
            if self.sink is not None:
                self.sink.stop()
                self.sink = None
            if self.forwarder is not None:
                self.forwarder.close()
        return restored

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
