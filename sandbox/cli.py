"""The `lender-sandbox` command: envelope encrypt/decrypt, the server, a running server's clocks,
its acceptance report, and checking any lender against the partner API."""

from __future__ import annotations

import json
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import quote

import click

if TYPE_CHECKING:
    from .harness.client import SandboxControl

from .core.crypto import Codec, NotJsonError, decrypt, loads_json
from .services.config import ConfigError, load_settings, resolve_config_path

SPEC_KEY = "Loan@apis#123456@"  # the partner spec's example pair, which is also the demo partner's
SPEC_IV = "loan#654321@apis"
DEFAULT_URL = "http://127.0.0.1:8000"
REPO_ROOT = Path(__file__).resolve().parent.parent


def _version() -> str:
    try:
        return metadata.version("lender-sandbox")
    except metadata.PackageNotFoundError:  # running from a checkout that was never pip-installed
        try:
            return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text("utf-8"))["project"][
                "version"
            ]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="lender-sandbox")
def main() -> None:
    """Lender Sandbox: a stateful mock lender for the partner lending API."""


# --- key/IV resolution ------------------------------------------------------------------


def _config_path(given: str | None) -> Path:
    """--config, else ./config.toml, else the repository's config (same rule as the server)."""
    return Path(resolve_config_path(given))


def _load_partners(config: str | None) -> list:
    """Partner records (.partner_token, .aes_key, .aes_iv) from the server's settings loader."""
    try:
        return list(load_settings(_config_path(config)).partners)
    except ConfigError as e:  # one readable line instead of a trace
        raise click.ClickException(f"cannot read the configuration: {e}") from None


def _codec(key: str | None, iv: str | None, partner: str | None, config: str | None) -> Codec:
    if partner is not None:
        if key is not None or iv is not None:
            raise click.UsageError("give either --partner or --key/--iv, not both")
        for p in _load_partners(config):
            if p.partner_token == partner:
                return Codec(p.aes_key, p.aes_iv)
        raise click.BadParameter(
            f"no partner with token {partner!r} in the configuration", param_hint="--partner"
        )
    if (key is None) != (iv is None):
        raise click.UsageError(
            "give both --key and --iv (or --partner, or neither for the spec's demo pair)"
        )
    return Codec(SPEC_KEY, SPEC_IV) if key is None or iv is None else Codec(key, iv)


def _codec_options(f):
    f = click.option(
        "--config",
        type=click.Path(dir_okay=False),
        help="Config for --partner (default: ./config.toml, else the repository's).",
    )(f)
    f = click.option(
        "--partner", metavar="TOKEN", help="Use this partner's key and IV from the configuration."
    )(f)
    f = click.option(
        "--iv", help="AES IV as the PHP string (NUL-padded/cut to 16 bytes like PHP)."
    )(f)
    f = click.option(
        "--key", help="AES key as the PHP string (NUL-padded/cut to 16 bytes like PHP)."
    )(f)
    return f


def _read_stdin(keep_newline: bool = False) -> bytes:
    data = sys.stdin.buffer.read()  # bytes: the plaintext is encrypted exactly as given
    if keep_newline or not data.endswith(b"\n"):
        return data
    return data[:-1]  # the one newline `echo` and heredocs add


# --- encrypt / decrypt ------------------------------------------------------------------


@main.command()
@_codec_options
@click.option(
    "--keep-newline", is_flag=True, help="Encrypt stdin exactly, trailing newline included."
)
def encrypt(key, iv, partner, config, keep_newline):
    """Encrypt stdin like PHP openssl_encrypt(..., 'AES-128-CBC', key, 0, iv); print the base64.

    One trailing "\\n" is stripped from stdin first (so `echo '{...}' | lender-sandbox encrypt`
    encrypts just the JSON); pass --keep-newline to encrypt the bytes exactly.
    Without --key/--iv/--partner the spec's demo pair is used.
    """
    codec = _codec(key, iv, partner, config)
    click.echo(codec.encrypt_bytes(_read_stdin(keep_newline)))


@main.command("decrypt")
@_codec_options
@click.option("--pretty", is_flag=True, help="Pretty-print the JSON.")
@click.option("--raw", is_flag=True, help="Print whatever bytes came out as hex, JSON or not.")
def decrypt_cmd(key, iv, partner, config, pretty, raw):
    """Decrypt base64 on stdin like PHP openssl_decrypt and print the plaintext.

    Exit 1 where PHP would return false (nothing on stdout). When the result is not UTF-8
    JSON (nearly always a wrong key or IV), print exactly the bytes PHP returns, then the
    diagnosis on stderr, and exit 2: with a wrong IV only the first 16 bytes are garbled.
    """
    codec = _codec(key, iv, partner, config)
    plain = decrypt(_read_stdin(), codec.key, codec.iv)
    if plain is None:
        _fail(
            1,
            "cannot decrypt: PHP's openssl_decrypt would return false "
            "(wrong key/IV, or the input is not the base64 of AES-128-CBC output)",
        )
    if raw:
        click.echo(plain.hex())
        return
    try:
        obj = loads_json(plain)
    except NotJsonError as e:
        # What PHP's openssl_decrypt returns, byte for byte (a newline after it, as for JSON):
        # the readable tail of a wrong-IV result is the clue.
        click.echo(plain)
        hint = "\nonly the first 16 bytes are garbled: most likely the IV" if e.iv_suspect else ""
        _fail(
            2,
            "decrypted, but the result is not UTF-8 JSON: the key or IV is probably wrong"
            f"{hint}\n{e.preview} (--raw prints them all as hex)",
        )
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False) if pretty else plain.decode("utf-8"))


