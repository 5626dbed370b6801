"""`serve`'s start-up banner (issue 12 #6): the database URL's password never printed, and no
secret — AES keys, tokens — on a shared (non-loopback) bind."""

from __future__ import annotations

import pytest

from sandbox.services.config import load_settings, redacted_url
from sandbox.services.lender import Lender
from sandbox.store import Store
from sandbox.web.server import banner

DB = "postgresql+psycopg://sandbox:s3cret-pw@db.internal:5432/sandbox"
ADMIN = "admin-token-never-printed"


def banner_for(host: str) -> str:
    settings = load_settings(
        overrides={"server": {"host": host, "admin_token": ADMIN}, "database": {"url": DB}},
        env={},
    )
    settings.data.partners[0].control_token = "demo-control-token-never-printed"
    store = Store("sqlite://")  # the banner reads the settings, not the database
    try:
        return banner(Lender(settings, store))
    finally:
        store.dispose()


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "10.0.0.5"])
def test_the_database_password_is_never_printed(host: str) -> None:
    text = banner_for(host)
    assert "s3cret-pw" not in text
    assert "postgresql+psycopg://sandbox:***@db.internal:5432/sandbox" in text
    assert ADMIN not in text and "demo-control-token-never-printed" not in text


def test_a_loopback_bind_prints_the_demo_partners_keys() -> None:
    text = banner_for("127.0.0.1")
    assert "partner_token=demo  aes_key=Loan@apis#123456@  aes_iv=loan#654321@apis" in text


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "staging.example"])
def test_a_shared_bind_prints_no_keys(host: str) -> None:
    text = banner_for(host)
    assert "partner_token=demo" in text
    assert "Loan@apis" not in text and "loan#654321" not in text and "aes_key=" not in text
    assert "?secrets=1" in text  # where a team gets its keys instead


def test_an_unreadable_url_is_not_printed() -> None:
    assert redacted_url("not a url ://x:y@") == "(unreadable database URL)"
    assert redacted_url("sqlite:///sandbox.db") == "sqlite:///sandbox.db"
