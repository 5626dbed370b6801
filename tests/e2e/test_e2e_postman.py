"""`lender-sandbox postman --url`: the collection of a running server's partner, fetched over
HTTP (GET /sandbox/partners/{token}/postman.json) and written to a file."""

from __future__ import annotations

import json

from click.testing import CliRunner

from sandbox import cli
from sandbox.harness.liveserver import LiveServer


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
