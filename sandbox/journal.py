"""The request journal (design.md "Control API": GET/DELETE /sandbox/journal).

Every request a lender endpoint receives is kept with its decrypted payload and the answer
(`api.record` writes the rows; `add` writes those the web layer answers itself, e.g. a fault
that drops the connection). This module reads and clears them: plain functions over a
`Lender` returning JSON-able values, and `routes` for the web layer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from starlette.routing import BaseRoute, Route

from . import clock as clockmod
from .control import ControlError
from .lender import Lender
from .store import JournalEntry, Partner

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def entry_view(e: JournalEntry) -> dict[str, Any]:
    """One entry as the control API shows it; times are ISO 8601 in WIB (protocol.md §6)."""
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
    }


def _check_partner(lender: Lender, partner: str | None) -> None:
    if not partner:
        return
    with lender.store.transaction() as s:
        if s.get(Partner, partner) is None:
            raise ControlError("unknown_partner", f"partner_token {partner!r}", http_status=404)


def normalize_path(path: str | None) -> str | None:
    """'get-order-status' and '/get-order-status' name the same endpoint."""
    if not path:
        return None
    return path if path.startswith("/") else "/" + path


def list_entries(lender: Lender, partner: str | None = None, path: str | None = None,
                 limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
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


def clear(lender: Lender, partner: str | None = None) -> dict[str, Any]:
    """Delete every entry, or one partner's; answers how many went."""
    _check_partner(lender, partner)
    q = delete(JournalEntry)
    if partner:
        q = q.where(JournalEntry.partner_token == partner)
    with lender.store.transaction() as s:
        deleted = s.execute(q).rowcount
    return {"deleted": deleted, "partner_token": partner or None}


def add(lender: Lender, *, partner_token: str, path: str, body: bytes,
        request: dict[str, Any] | None, response: dict[str, Any] | None, http_status: int,
        code: int | None, fault: str) -> None:
    """Write an entry for an answer the web layer gave without `api.handle` (a fault).

    `http_status` 0 means no HTTP answer at all (the connection was dropped)."""
    with lender.store.transaction() as s:
        partner = s.get(Partner, partner_token) if partner_token else None
        s.add(JournalEntry(partner_token=partner_token if partner else "", path=path,
                           at=lender.wall(), virtual_at=lender.now(partner) if partner else None,
                           request_raw=body[:65536].decode("utf-8", "replace"), request=request,
                           response=response, http_status=http_status, code=code, fault=fault))


def _limit(value: str | None) -> int:
    if value in (None, ""):
        return DEFAULT_LIMIT
    if not value.isdigit():
        raise ControlError("invalid_field", f"limit must be an integer 1-{MAX_LIMIT}")
    return int(value)


def routes(lender: Lender) -> list[BaseRoute]:
    from .app import control_endpoint  # app gathers these routes, so import it lazily

    def get(r: Any) -> list[dict[str, Any]]:
        """GET /sandbox/journal?partner_token=&path=&limit= — newest first."""
        q = r.query_params
        return list_entries(lender, q.get("partner_token"), q.get("path"), _limit(q.get("limit")))

    def delete_(r: Any) -> dict[str, Any]:
        """DELETE /sandbox/journal?partner_token= — clears one partner's entries, or all."""
        return clear(lender, r.query_params.get("partner_token"))

    return [Route("/sandbox/journal", control_endpoint(get), methods=["GET"]),
            Route("/sandbox/journal", control_endpoint(delete_), methods=["DELETE"])]
