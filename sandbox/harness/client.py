"""Python clients: `LenderClient` for the partner API of any lender, `SandboxControl` for /sandbox.

`LenderClient` speaks the envelope of docs/protocol.md §1-2 — it encrypts the business payload
with the partner's key/IV, posts it and hands back the response with `data` decrypted when
a lender encrypts it. It needs no sandbox: point it at a real lender's base URL. The
network is injected (an `httpx.Client`, or a plain `send(path, body)` function for the
in-process harness in `sandbox.testing`), never patched.

`SandboxControl` is the one client of the sandbox-only control API (the CLI, the demo and the
server harness use it): clocks, forced transitions, payments, orders, callbacks, journal, faults,
reset, partners, the acceptance report and the long-poll wait.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx

from ..core.crypto import Codec
from ..core.envelope import decode_response

__all__ = [
    "BadResponse",
    "ControlAPIError",
    "LenderClient",
    "LenderError",
    "SandboxControl",
    "Send",
    "endpoint_path",
    "message_of",
]

# path, request body -> (HTTP status, response body). HTTP in LenderClient; a function call
# in the in-process harness (sandbox.testing), so both paths parse the same bytes.
Send = Callable[[str, bytes], tuple[int, bytes]]

JSON_TYPE = "application/json;charset=utf-8"


class LenderError(Exception):
    """The lender answered a non-zero `code` (docs/protocol.md §1): a business or protocol no."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        path: str = "",
        http_status: int = 200,
        response: dict[str, Any] | None = None,
    ):
        self.code, self.message, self.path = code, message, path
        self.http_status = http_status
        self.response = response or {}
        super().__init__(f"{path}: code {code}: {message}" if path else f"code {code}: {message}")


class BadResponse(Exception):
    """The answer is not a response envelope at all (a proxy error page, a dropped body...)."""

    def __init__(self, path: str, http_status: int, text: str):
        self.path, self.http_status, self.text = path, http_status, text
        super().__init__(f"{path}: HTTP {http_status}, not a response envelope: {text[:200]!r}")


def endpoint_path(name: str) -> str:
    """'get-loan-precheck' or '/get-loan-precheck' -> '/get-loan-precheck'."""
    name = name.strip()
    if not name or name.startswith(("http://", "https://")):
        raise ValueError(f"an endpoint name such as 'get-loan-precheck', not {name!r}")
    return "/" + name.lstrip("/")


def message_of(doc: dict[str, Any]) -> str:
    """The text of a response: docs/protocol.md §1 ruling, some endpoints say `msg`."""
    return str(doc.get("message", doc.get("msg", "")))


