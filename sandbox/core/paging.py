"""Cursor pagination of the control API's lists: `limit`, an opaque `cursor`, the next link.

Every list route (GET /sandbox/orders, /journal, /callbacks, /partners, /faults) takes
`limit` (1-`MAX_LIMIT`) and `cursor`, and answers its usual JSON with the next page named in
headers: `Link: </sandbox/orders?...&cursor=...>; rel="next"` (RFC 8288) and
`X-Next-Cursor`, both absent on the last page. Headers rather than an envelope, so the
answers keep their shape (a list stays a list). Keyset paging: a cursor is the sort key of
the last row shown, so a page costs one index range scan however deep it is, and rows added
meanwhile never shift a page. The cursor names its list (`kind`), so one list's cursor is
refused by another.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .errors import ControlError

MAX_LIMIT = 1000
MAX_CURSOR = 200  # characters: a cursor is a few ids


@dataclass(frozen=True)
class Page:
    """One page of a list: the JSON body as the route always answered it, and the cursor
    of the next page (None: this is the last)."""

    body: Any
    next_cursor: str | None = None


def encode(kind: str, *key: Any) -> str:
    """The opaque cursor of a list `kind` after the row whose sort key is `key`."""
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(kind: str, cursor: str, types: Sequence[type]) -> tuple[Any, ...]:
    """The sort key inside `cursor`, or a 400 when it is not a cursor of list `kind`."""
    bad = ControlError(
        "invalid_field", f"cursor {cursor[:40]!r} is not a cursor this list handed out"
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(doc, list) or len(doc) != len(types) + 1 or doc[0] != kind:
        raise bad
    key = tuple(doc[1:])
    for value, tp in zip(key, types, strict=True):
        ok = isinstance(value, tp) and not isinstance(value, bool)
        if not ok and not (tp is float and isinstance(value, int) and not isinstance(value, bool)):
            raise bad
    if any(isinstance(v, int) and not -(2**63) < v < 2**63 for v in key):
        raise bad
    return key


def split(rows: Sequence[Any], limit: int) -> tuple[list[Any], bool]:
    """Rows fetched with `limit + 1`: (the page, whether another page follows)."""
    return list(rows[:limit]), len(rows) > limit


def next_link(path: str, query: Mapping[str, str], cursor: str) -> str:
    """The `Link` header value of the next page: this request's query with the new cursor."""
    params = {k: v for k, v in query.items() if k != "cursor"}
    params["cursor"] = cursor
    return f'<{path}?{urlencode(params)}>; rel="next"'


def headers(path: str, query: Mapping[str, str], page: Page) -> dict[str, str]:
    if page.next_cursor is None:
        return {}
    return {
        "Link": next_link(path, query, page.next_cursor),
        "X-Next-Cursor": page.next_cursor,
    }
