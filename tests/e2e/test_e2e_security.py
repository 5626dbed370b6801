"""The real server over real sockets (issue 12 #3): a loopback `serve` answers only loopback
Host names (DNS rebinding), takes control writes only as JSON, refuses writes from other
origins; with an admin token, a partner's control token drives that partner only."""

from __future__ import annotations

import httpx
import pytest

from sandbox.harness.client import ControlAPIError, SandboxControl
from sandbox.harness.liveserver import LiveServer


def test_a_loopback_server_against_a_web_page_the_developer_opens(lender_sandbox_server):
    base = lender_sandbox_server.base_url
    with httpx.Client(base_url=base, trust_env=False) as http:
        assert http.get("/sandbox/health").status_code == 200
        rebound = http.get("/sandbox/partners/demo?secrets=1", headers={"host": "evil.example"})
        assert rebound.status_code == 421 and "Loan@apis" not in rebound.text
        form = http.post(
            "/sandbox/partners/demo/clock/advance",
            content=b"by=8d",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 415
        cross = http.post(
            "/sandbox/partners/demo/callbacks/pause", headers={"origin": "http://evil.example"}
        )
        assert cross.status_code == 403
        assert http.get("/sandbox/partners/demo").json()["callbacks_paused"] is False


def test_a_partners_token_over_http_drives_its_partner_only():
    admin = "admin-token-of-the-e2e-test"
    with LiveServer({"server": {"admin_token": admin}}) as server:
        with SandboxControl(server.base_url, token=admin) as api:
            team = api.create_partner(name="Team E2E")
        with SandboxControl(server.base_url, token=team["control_token"]) as own:
            assert own.advance_clock(60, partner=team["partner_token"])["events_fired"] == 0
            with pytest.raises(ControlAPIError) as refused:
                own.partner("demo", secrets=True)
            assert refused.value.http_status == 403 and refused.value.error == "forbidden"
        with SandboxControl(server.base_url) as anonymous:
            with pytest.raises(ControlAPIError) as unknown:
                anonymous.partners()
            assert unknown.value.http_status == 401
