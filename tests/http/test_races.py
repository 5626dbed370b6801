"""Races on SQLite (one process, threads): a partner's reset, its acceptance run's reset and a
global reset while that partner's traffic is in flight, with the outbox delivering and
callbacks redelivered (tests/http/race_traffic.py). The store takes one transaction at a
time, so what can still race here are the operations of several transactions (a payment
reads its code, fires due events, then pays): none may answer 5xx or 10099.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import race_traffic
from conftest import LOCAL, SUFFIX, T0, Loan, Sandbox, settings_for
from starlette.testclient import TestClient

from sandbox.services import control, payments
from sandbox.services.lender import Lender, create_lender
from sandbox.web.app import create_app


def test_resets_racing_traffic_answer_no_server_error_on_sqlite(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'races.db'}")
    lender = create_lender(settings, wall=lambda: T0)
    app = create_app(settings, lender=lender, background=False)
    try:
        with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as client:
            race = race_traffic.run([client], [lender], workers=4, orders=12)
        assert not race.failures, "\n".join(race.failures)
        assert race.done["reset"] >= 3 and race.done["/push-basic-info"] == 48, race.done
        assert race_traffic.inconsistencies(lender) == []
    finally:
        lender.store.dispose()


def test_a_payment_whose_partner_is_reset_between_its_steps_is_refused(
    sandbox: Sandbox, loan: Callable[..., Loan], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A payment reads its code, fires the due events, then pays in a transaction of its own:
    a reset landing between those (another thread) leaves no code to pay, and the payment
    says so (404 payment_rejected) instead of failing on the vanished row (a 500)."""
    code = loan("race-pay", SUFFIX["approve"]).disbursed().code()["repay_code"]
    fire = payments.process_due

    def reset_first(lender: Lender, token: str, until: float) -> int:
        control.reset(lender, token)
        return fire(lender, token, until)

    monkeypatch.setattr(payments, "process_due", reset_first)
    r = sandbox.client.post("/sandbox/payments", json={"repay_code": code})
    assert r.status_code == 404, r.text
    assert r.json()["error"] == "payment_rejected" and code in r.json()["message"]
