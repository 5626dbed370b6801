"""Partner control credentials: issued once, kept as a hash, rotated; who a bearer token
belongs to; and which partner owns an object a control route names by its id.

A partner's control token (core.tenancy) lets a team drive its own partner — its clock,
orders, callbacks, journal, faults, reset — and nothing of anyone else's. It is answered once,
when the partner is created (`POST /sandbox/partners`) or its token rotated; the store keeps
only its SHA-256. Fixture partners get theirs from `control_token` in partners.toml
(`Lender.seed`), or by a rotation with the admin token.
"""

from __future__ import annotations

import hmac
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ..core.inputs import INT32_MAX
from ..core.tenancy import ADMIN_CALLER, Caller, new_token, token_hash
from ..store import Callback, FaultRule, JournalEntry, Partner, PartnerCredential, RepayCode
from .lender import Lender

BIGINT = INT32_MAX + 1  # ids beyond the id columns' range (32-bit on PostgreSQL) name nothing


def save(s: Session, partner: str, token: str, wall: float) -> None:
    """Make `token` the partner's control token (the one before stops working)."""
    row = s.get(PartnerCredential, partner)
    if row is None:
        s.add(
            PartnerCredential(partner_token=partner, token_hash=token_hash(token), created_at=wall)
        )
    else:
        row.token_hash, row.created_at = token_hash(token), wall
    s.flush()  # a token in use by another partner fails here, inside the caller's transaction


def issue(lender: Lender, s: Session, partner: str) -> str:
    """A new control token for `partner`, in the caller's transaction; the token is returned
    once and never stored."""
    token = new_token()
    save(s, partner, token, lender.wall())
    return token


def rotate(lender: Lender, partner: str) -> dict:
    """POST /sandbox/partners/{token}/control-token: a new token; the old one stops working."""
    with lender.store.transaction() as s:
        lender.partner_or_404(s, partner, lock=True)  # two rotations at once take turns
        return {"partner_token": partner, "control_token": issue(lender, s, partner)}


def caller_of(lender: Lender, token: str) -> Caller | None:
    """Who `token` is: the admin (the admin token), a partner (its control token, while the
    partner exists), or None (nobody)."""
    admin = lender.settings.server.admin_token
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return ADMIN_CALLER
    if len(token) > 200:  # no control token is this long: no lookup
        return None
    with lender.store.transaction() as s:
        found = s.execute(
            select(PartnerCredential.partner_token)
            .join(Partner, Partner.partner_token == PartnerCredential.partner_token)
            .where(PartnerCredential.token_hash == token_hash(token))
        ).scalar()
    return Caller(found) if found is not None else None


def fingerprint(lender: Lender, partner: str) -> str | None:
    """The stored hash of a partner's control token (a dashboard session remembers it, so a
    rotation ends the sessions opened with the old token)."""
    with lender.store.transaction() as s:
        row = s.get(PartnerCredential, partner)
        return row.token_hash if row is not None else None


# ---- which partner owns what a route names ----


def _owner(lender: Lender, query: Select[Any]) -> str | None:
    with lender.store.transaction() as s:
        return s.execute(query).scalar()


def owner_of_callback(lender: Lender, callback_id: int) -> str | None:
    if not 0 < callback_id < BIGINT:
        return None
    return _owner(lender, select(Callback.partner_token).where(Callback.id == callback_id))


def owner_of_entry(lender: Lender, entry_id: int) -> str | None:
    if not 0 < entry_id < BIGINT:
        return None
    return _owner(lender, select(JournalEntry.partner_token).where(JournalEntry.id == entry_id))


def owner_of_code(lender: Lender, repay_code: object) -> str | None:
    if not isinstance(repay_code, str):
        return None
    return _owner(lender, select(RepayCode.partner_token).where(RepayCode.code == repay_code))


def owner_of_rule(lender: Lender, rule_id: int) -> str | None:
    """A fault rule's partner ("" for a rule of every partner: only the admin's)."""
    if not 0 < rule_id < BIGINT:
        return None
    return _owner(lender, select(FaultRule.partner_token).where(FaultRule.id == rule_id))
