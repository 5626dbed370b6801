"""The request journal (GET/DELETE /sandbox/journal): read and clear what was received.

Every request a lender endpoint receives is kept with its decrypted payload and the answer;
`pipeline` is the only writer. This module reads and clears the rows: plain functions over a
`Lender` returning JSON-able values.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from ..core import clock as clockmod
from ..core.errors import ControlError
from ..core.inputs import INT32_MAX
from ..store import JournalEntry
from . import conformance, locks
from .lender import Lender

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def entry_view(e: JournalEntry) -> dict[str, Any]:
    """One entry as the control API shows it; times are ISO 8601 in WIB (docs/protocol.md §7)."""
    return {
        "id": e.id,
        "time": clockmod.iso(e.at),
        "virtual_time": clockmod.iso(e.virtual_at) if e.virtual_at is not None else None,
        "partner_token": e.partner_token,
        "path": e.path,
        "request": e.request,
        "request_raw": e.request_raw,
        "response": e.response,
        "http_status": e.http_status,
        "code": e.code,
        "fault": e.fault,
        "content_type": e.content_type,
    }


def _check_partner(lender: Lender, partner: str | None) -> None:
    if not partner:
        return
    with lender.store.transaction() as s:
        lender.partner_or_404(s, partner)


def normalize_path(path: str | None) -> str | None:
    """'get-order-status' and '/get-order-status' name the same endpoint."""
    if not path:
        return None
    return path if path.startswith("/") else "/" + path


def list_entries(
    lender: Lender, partner: str | None = None, path: str | None = None, limit: int = DEFAULT_LIMIT
) -> list[dict[str, Any]]:
    """The newest `limit` entries first, optionally of one partner and/or one path."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ControlError("invalid_field", f"limit must be 1-{MAX_LIMIT}")
    _check_partner(lender, partner)
    q = select(JournalEntry).order_by(JournalEntry.id.desc()).limit(limit)
    if partner:
        q = q.where(JournalEntry.partner_token == partner)
    if path := normalize_path(path):
        q = q.where(JournalEntry.path == path)
    with lender.store.transaction() as s:
        return [entry_view(e) for e in s.scalars(q)]


def get_entry(lender: Lender, entry_id: int) -> dict[str, Any]:
    """One entry (the evidence links of the acceptance report point here)."""
    with lender.store.transaction() as s:
        e = s.get(JournalEntry, entry_id) if 0 < entry_id <= INT32_MAX else None  # its column
        if e is None:
            raise ControlError("not_found", f"no journal entry with id {entry_id}", http_status=404)
        return entry_view(e)


def clear(lender: Lender, partner: str | None = None) -> dict[str, Any]:
    """Delete every entry, or one partner's; answers how many went."""
    _check_partner(lender, partner)
    q = delete(JournalEntry)
    if partner:
        q = q.where(JournalEntry.partner_token == partner)
    with lender.store.transaction() as s:
        locks.marks(lender.store, s.connection())  # settle_marks below, one at a time
        deleted = s.execute(q).rowcount  # type: ignore[attr-defined]  # a DELETE's CursorResult
        conformance.settle_marks(s)  # no acceptance run may lose the requests that come next
    return {"deleted": deleted, "partner_token": partner or None}
