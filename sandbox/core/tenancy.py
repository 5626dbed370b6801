"""Who may do what on the control API and the dashboard: the caller, what a route touches
(its `Scope`), and the one rule that decides (`authorize`).

A caller is the admin (the admin token; or anyone, on a loopback sandbox without an admin
token) or one partner (that partner's control token). Every control route and dashboard
action declares its scope: `PUBLIC`, `ADMIN` (it acts on every partner), or a partner named
somewhere in the request — the path, the query string, the body, a form field, or the owner
of the object it names (a callback delivery, a journal entry, a payment code). A partner's
token is accepted on its own partner's routes and refused everywhere else (docs/errors.md,
`forbidden`). Control tokens are kept only as their SHA-256 (`token_hash`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ControlError

TOKEN_PREFIX = "lsp_"  # "lender sandbox partner": a control token says what it is in a log


@dataclass(frozen=True)
class Caller:
    """Who sends a request: the admin (`partner` None) or one partner."""

    partner: str | None = None

    @property
    def admin(self) -> bool:
        return self.partner is None


ADMIN_CALLER = Caller()

Kind = Literal["public", "admin", "partner"]
Where = Literal["path", "query", "body", "form", "owner", ""]
# When a partner-scoped request names no partner: "every" — it acts on every partner (admin
# only); "own" — a partner's token fills in its own partner (lists, faults); "none" — it
# touches nothing of a partner's (the envelope tools with an explicit key).
Absent = Literal["every", "own", "none"]


@dataclass(frozen=True)
class Scope:
    """What a route or action touches, so the guard knows whose token it takes."""

    kind: Kind
    where: Where = ""
    name: str = ""  # the parameter or field naming the partner (or the object, for "owner")
    absent: Absent = "every"
    # where == "owner": the request (parsed) -> the partner owning what it names, None if none
    owner: Callable[[Any], str | None] | None = None

    def describe(self) -> str:
        """One line for the docs: who may call it."""
        if self.kind == "public":
            return "Open to everyone."
        if self.kind == "admin":
            return "Admin token only: it acts on every partner."
        if self.where == "owner":
            whose = f"the partner that owns the {self.name}"
        else:
            whose = f"the partner named by `{self.name}` ({self.where})"
        text = f"The admin token, or the control token of {whose}."
        if self.absent == "own":
            text += " Without it, a partner's token means its own partner; the admin's, every."
        elif self.absent == "none":
            text += " Without a partner, any valid token."
        return text


PUBLIC = Scope("public")
ADMIN = Scope("admin")


def partner(where: Where, name: str, *, absent: Absent = "every") -> Scope:
    """A route of the partner named by `name` in `where` (path, query, body or form)."""
    return Scope("partner", where, name, absent)


def owned(what: str, owner: Callable[[Any], str | None]) -> Scope:
    """A route of the partner that owns the object it names (`what`, e.g. "callback")."""
    return Scope("partner", "owner", what, "every", owner)


def forbidden(message: str) -> ControlError:
    return ControlError("forbidden", message, http_status=403)


def authorize(caller: Caller, scope: Scope, partner: str | None) -> None:
    """Raise `forbidden` unless `caller` may act on `partner` (None: no partner named) under
    `scope`. The admin may do everything; a partner only what is its own."""
    if scope.kind == "public" or caller.admin:
        return
    if scope.kind == "admin":
        raise forbidden(
            f"this route acts on every partner: it needs the admin token, and this is the "
            f"control token of partner {caller.partner!r}"
        )
    if partner is None:
        if scope.absent == "none":
            return
        raise forbidden(
            f"without a partner this acts on every partner (admin token only); name yours: "
            f"partner_token={caller.partner}"
        )
    if partner != caller.partner:
        raise forbidden(
            f"this is the control token of partner {caller.partner!r}: it may not act on "
            f"partner {partner!r}"
        )


# ---- control tokens ----


def new_token() -> str:
    """A partner control token: 32 random URL-safe characters after the prefix."""
    return TOKEN_PREFIX + secrets.token_urlsafe(24)


def token_hash(token: str) -> str:
    """What the store keeps of a control token (a token is random: no salt or stretching
    needed, and a hash can be looked up)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def bearer(header: str) -> str:
    """The token of an `Authorization: Bearer <token>` header ("" when there is none)."""
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
