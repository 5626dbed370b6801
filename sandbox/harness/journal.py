"""The journal as a test reads it: every request the sandbox received, decrypted, with its
answer (`Journal.entries`, `find`, `last`), from an in-process sandbox or a server's control API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .client import endpoint_path


@dataclass(frozen=True)
class JournalRecord:
    """One request the sandbox received, with its decrypted payload and the answer."""

    id: int
    path: str
    partner_token: str
    request: dict[str, Any] | None
    response: dict[str, Any] | None
    code: int | None
    http_status: int
    virtual_time: datetime | None
    fault: str = ""

    @classmethod
    def from_view(cls, v: dict[str, Any]) -> JournalRecord:
        """From the control API's entry (journal.entry_view)."""
        at = datetime.fromisoformat(v["virtual_time"]) if v.get("virtual_time") else None
        return cls(
            v["id"],
            v["path"],
            v["partner_token"],
            v.get("request"),
            v.get("response"),
            v.get("code"),
            v.get("http_status", 200),
            at,
            v.get("fault") or "",
        )

    def get(self, dotted: str, default: Any = None) -> Any:
        """A field of the decrypted request: `record.get("order_info.order_no")`."""
        return _dig(self.request, dotted, default)


_MISSING = object()


def _dig(doc: Any, dotted: str, default: Any = None) -> Any:
    for part in dotted.split("."):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdecimal() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return default
    return doc


def _matches(record: JournalRecord, fields: dict[str, Any]) -> bool:
    return all(
        _dig(record.request, key.replace("__", "."), _MISSING) == value
        for key, value in fields.items()
    )


# (path, partner) -> journal entries as the control API shows them, newest first
JournalSource = Callable[[str | None, str | None], list[dict[str, Any]]]


class Journal:
    """The requests a sandbox received (what `pipeline.handle` journals), oldest first."""

    def __init__(self, source: JournalSource, clear: Callable[[str | None], Any]):
        self._source, self._clear = source, clear

    def entries(self, path: str | None = None, partner: str | None = None) -> list[JournalRecord]:
        """Every request (the newest 1000), or those to `path` ("push-basic-info") and/or
        of `partner`."""
        views = self._source(endpoint_path(path) if path else None, partner)
        return [JournalRecord.from_view(v) for v in reversed(views)]

    def find(
        self, path: str | None = None, *, partner: str | None = None, **fields: Any
    ) -> list[JournalRecord]:
        """Requests whose decrypted fields equal `fields`; nested fields by dotted path
        (`**{"order_info.order_no": "X"}`) or double underscore (`order_info__order_no="X"`)."""
        return [r for r in self.entries(path, partner) if _matches(r, fields)]

    def last(
        self, path: str | None = None, *, partner: str | None = None, **fields: Any
    ) -> JournalRecord:
        """The latest matching request; LookupError when there is none."""
        found = self.find(path, partner=partner, **fields)
        if not found:
            where = f" to {endpoint_path(path)}" if path else ""
            raise LookupError(f"no request{where} matching {fields} in the journal")
        return found[-1]

    def clear(self, partner: str | None = None) -> None:
        self._clear(partner)
