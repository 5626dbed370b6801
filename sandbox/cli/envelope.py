"""`encrypt` and `decrypt`: the envelope's encode_data on stdin, like PHP openssl_*.

The key and IV are given (--key/--iv), a partner's (--partner, from the configuration, or
from a running sandbox with --url: partners created there exist nowhere else), or the
spec's example pair.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click

from ..core.crypto import Codec, NotJsonError, decrypt, loads_json
from ..services.config import ConfigError, load_settings, resolve_config_path
from .common import fail, remote, token_option

SPEC_KEY = "Loan@apis#123456@"  # the partner spec's example pair, which is also the demo partner's
SPEC_IV = "loan#654321@apis"


def load_partners(config: str | None) -> list:
    """Partner records (.partner_token, .aes_key, .aes_iv) from the server's settings loader."""
    try:
        return list(load_settings(resolve_config_path(config)).partners)
    except ConfigError as e:  # one readable line instead of a trace
        raise click.ClickException(f"cannot read the configuration: {e}") from None


def _configured(partner: str, config: str | None) -> Codec:
    for p in load_partners(config):
        if p.partner_token == partner:
            return Codec(p.aes_key, p.aes_iv)
    raise click.BadParameter(
        f"no partner with token {partner!r} in the configuration "
        "(a partner created on a running sandbox: pass --url)",
        param_hint="--partner",
    )


def _served(partner: str, url: str, token: str | None) -> Codec:
    with remote(url, token) as api:
        view = api.partner(partner, secrets=True)
    return Codec(view["aes_key"], view["aes_iv"])


def codec(
    key: str | None,
    iv: str | None,
    partner: str | None,
    config: str | None,
    url: str | None = None,
    token: str | None = None,
) -> Codec:
    if partner is not None:
        if key is not None or iv is not None:
            raise click.UsageError("give either --partner or --key/--iv, not both")
        return _served(partner, url, token) if url else _configured(partner, config)
    if url:
        raise click.UsageError("--url looks a partner up: give --partner too")
    if (key is None) != (iv is None):
        raise click.UsageError(
            "give both --key and --iv (or --partner, or neither for the spec's demo pair)"
        )
    return Codec(SPEC_KEY, SPEC_IV) if key is None or iv is None else Codec(key, iv)


def codec_options(f: Callable) -> Callable:
    f = token_option(f)
    f = click.option(
        "--url",
        default=None,
        help="With --partner: take the partner's key and IV from this running sandbox "
        "(for partners created there with POST /sandbox/partners).",
    )(f)
    f = click.option(
        "--config",
        type=click.Path(dir_okay=False),
        help="Config for --partner (default: ./config.toml, else the packaged one).",
    )(f)
    f = click.option(
        "--partner", metavar="TOKEN", help="Use this partner's key and IV (see --config, --url)."
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


@click.command()
@codec_options
@click.option(
    "--keep-newline", is_flag=True, help="Encrypt stdin exactly, trailing newline included."
)
def encrypt(key, iv, partner, config, url, token, keep_newline):
    """Encrypt stdin like PHP openssl_encrypt(..., 'AES-128-CBC', key, 0, iv); print the base64.

    One trailing "\\n" is stripped from stdin first (so `echo '{...}' | lender-sandbox encrypt`
    encrypts just the JSON); pass --keep-newline to encrypt the bytes exactly.
    Without --key/--iv/--partner the spec's demo pair is used.
    """
    c = codec(key, iv, partner, config, url, token)
    click.echo(c.encrypt_bytes(_read_stdin(keep_newline)))


@click.command("decrypt")
@codec_options
@click.option("--pretty", is_flag=True, help="Pretty-print the JSON.")
@click.option("--raw", is_flag=True, help="Print whatever bytes came out as hex, JSON or not.")
def decrypt_cmd(key, iv, partner, config, url, token, pretty, raw):
    """Decrypt base64 on stdin like PHP openssl_decrypt and print the plaintext.

    Exit 1 where PHP would return false (nothing on stdout). When the result is not UTF-8
    JSON (nearly always a wrong key or IV), print exactly the bytes PHP returns, then the
    diagnosis on stderr, and exit 2: with a wrong IV only the first 16 bytes are garbled.
    """
    c = codec(key, iv, partner, config, url, token)
    plain = decrypt(_read_stdin(), c.key, c.iv)
    if plain is None:
        fail(
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
        fail(
            2,
            "decrypted, but the result is not UTF-8 JSON: the key or IV is probably wrong"
            f"{hint}\n{e.preview} (--raw prints them all as hex)",
        )
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False) if pretty else plain.decode("utf-8"))
