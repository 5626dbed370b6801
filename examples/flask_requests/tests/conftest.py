"""Pinjam wired to an in-process lender: pytest.ini routes its requests calls to the lender's
URL to `lender_sandbox`, and the lender's callbacks come to Pinjam's own callback route."""

import pytest

from pinjam.app import create_app

LENDER_URL = "https://api.lender.example.id/v1"  # as in pytest.ini's lender_sandbox_intercept


@pytest.fixture
def app(lender_sandbox):
    partner = lender_sandbox.partner  # the credentials the lender gave Pinjam
    app = create_app(
        {
            "LENDER_URL": LENDER_URL,
            "PARTNER_TOKEN": partner.partner_token,
            "AES_KEY": partner.aes_key,
            "AES_IV": partner.aes_iv,
        }
    )
    lender_sandbox.callbacks.deliver_to(app, prefix="/lender/callbacks")
    return app


@pytest.fixture
def pinjam(app):
    """Pinjam's API, as its mobile app calls it."""
    return app.test_client()


@pytest.fixture
def borrower(lender_sandbox):
    """`borrower("overdue")`: what a borrower types into Pinjam's app. The lender picks the
    outcome from the mobile number's last three digits (its scenarios)."""

    def make(scenario: str) -> dict:
        p = lender_sandbox.sample_order(scenario=scenario).person
        return {
            "name": p.name,
            "mobile": p.mobile,
            "nik": p.nik,
            "amount": 1_000_000,
            "term": 14,
            "birthday": p.birth_date.isoformat(),
            "sex": p.sex,
            "religion": p.religion,
            "education": p.education,
            "marital_status": p.marital_status,
            "month_income": int(p.month_income),
            "employer": p.company,
            "province": p.province,
            "city": p.city,
            "district": p.district,
            "contacts": [
                {"name": c.emergs_name, "phone": c.emergs_phone, "relation": c.emergs_relation}
                for c in p.emergs
            ],
        }

    return make