class LenderClient:
    """The partner API seen by an aggregator: `.call(name, payload)` and `.data(name, payload)`.

    Over HTTP by default (`http`: your own `httpx.Client`, e.g. with a `MockTransport`);
    with `send=` the envelope goes to a function instead (the in-process sandbox).
    """

    def __init__(
        self,
        base_url: str,
        partner_token: str,
        aes_key: str,
        aes_iv: str,
        *,
        http: httpx.Client | None = None,
        send: Send | None = None,
        timeout: float = 10.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.partner_token = partner_token
        self.codec = Codec(aes_key, aes_iv)
        self._http, self._own_http = http, False
        self._send = send or self._post
        self._timeout = timeout

    # ---- the envelope ----

    def encrypt(self, payload: Any) -> str:
        """`encode_data` for `payload` (PHP-compatible JSON, AES-128-CBC, base64)."""
        return self.codec.encrypt_json(payload)

    def decrypt(self, text: str) -> Any:
        """The JSON inside an `encode_data` (or an encrypted `data`)."""
        return self.codec.decrypt_json(text)

    def envelope(self, payload: Any) -> dict[str, str]:
        return {"partner_token": self.partner_token, "encode_data": self.encrypt(payload)}

    # ---- calls ----

    def call(self, name: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST `payload` to endpoint `name`; the response with `data` decrypted if it was.

        Business errors come back as a response with a non-zero `code` (see `data`)."""
        return self._exchange(name, payload)[1]

    def data(self, name: str, payload: dict[str, Any] | None = None) -> Any:
        """Like `call`, but returns `data` and raises `LenderError` when `code` is not 0."""
        status, doc = self._exchange(name, payload)
        if doc.get("code") != 0:
            raise LenderError(
                int(doc.get("code", -1)),
                message_of(doc),
                path=endpoint_path(name),
                http_status=status,
                response=doc,
            )
        return doc["data"]

    def post_raw(self, name: str, body: bytes) -> tuple[int, bytes]:
        """POST `body` as it is to endpoint `name`: (HTTP status, answer bytes), unparsed (for
        tools that judge the answer itself, e.g. `lender-sandbox check-lender`)."""
        return self._send(endpoint_path(name), body)

    def _exchange(self, name: str, payload: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        path = endpoint_path(name)
        status, raw = self._send(path, json.dumps(self.envelope(payload or {})).encode())
        doc = _parse(path, status, raw)
        doc["data"] = decode_response(doc, self.codec)
        return status, doc

    def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._http is None:
            self._http, self._own_http = httpx.Client(timeout=self._timeout), True
        r = self._http.post(self.base_url + path, content=body, headers={"content-type": JSON_TYPE})
        return r.status_code, r.content

    # ---- lifetime ----

    def close(self) -> None:
        """Close the HTTP client this object made (one handed in stays the caller's)."""
        if self._own_http and self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> LenderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LenderClient({self.base_url or 'in-process'!r}, partner={self.partner_token!r})"


def _parse(path: str, status: int, raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise BadResponse(path, status, raw.decode("utf-8", "replace")) from None
    if not isinstance(doc, dict) or "code" not in doc:
        raise BadResponse(path, status, raw.decode("utf-8", "replace"))
    return doc  # 404/405/413 still answer the envelope (docs/protocol.md §1): the code says why


# ---------------------------------------------------------------------------- control API


class ControlAPIError(Exception):
    """A /sandbox call answered HTTP 4xx/5xx: `{"code", "error", "message"}`."""

    def __init__(self, status: int, body: Any, what: str):
        self.http_status = status
        self.body = body if isinstance(body, dict) else {"message": str(body)}
        self.code = self.body.get("code")
        self.error = self.body.get("error", "")
        self.message = str(self.body.get("message", ""))
        super().__init__(f"{what}: HTTP {status} {self.error}: {self.message}")


class SandboxControl:
    """The sandbox's control API over HTTP (plain JSON under /sandbox).

    `token` is sent as `Authorization: Bearer ...` where the sandbox asks for one (it has an
    admin token, or binds a non-loopback address): the admin token, or a partner's control
    token — which drives that partner only (README "Security"). `admin_token` is its old name.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str = "",
        admin_token: str = "",
        http: httpx.Client | None = None,
        timeout: float = 30.0,
    ):
        self.base_url = base_url.rstrip("/")
        token = token or admin_token
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._own_http = http is None
        self._http = http or httpx.Client(timeout=timeout)
        self._headers = headers

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One control call; the decoded JSON, or ControlAPIError on HTTP >= 400."""
        return self._exchange(method, path, json_body, params, timeout)[0]

    def pages(self, path: str, **params: Any) -> Iterator[Any]:
        """Every item of a list route (orders, journal, callbacks, partners, fault rules),
        page after page: it follows each answer's `X-Next-Cursor` (docs: core.paging)."""
        query = dict(params)
        while True:
            body, r = self._exchange("GET", path, None, query, None)
            yield from body["rules"] if isinstance(body, dict) else body
            cursor = r.headers.get("x-next-cursor")
            if not cursor:
                return
            query["cursor"] = cursor

    def _exchange(
        self,
        method: str,
        path: str,
        json_body: Any,
        params: dict[str, Any] | None,
        timeout: float | None,
    ) -> tuple[Any, httpx.Response]:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        r = self._http.request(
            method,
            self.base_url + path,
            json=json_body,
            params=query,
            headers=self._headers,
            **extra,
        )
        body = _json_or_text(r)
        if r.status_code >= 400:
            raise ControlAPIError(r.status_code, body, f"{method} {path}")
        return body, r

    # ---- server and partners ----

    def health(self) -> dict:
        """Database, scheduler and callback backlog (status "ok", "degraded" or, with HTTP
        503 and so a ControlAPIError, "unavailable")."""
        return self.request("GET", "/sandbox/health")

    def prune_journal(
        self, max_age_days: float | None = None, max_rows_per_partner: int | None = None
    ) -> dict:
        """Apply the journal's retention now (the settings' limits, or these)."""
        body = {"max_age_days": max_age_days, "max_rows_per_partner": max_rows_per_partner}
        return self.request(
            "POST",
            "/sandbox/journal/prune",
            json_body={k: v for k, v in body.items() if v is not None},
        )

    def partners(self) -> list[dict]:
        return self.request("GET", "/sandbox/partners")

    def create_partner(self, **fields: Any) -> dict:
        """POST /sandbox/partners: credentials (token, aes_key, aes_iv) and the product list."""
        return self.request("POST", "/sandbox/partners", json_body=fields)

    def rotate_control_token(self, partner: str = "demo") -> str:
        """A new control token for `partner` (the old one stops working), answered once."""
        path = f"/sandbox/partners/{quote(partner, safe='')}/control-token"
        return str(self.request("POST", path)["control_token"])

    def partner(self, token: str = "demo", *, secrets: bool = False) -> dict:
        return self.request(
            "GET", f"/sandbox/partners/{token}", params={"secrets": "1" if secrets else None}
        )

    def update_partner(self, token: str = "demo", **fields: Any) -> dict:
        """PATCH a partner: callback_url, callbacks_paused, chaos, clock_mode, ..."""
        return self.request("PATCH", f"/sandbox/partners/{token}", json_body=fields)

    def postman_collection(self, token: str = "demo") -> dict:
        """The partner's Postman collection (v2.1; Apifox imports it)."""
        return self.request("GET", f"/sandbox/partners/{quote(token, safe='')}/postman.json")

    # ---- clocks ----

    def clock(self, partner: str = "demo") -> dict:
        return self.request("GET", f"/sandbox/partners/{partner}/clock")

    def advance_clock(self, seconds: float, partner: str = "demo") -> dict:
        """Move the clock forward; every due event on the way has fired when this returns."""
        return self.request(
            "POST", f"/sandbox/partners/{partner}/clock/advance", json_body={"seconds": seconds}
        )

    def set_clock(self, to: str, partner: str = "demo") -> dict:
        return self.request("POST", f"/sandbox/partners/{partner}/clock/set", json_body={"to": to})

    # ---- orders and payments ----

    def orders(
        self, partner: str | None = None, status: int | None = None, limit: int | None = None
    ) -> list[dict]:
        return self.request(
            "GET",
            "/sandbox/orders",
            params={"partner_token": partner, "status": status, "limit": limit},
        )

    def order(self, order_no: str, partner: str = "demo") -> dict:
        """Order, timeline, callbacks, payments, pending events."""
        return self.request("GET", f"/sandbox/orders/{order_no}", params={"partner_token": partner})

    def transition(self, order_no: str, trigger: str, partner: str = "demo", **params: Any) -> dict:
        """Force a legal trigger (approve, reject, disburse, fail_payout, cancel, ...)."""
        return self.request(
            "POST",
            f"/sandbox/orders/{order_no}/transition",
            json_body={"partner_token": partner, "trigger": trigger, **params},
        )

    def pay(self, repay_code: str, amount: int | None = None) -> dict:
        body: dict[str, Any] = {"repay_code": repay_code}
        if amount is not None:
            body["amount"] = amount
        return self.request("POST", "/sandbox/payments", json_body=body)

    def wait(
        self,
        order_no: str,
        *,
        partner: str = "demo",
        status: int | None = None,
        callback: str | None = None,
        timeout: float = 10.0,
    ) -> dict:
        """Long-poll until the order reaches `status` (and/or its callbacks are acknowledged)."""
        return self.request(
            "GET",
            f"/sandbox/orders/{order_no}/wait",
            timeout=timeout + 10,
            params={
                "partner_token": partner,
                "status": status,
                "callback": callback,
                "timeout": timeout,
            },
        )

    # ---- callbacks, journal, faults ----

    def callbacks(
        self, partner: str | None = None, order_no: str | None = None, state: str | None = None
    ) -> Any:
        """Deliveries with their decrypted bodies and every attempt."""
        return self.request(
            "GET",
            "/sandbox/callbacks",
            params={"partner_token": partner, "order_no": order_no, "state": state},
        )

    def callback(self, callback_id: int) -> dict:
        """One delivery: its decrypted body and every attempt."""
        return self.request("GET", f"/sandbox/callbacks/{int(callback_id)}")

    def redeliver(self, callback_id: int) -> Any:
        return self.request("POST", f"/sandbox/callbacks/{callback_id}/redeliver")

    def journal(
        self, partner: str | None = None, path: str | None = None, limit: int | None = None
    ) -> Any:
        """Requests the sandbox received, decrypted, newest first."""
        return self.request(
            "GET",
            "/sandbox/journal",
            params={
                "partner_token": partner,
                "limit": limit,
                "path": endpoint_path(path) if path else None,
            },
        )

    def clear_journal(self, partner: str | None = None) -> Any:
        return self.request("DELETE", "/sandbox/journal", params={"partner_token": partner})

    def journal_entry(self, entry_id: int) -> dict:
        """One journal entry (what the acceptance report's evidence links to)."""
        return self.request("GET", f"/sandbox/journal/{int(entry_id)}")

    # ---- the acceptance report (docs/conformance.md) ----

    def conformance(self, partner: str = "demo") -> dict:
        """The acceptance report of the partner's current run: summary and one entry per check."""
        return self.request("GET", f"/sandbox/partners/{quote(partner, safe='')}/conformance")

    def reset_conformance(self, partner: str = "demo") -> dict:
        """Start a new acceptance run (orders, journal and callbacks are kept)."""
        return self.request(
            "POST", f"/sandbox/partners/{quote(partner, safe='')}/conformance/reset"
        )

    # ---- faults ----

    def set_faults(self, rules: Any) -> Any:
        return self.request("PUT", "/sandbox/faults", json_body=rules)

    def faults(self) -> Any:
        return self.request("GET", "/sandbox/faults")

    def add_fault(self, rule: dict[str, Any]) -> Any:
        """Add one fault rule (the others stay)."""
        return self.request("POST", "/sandbox/faults", json_body=rule)

    def clear_faults(self) -> Any:
        return self.request("DELETE", "/sandbox/faults")

    # ---- reset ----

    def reset(self, partner: str) -> dict:
        """Wipe one partner's orders and history (its clock restarts)."""
        return self.request("POST", "/sandbox/reset", json_body={"partner_token": partner})

    def reset_all(self) -> dict:
        """Wipe every partner's orders and history and reload the fixtures (admin only)."""
        return self.request("POST", "/sandbox/reset", json_body={"all": True})

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_or_text(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return r.text
