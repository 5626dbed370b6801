"""`lender-sandbox postman --url`: the collection of a running server's partner, fetched over
HTTP (GET /sandbox/partners/{token}/postman.json) and written to a file."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from sandbox import cli
from sandbox.harness.client import SandboxControl
from sandbox.harness.liveserver import LiveServer

ROOT = Path(__file__).resolve().parents[2]


def test_cli_fetches_a_running_servers_collection(tmp_path):
    target = tmp_path / "collection.json"
    with LiveServer() as server:
        made = CliRunner().invoke(
            cli.main, ["postman", "--url", server.base_url, "--output", str(target)]
        )
        unknown = CliRunner().invoke(
            cli.main, ["postman", "--url", server.base_url, "--partner", "nobody", "-o", "-"]
        )
    assert made.exit_code == 0, made.output
    variables = {v["key"]: v["value"] for v in json.loads(target.read_text("utf-8"))["variable"]}
    assert variables["base_url"] == server.base_url and variables["partner_token"] == "demo"
    assert unknown.exit_code == 1
    assert "HTTP 404" in unknown.output and "unknown_partner" in unknown.output


def test_newman_plays_the_whole_loan_with_a_partners_control_token(tmp_path):
    """A shared-style sandbox (an admin token: every control route asks for a token): the
    team's collection, run by newman with only the team's control token in its environment."""
    newman = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "newman"
    if not newman.exists():
        missing = "newman is not in .ci/node: npm install --no-save --prefix .ci/node newman@6"
        if os.environ.get("LENDER_SANDBOX_NODE_TESTS") == "required":
            pytest.fail(missing)
        pytest.skip(missing)
    admin = "admin-token-of-the-newman-test"
    with LiveServer({"server": {"admin_token": admin}}) as server:
        api = SandboxControl(server.base_url, token=admin)
        team = api.create_partner(name="Team Newman")
        own = SandboxControl(server.base_url, token=team["control_token"])
        target = tmp_path / "collection.json"
        target.write_text(json.dumps(own.postman_collection(team["partner_token"])), "utf-8")
        run = [str(newman), "run", str(target), "--folder", "Whole loan", "--color", "off"]
        refused = subprocess.run(run, capture_output=True, text=True, timeout=120)
        done = subprocess.run(
            [*run, "--env-var", f"control_token={team['control_token']}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        order = own.orders(team["partner_token"])[0]
        api.close()
        own.close()
    assert refused.returncode != 0 and "401" in refused.stdout  # the sandbox steps need it
    assert done.returncode == 0, done.stdout[-3000:]
    assert order["status"] == 200  # the run's order, settled
