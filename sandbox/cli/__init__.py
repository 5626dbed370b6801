"""The `lender-sandbox` command (also `python -m sandbox`).

`envelope` encrypts and decrypts; `local` serves, prints the packaged defaults, writes
Postman collections and plays the demo; `remote`, `listen` and `acceptance` (the acceptance
report) talk to a running sandbox through the one control-API client
(`common.control_client`); `acceptance` also has `check-lender`, which checks any lender.
"""

from __future__ import annotations

import click

from .. import __version__
from .acceptance import check_lender, conformance
from .common import DEFAULT_URL, control_client
from .envelope import decrypt_cmd, encrypt
from .listen import listen
from .local import defaults, demo, postman, serve
from .remote import callbacks, clock, orders, pay, trigger


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="lender-sandbox")
def main() -> None:
    """Lender Sandbox: a stateful mock lender for the partner lending API."""


for command in (
    serve,
    demo,
    encrypt,
    decrypt_cmd,
    clock,
    orders,
    trigger,
    pay,
    callbacks,
    listen,
    postman,
    conformance,
    check_lender,
    defaults,
):
    main.add_command(command)

__all__ = ["DEFAULT_URL", "control_client", "main"]
