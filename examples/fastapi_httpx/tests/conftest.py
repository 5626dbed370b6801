"""Kilat wired to an in-process lender: its httpx calls to the lender's URL are served by
`lender_sandbox`, and the lender's callbacks come to Kilat's own callback route."""

import httpx
import pytest

from kilat.app import Settings, create_app

LENDER_URL = "https://api.lender.example.id/partner"  # where Kilat calls the lender


@pytest.fixture
def app(lender_sandbox):
    partner = lender_sandbox.partner  # the credentials the lender gave Kilat
    return create_app(Settings(LENDER_URL, partner.partner_token, partner.aes_key, partner.aes_iv))


@pytest.fixture
async def kilat(lender_sandbox, app):
    """Kilat's API, as its mobile app calls it."""
    lender_sandbox.callbacks.deliver_to(app, prefix="/lender-callbacks")
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://kilat.test")
    with lender_sandbox.intercept(LENDER_URL):
        async with app.router.lifespan_context(app), api:
            yield api


@pytest.fixture
def borrower(lender_sandbox):
    """`borrower("overdue")`: what a borrower types into Kilat's app. The lender picks the
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
