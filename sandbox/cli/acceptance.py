"""`conformance` (a partner's acceptance report from a running sandbox, docs/conformance.md)
and `check-lender` (the protocol checks run against any lender)."""

from __future__ import annotations

import json
import sys

import click

from .common import fail, server_options


@click.command()
@click.option(
    "--partner", default="demo", show_default=True, help="Whose acceptance run (partner token)."
)
@server_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--strict", is_flag=True, help="Untested checks fail too (exit 1 until every check passed)."
)
@click.option(
    "--reset",
    is_flag=True,
    help="Start a new acceptance run instead (orders and journal are kept).",
)
def conformance(partner, url, token, as_json, strict, reset):
    """Print a partner's acceptance report (联调验收) from a running sandbox.

    Every check of docs/conformance.md, judged from what the partner did since its run
    started: PASS, FAIL with evidence, or UNTESTED with how to test it. Exit status: 0 when
    no check fails (untested ones count only with --strict), 1 while one fails, 2 when the
    report could not be fetched.
    """
    from ..harness import conformance as acceptance
    from .common import control_client  # looked up per call: tests hand it a transport

    with control_client(url, token or "") as api:
        try:
            result = acceptance.fetch(api, partner, reset=reset)
        except acceptance.FetchError as e:
            fail(acceptance.UNREACHABLE, str(e))
    if isinstance(result, dict):  # --reset
        click.echo(
            f"new acceptance run for {result['partner_token']} since {result['started_at']} "
            f"({result['orders_kept']} orders kept)"
        )
        return
    click.echo(acceptance.render(result, as_json=as_json))
    sys.exit(acceptance.exit_status(result, strict=strict))


def _borrower_field(pattern: str, rule: str):
    """A click callback: the option's value must match `pattern` (else `rule` is the error)."""
    import re

    def check(ctx, param, value):
        if value is not None and not re.fullmatch(pattern, value):
            raise click.BadParameter(rule)
        return value

    return check


@click.command("check-lender")
@click.argument("url")
@click.option("--token", required=True, help="Your partner_token at that lender.")
@click.option("--key", required=True, help="Your AES key there (PHP string).")
@click.option("--iv", required=True, help="Your AES IV there (PHP string).")
@click.option(
    "--product-id", default="1001", show_default=True, help="One of that lender's products."
)
@click.option(
    "--flow",
    is_flag=True,
    help="Also walk a whole loan 05-18 with a test borrower: this creates a real order.",
)
@click.option(
    "--name",
    help="Test borrower's name (default: generated).",
    callback=_borrower_field(r"[A-Za-z ]{1,100}", "letters and spaces, at most 100"),
)
@click.option(
    "--mobile",
    help="Test borrower's mobile, e.g. 81234567001 (default: generated, ending in 001).",
    callback=_borrower_field(r"8\d{8,12}", "starts with 8, 9-13 digits, no leading 0 or +62"),
)
@click.option(
    "--nik",
    help="Test borrower's NIK (default: generated).",
    callback=_borrower_field(r"\d{16}", "16 digits"),
)
@click.option("--bank-code", help="Bank to bind in --flow (default: the generated borrower's).")
@click.option(
    "--bank-card",
    help="Account number to bind in --flow.",
    callback=_borrower_field(r"\d{9,16}", "9-16 digits"),
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(0.01),
    default=5.0,
    show_default=True,
    help="Seconds between polls of 13 / 12 in --flow.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0),
    default=600.0,
    show_default=True,
    help="Seconds to wait for the review, then for the payout, in --flow.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def check_lender(
    url,
    token,
    key,
    iv,
    product_id,
    flow,
    name,
    mobile,
    nik,
    bank_code,
    bank_card,
    poll_interval,
    timeout,
    as_json,
):
    """Check a lender at URL against the partner API; exit 1 on any deviation, 2 when
    nothing answers.

    Without --flow nothing is created: the envelope, 02-04, 07 and the shape of error
    answers. With --flow and a test borrower, a whole loan (push, review, bind, contract,
    confirm, payout, plan, payment code, extension queries). Works against any lender that
    claims to implement the API, the sandbox included.
    """
    from datetime import datetime

    import httpx

    from ..core.clock import WIB
    from ..harness.check_lender import Borrower, Unreachable
    from ..harness.check_lender import check_lender as run_checks
    from ..harness.client import LenderClient

    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(
            "an http(s) base URL, e.g. http://127.0.0.1:8000", param_hint="URL"
        )
    today = datetime.now(WIB).date()
    borrower = Borrower.make(
        today=today, name=name, mobile=mobile, nik=nik, bank_code=bank_code, bank_card=bank_card
    )
    with httpx.Client(timeout=30, trust_env=False) as http:
        client = LenderClient(url, token, key, iv, http=http)
        try:
            result = run_checks(
                client,
                today=today,
                flow=flow,
                product_id=product_id,
                borrower=borrower,
                poll_interval=poll_interval,
                timeout=timeout,
            )
        except Unreachable as e:
            fail(2, str(e))
    text = json.dumps(result.as_json(), indent=2, ensure_ascii=False) if as_json else result.text()
    click.echo(text)
    sys.exit(1 if result.deviations else 0)
