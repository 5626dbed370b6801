"""Commands that need no running sandbox: `serve` (start one), `defaults` (the packaged
settings reference), `postman` (a collection, from a server or the configuration), `demo`."""

from __future__ import annotations

import json
import sys
from importlib.resources.abc import Traversable
from pathlib import Path

import click

from ..services.config import (
    DEFAULTS,
    FIXTURE_FILES,
    ConfigError,
    load_settings,
    resolve_config_path,
)
from .common import fail, remote, token_option

# --- serve ------------------------------------------------------------------------------


@click.command()
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    help="Default: ./config.toml, else the packaged defaults.",
)
@click.option("--host", default=None, help="Bind address (default: [server] host).")
@click.option("--port", type=int, default=None, help="Port (default: [server] port).")
@click.option(
    "--access-log",
    is_flag=True,
    default=None,
    help="Log every HTTP request (default: [server] access_log, env LENDER_SANDBOX_ACCESS_LOG).",
)
def serve(config, host, port, access_log):
    """Run the sandbox server (until Ctrl-C: it holds this terminal).

    Settings: the packaged defaults, then the config file, then LENDER_SANDBOX_* variables,
    then these options (`lender-sandbox defaults config.toml` shows every setting).
    """
    from ..web.server import run_server  # imported here so encrypt/decrypt stay light

    try:
        run_server(resolve_config_path(config), host=host, port=port, access_log=access_log or None)
    except ConfigError as e:
        fail(1, f"cannot read the configuration: {e}")


# --- defaults ---------------------------------------------------------------------------

DEFAULT_FILES = ("config.toml", *(f"fixtures/{name}.toml" for name in FIXTURE_FILES))


def _default_file(name: str) -> Traversable:
    return DEFAULTS.joinpath(*name.split("/"))


@click.command()
@click.argument("name", required=False, type=click.Choice(DEFAULT_FILES))
def defaults(name):
    """Print a packaged default file (the commented settings reference), or list them.

    `lender-sandbox defaults config.toml > my.toml`, then keep the keys you change and
    `lender-sandbox serve --config my.toml`.
    """
    if name is None:
        for n in DEFAULT_FILES:
            click.echo(n)
        return
    click.echo(_default_file(name).read_text(encoding="utf-8"), nl=False)


# --- postman ----------------------------------------------------------------------------


@click.command()
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
@token_option
def postman(partner, url, config, output, token):
    """Write a Postman collection (v2.1; Apifox imports it) for a partner.

    Every endpoint 02-18 with an example payload, a whole loan in order, and scripts that
    encrypt the plain payloads like PHP. Run the loan with
    `newman run FILE --folder "Whole loan"` against the sandbox.
    """
    doc = _remote_collection(url, partner, token) if url else _local_collection(config, partner)
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    target = output or f"lender-sandbox-{partner}.postman_collection.json"
    if target == "-":
        click.echo(text, nl=False)
        return
    Path(target).write_text(text, encoding="utf-8")
    click.echo(f"wrote {target}: import it into Postman or Apifox, or run it with newman", err=True)


def _remote_collection(url: str, partner: str, token: str | None) -> dict:
    with remote(url, token) as api:
        return api.postman_collection(partner)


def _local_collection(config: str | None, partner: str) -> dict:
    from datetime import datetime

    from ..core.clock import WIB
    from ..services.postman import PostmanError, config_collection

    try:
        settings = load_settings(resolve_config_path(config))
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


# --- demo -------------------------------------------------------------------------------


@click.command()
@click.option(
    "--url", default=None, help="A running sandbox. Default: a fresh in-process one (manual clock)."
)
@click.option(
    "--partner",
    default=None,
    help="Partner token. Default: in process `demo`; with --url a new partner of the demo's "
    "own, so the flow moves no one else's clock.",
)
@click.option("--key", help="AES key (default: the partner's, from the control API).")
@click.option("--iv", help="AES IV (default: the partner's, from the control API).")
@token_option
@click.option("--pretty", is_flag=True, help="Indent the JSON of requests and answers.")
@click.option("--seed", help="Borrowers and order numbers from this seed (default: random).")
def demo(url, partner, key, iv, token, pretty, seed):
    """Play a whole aggregator flow, precheck to settlement, and print every step.

    Also a rejected borrower (mobile ...003) who gets 11007 when trying again, and the
    callbacks each step caused. Exits 1 at the first unexpected answer.
    """
    from ..harness.demo import run

    sys.exit(
        run(
            url=url,
            partner=partner,
            key=key,
            iv=iv,
            token=token,
            pretty=pretty,
            seed=seed,
        )
    )
