"""What the HTTP edge answers before the lender sees a request: 404, 405, 413 (docs/protocol.md §1).

Transport problems use the HTTP status line, still with the response envelope in the body:
404 for an unknown path and 405 for a method other than POST (code 10001), 413 for a body over
`[server] max_body_bytes` (code 10013). The web layer answers them through its router and body
reader; the in-process harness (`harness.sandbox.Sandbox.serve`, the interception of the
aggregator's own HTTP client) through `refusal`. Both render them here, so the two agree.
"""

from __future__ import annotations

import json
from typing import Any

from .envelope import render
from .errors import BY_NAME, SandboxError
from .protocol import BY_PATH

Answer = tuple[int, dict[str, Any]]  # (HTTP status, response envelope)


def http_error(path: str, status: int, detail: str = "") -> Answer:
    """A refusal of the router: 404 and 405 as the protocol words them, another status with
    the router's `detail`."""
    if status == 404:
        return unknown_path(path)
    text = "every lender endpoint is POST" if status == 405 else detail
    return status, render(path, BY_NAME["bad_envelope"].code, text, {})


def unknown_path(path: str, hint: str = "") -> Answer:
    """404: no lender endpoint has this path (`hint` says more, when the caller knows more)."""
    text = f"unknown path {path}" + (f": {hint}" if hint else "")
    return 404, render(path, BY_NAME["bad_envelope"].code, text, {})


def too_large(path: str, limit: int) -> Answer:
    """413: the body is over `limit` bytes."""
    e = SandboxError("body_too_large", f"limit {limit} bytes", http_status=413)
    return e.http_status, render(path, e.code, e.message, {})


def refusal(path: str, method: str, size: int, limit: int) -> Answer | None:
    """What the edge answers to this request instead of the lender, in the server's order
    (the router, then the body reader), or None when the lender is to see it."""
    if path not in BY_PATH:
        return unknown_path(path)
    if method.upper() != "POST":
        return http_error(path, 405)
    if size > limit:
        return too_large(path, limit)
    return None


def dump(doc: dict[str, Any]) -> bytes:
    """An envelope as the server writes it: compact JSON in UTF-8 (Starlette's JSONResponse)."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