def _fail(code: int, message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


# --- serve ------------------------------------------------------------------------------


@main.command()
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    help="Default: ./config.toml, else the repository's.",
)
@click.option("--host", default=None, help="Bind address (default: [server] host in the config).")
@click.option("--port", type=int, default=None, help="Port (default: [server] port in the config).")
def serve(config, host, port):
    """Run the sandbox server."""
    from .web.server import run_server  # imported here so encrypt/decrypt stay light

    run_server(_config_path(config), host=host, port=port)


# --- clock (talks to a running server) --------------------------------------------------


def _server_options(f):
    f = click.option(
        "--admin-token",
        envvar="LENDER_SANDBOX_ADMIN_TOKEN",
        default=None,
        help="Sent as `Authorization: Bearer ...` (env LENDER_SANDBOX_ADMIN_TOKEN).",
    )(f)
    f = click.option(
        "--partner", default="demo", show_default=True, help="Whose clock (partner token)."
    )(f)
    f = click.option(
        "--url",
        envvar="LENDER_SANDBOX_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="The running sandbox (env LENDER_SANDBOX_URL).",
    )(f)
    return f


@main.group()
def clock():
    """Show, advance or set a partner's virtual clock on a running sandbox."""


@clock.command("show")
@_server_options
def clock_show(url, partner, admin_token):
    """Print the partner's clock."""
    _clock_call(url, partner, admin_token, "GET", "")


@clock.command("advance")
@click.argument("by")
@_server_options
def clock_advance(by, url, partner, admin_token):
    """Move the clock forward BY: 8d, 2h, 90m, 30s, 1h30m or plain seconds."""
    from .core.clock import ClockError, parse_duration

    try:
        parse_duration(by)  # checked here too so a typo fails before any request
    except ClockError as e:
        raise click.BadParameter(str(e), param_hint="BY") from None
    _clock_call(url, partner, admin_token, "POST", "/advance", {"by": by})


@clock.command("set")
@click.argument("iso", metavar="ISO")
@_server_options
def clock_set(iso, url, partner, admin_token):
    """Set the clock to ISO (e.g. 2026-12-01T09:00:00+07:00; no zone = WIB); forward only."""
    from .core.clock import ClockError, parse_instant

    try:
        parse_instant(iso)
    except ClockError as e:
        raise click.BadParameter(str(e), param_hint="ISO") from None
    _clock_call(url, partner, admin_token, "POST", "/set", {"to": iso})


def control_client(url: str, admin_token: str = "") -> SandboxControl:
    """The control-API client every command that talks to a running sandbox uses."""
    from .harness.client import SandboxControl

    return SandboxControl(url, admin_token=admin_token, timeout=10)


def _clock_call(
    base: str, partner: str, token: str | None, method: str, suffix: str, body: dict | None = None
) -> None:
    import httpx  # only the commands that talk to a server need it

    from .harness.client import ControlAPIError

    path = f"/sandbox/partners/{quote(partner, safe='')}/clock{suffix}"
    with control_client(base, token or "") as api:
        try:
            answer = api.request(method, path, json_body=body)
        except httpx.TransportError:
            _fail(1, f"no sandbox answers at {api.base_url}: start one with `lender-sandbox serve`")
        except ControlAPIError as e:
            shown = json.dumps(e.body, indent=2, ensure_ascii=False)
            _fail(1, f"HTTP {e.http_status} from {api.base_url}{path}\n{shown}")
    click.echo(json.dumps(answer, indent=2, ensure_ascii=False))


# --- postman ----------------------------------------------------------------------------


@main.command()
@click.option("--partner", default="demo", show_default=True, help="Whose collection.")
@click.option(
    "--url",
    default=None,
    help="A running sandbox: its collection for the partner (GET /sandbox/partners/"
    "TOKEN/postman.json). Default: built here from the configuration's partner.",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    help="Without --url: the configuration (default: ./config.toml, else the packaged one).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    help="Where to write it ('-' for stdout). Default: "
    "lender-sandbox-TOKEN.postman_collection.json.",
)
@click.option(
    "--admin-token",
    envvar="LENDER_SANDBOX_ADMIN_TOKEN",
    default=None,
    help="With --url: sent as `Authorization: Bearer ...` (env LENDER_SANDBOX_ADMIN_TOKEN).",
)
def postman(partner, url, config, output, admin_token):
    """Write a Postman collection (v2.1; Apifox imports it) for a partner.

    Every endpoint 02-18 with an example payload, a whole loan in order, and scripts that
    encrypt the plain payloads like PHP. Run the loan with
    `newman run FILE --folder "Whole loan"` against the sandbox.
    """
    doc = (
        _remote_collection(url, partner, admin_token) if url else _local_collection(config, partner)
    )
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    target = output or f"lender-sandbox-{partner}.postman_collection.json"
    if target == "-":
        click.echo(text, nl=False)
        return
    Path(target).write_text(text, encoding="utf-8")
    click.echo(f"wrote {target}: import it into Postman or Apifox, or run it with newman", err=True)


