"""Who uses the dashboard: its session (a signed cookie), the login and logout forms, and the
CSRF token every dashboard form carries.

On a loopback sandbox without an admin token the dashboard is open, as the control API is:
whoever opens it acts as the admin. Anywhere else it asks for a token — the admin token or a
partner's control token — and shows only what that token may see (core.tenancy); a request
may also send `Authorization: Bearer <token>` (scripts). The session is a cookie signed with
itsdangerous (the library Starlette's own sessions use): who logged in, the fingerprint of
the token they logged in with (a rotated token ends the session) and a random CSRF token.
Its key derives from the admin token, so every process of a shared instance reads the same
cookies; an open sandbox signs with a key of its own process. Every form posts the CSRF token
back (`check_csrf`); a form of another site cannot know it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from ..core.errors import ControlError
from ..core.settings import Settings
from ..core.tenancy import ADMIN_CALLER, Caller, bearer, token_hash
from ..services import credentials
from ..services.lender import Lender
from .guard import open_access

COOKIE = "lender_sandbox_session"
MAX_AGE = 12 * 3600  # a working day; then the login form again
Session = dict[str, Any]


class LoginNeeded(Exception):
    """No one is logged in: the page answers with the login form (or a redirect to it)."""


def _admin_fingerprint(settings: Settings) -> str:
    return token_hash(settings.server.admin_token)[:16]


class Sessions:
    def __init__(self, lender: Lender):
        self.lender = lender
        settings = lender.settings
        admin = settings.server.admin_token
        key = (
            hashlib.sha256(b"lender-sandbox dashboard session\0" + admin.encode()).hexdigest()
            if admin
            else secrets.token_hex(32)
        )
        self.signer = URLSafeTimedSerializer(key, salt="dashboard-session")
        self.open = open_access(settings)
        self.secure = settings.server.public_url.startswith("https://")

    # ---- the cookie ----

    def read(self, request: Request) -> Session:
        raw = request.cookies.get(COOKIE, "")
        try:
            data = self.signer.loads(raw, max_age=MAX_AGE) if raw else {}
        except BadSignature:  # expired, tampered, or signed by another key
            return {}
        return data if isinstance(data, dict) else {}

    def ensure(self, request: Request) -> tuple[Session, bool]:
        """The request's session, or a new one (with its CSRF token); True when new."""
        session = self.read(request)
        if isinstance(session.get("csrf"), str):
            return session, False
        return {"csrf": secrets.token_urlsafe(24)}, True

    def write(self, response: Response, session: Session) -> Response:
        response.set_cookie(
            COOKIE,
            self.signer.dumps(session),
            max_age=MAX_AGE,
            path="/dashboard",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )
        return response

    # ---- who it is ----

    def caller(self, request: Request) -> Caller:
        """Who uses the dashboard (runs in the thread pool: a partner session is checked
        against its stored token). LoginNeeded when no one is; ControlError 401 for a bad
        bearer token."""
        token = bearer(request.headers.get("authorization", ""))
        if token:
            found = credentials.caller_of(self.lender, token)
            if found is None:
                raise ControlError(
                    "unauthorized", "this token is not the admin token nor a partner's", 401
                )
            return found
        if self.open:
            return ADMIN_CALLER
        return self._logged_in(self.read(request))

    def _logged_in(self, session: Session) -> Caller:
        fp = session.get("fp")
        if session.get("who") == "admin" and fp == _admin_fingerprint(self.lender.settings):
            return ADMIN_CALLER
        partner = session.get("partner")
        if session.get("who") == "partner" and isinstance(partner, str) and isinstance(fp, str):
            stored = credentials.fingerprint(self.lender, partner)
            if stored is not None and hmac.compare_digest(stored[:16].encode(), fp.encode()):
                return Caller(partner)
        raise LoginNeeded()

    def log_in(self, session: Session, token: str) -> Session | None:
        """The session after logging in with `token` (None: no such token). A new CSRF token:
        one seen before the login is not one of the logged-in session."""
        who = credentials.caller_of(self.lender, token)
        if who is None:
            return None
        fresh: Session = {"csrf": secrets.token_urlsafe(24), "fp": token_hash(token)[:16]}
        if who.admin:
            return {**fresh, "who": "admin"}
        return {**fresh, "who": "partner", "partner": who.partner}


def check_csrf(session: Session, form: dict[str, str]) -> None:
    """The form's CSRF token must be its session's (ControlError 403 otherwise)."""
    expected, given = session.get("csrf"), form.get("csrf", "")
    if not isinstance(expected, str) or not hmac.compare_digest(
        expected.encode(), given.encode("utf-8", "surrogatepass")
    ):
        raise ControlError(
            "forbidden",
            "the form's security token is missing or out of date (reload the page and send "
            "it again)",
            http_status=403,
        )


def login_url(target: str) -> str:
    return "/dashboard/login?next=" + quote(target, safe="")
