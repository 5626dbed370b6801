"""Our client of the lender's partner API, on one requests.Session."""

from __future__ import annotations

from typing import Any

import requests

from .envelope import Envelope


class LenderRefused(Exception):
    """The lender answered a non-zero code (a business refusal, or a request it could not read)."""

    def __init__(self, code: int, message: str):
        super().__init__(f"lender code {code}: {message}")
        self.code, self.message = code, message


class Lender:
    def __init__(self, base_url: str, envelope: Envelope, *, timeout: float = 10.0):
        self.base_url, self.envelope, self.timeout = base_url.rstrip("/"), envelope, timeout
        self.session = requests.Session()

    def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST the sealed payload; the answer's `data`, or LenderRefused."""
        r = self.session.post(
            self.base_url + path, json=self.envelope.seal(payload), timeout=self.timeout
        )
        doc = r.json()
        code = int(doc.get("code", -1))
        if code != 0:  # some endpoints say `msg`, the others `message`
            raise LenderRefused(code, str(doc.get("message", doc.get("msg", ""))))
        return doc.get("data") or {}
