"""Our client of the lender's partner API, on one pooled httpx.AsyncClient."""

from __future__ import annotations

import ssl
from typing import Any

import certifi
import httpx

from .envelope import Envelope

# Loading the CA bundle costs ~20 ms: once per process, not once per client.
TLS = ssl.create_default_context(cafile=certifi.where())


class LenderRefused(Exception):
    """The lender answered a non-zero code (a business refusal, or a request it could not read)."""

    def __init__(self, code: int, message: str):
        super().__init__(f"lender code {code}: {message}")
        self.code, self.message = code, message


class Lender:
    def __init__(self, base_url: str, envelope: Envelope, *, timeout: float = 10.0):
        self.envelope = envelope
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout, verify=TLS)

    async def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST the sealed payload; the answer's `data`, or LenderRefused."""
        r = await self.http.post(path, json=self.envelope.seal(payload))
        doc = r.json()
        code = int(doc.get("code", -1))
        if code != 0:  # some endpoints say `msg`, the others `message`
            raise LenderRefused(code, str(doc.get("message", doc.get("msg", ""))))
        return doc.get("data") or {}

    async def aclose(self) -> None:
        await self.http.aclose()