def _remote_collection(url: str, partner: str, token: str | None) -> dict:
    import httpx

    from .harness.client import ControlAPIError

    with control_client(url, token or "") as api:
        try:
            return api.postman_collection(partner)
        except httpx.TransportError:
            _fail(1, f"no sandbox answers at {api.base_url}: start one with `lender-sandbox serve`")
        except ControlAPIError as e:
            _fail(1, f"{e}\n{json.dumps(e.body, indent=2, ensure_ascii=False)}")


def _local_collection(config: str | None, partner: str) -> dict:
    from datetime import datetime

    from .core.clock import WIB
    from .services.postman import PostmanError, config_collection

    try:
        settings = load_settings(_config_path(config))
    except ConfigError as e:
        raise click.ClickException(f"cannot read the configuration: {e}") from None
    try:
        return config_collection(settings, partner, datetime.now(WIB).date())
    except KeyError:
        raise click.BadParameter(
            f"no partner with token {partner!r} in the configuration "
            "(a partner created on a server: pass --url)",
            param_hint="--partner",
        ) from None
    except PostmanError as e:
        raise click.ClickException(str(e)) from None


# --- the acceptance report (docs/conformance.md) -----------------------------------------


@main.command()
@click.option(
    "--partner", default="demo", show_default=True, help="Whose acceptance run (partner token)."
)
@click.option(
    "--url",
    envvar="LENDER_SANDBOX_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The running sandbox (env LENDER_SANDBOX_URL).",
)
@click.option(
    "--admin-token",
    envvar="LENDER_SANDBOX_ADMIN_TOKEN",
    default=None,
    help="Sent as `Authorization: Bearer ...` (env LENDER_SANDBOX_ADMIN_TOKEN).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--strict", is_flag=True, help="Untested checks fail too (exit 1 until every check passed)."
)
@click.option(
    "--reset",
    is_flag=True,
    help="Start a new acceptance run instead (orders and journal are kept).",
)
def conformance(partner, url, admin_token, as_json, strict, reset):
    """Print a partner's acceptance report (联调验收) from a running sandbox.

    Every check of docs/conformance.md, judged from what the partner did since its run
    started: PASS, FAIL with evidence, or UNTESTED with how to test it. Exit status: 0 when
    no check fails (untested ones count only with --strict), 1 while one fails, 2 when the
    report could not be fetched.
    """
    from .harness import conformance as acceptance

    with control_client(url, admin_token or "") as api:
        try:
            result = acceptance.fetch(api, partner, reset=reset)
        except acceptance.FetchError as e:
            _fail(acceptance.UNREACHABLE, str(e))
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


@main.command("check-lender")
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

    from .core.clock import WIB
    from .harness.check_lender import Borrower, Unreachable
    from .harness.check_lender import check_lender as run_checks
    from .harness.client import LenderClient

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
            _fail(2, str(e))
    text = json.dumps(result.as_json(), indent=2, ensure_ascii=False) if as_json else result.text()
    click.echo(text)
    sys.exit(1 if result.deviations else 0)


# --- demo -------------------------------------------------------------------------------


@main.command()
@click.option(
    "--url", default=None, help="A running sandbox. Default: a fresh in-process one (manual clock)."
)
@click.option("--partner", default="demo", show_default=True, help="Partner token.")
@click.option("--key", help="AES key (default: the partner's, from the control API).")
@click.option("--iv", help="AES IV (default: the partner's, from the control API).")
@click.option(
    "--admin-token",
    envvar="LENDER_SANDBOX_ADMIN_TOKEN",
    default=None,
    help="Sent as `Authorization: Bearer ...` (env LENDER_SANDBOX_ADMIN_TOKEN).",
)
@click.option("--pretty", is_flag=True, help="Indent the JSON of requests and answers.")
@click.option("--seed", help="Borrowers and order numbers from this seed (default: random).")
def demo(url, partner, key, iv, admin_token, pretty, seed):
    """Play a whole aggregator flow, precheck to settlement, and print every step.

    Also a rejected borrower (mobile ...003) who gets 11007 when trying again. Exits 1 at
    the first unexpected answer.
    """
    from .harness.demo import run

    sys.exit(
        run(
            url=url,
            partner=partner,
            key=key,
            iv=iv,
            admin_token=admin_token,
            pretty=pretty,
            seed=seed,
        )
    )


if __name__ == "__main__":  # pragma: no cover
    main()
