"""`lender-sandbox listen`: a partner's callbacks, live in the terminal and forwarded to the
developer's own handler (like `stripe listen --forward-to`), through `harness.listen`."""

from __future__ import annotations

import json
import signal
import threading
import time
from datetime import datetime

import click

from .common import fail, partner_option, remote, server_options


def _printer(forward_to: str | None, pretty: bool):
    lock = threading.Lock()  # callbacks arrive on several threads: one block at a time

    def show(record) -> None:
        from ..services.outbox import refusal

        stamp = datetime.fromtimestamp(record.at).strftime("%H:%M:%S")
        body = record.body
        if body is None:
            what = click.style(f"cannot decrypt: {record.problem}", fg="yellow")
        else:
            what = json.dumps(body, ensure_ascii=False, indent=2 if pretty else None)
        status = record.status
        why = refusal(status, record.answer) if status is not None else "no answer"
        where = f"POST {forward_to.rstrip('/')}{record.path}" if forward_to else "(this listener)"
        answer = f"<-- [{status}] {where}  {record.answer.strip()}"
        with lock:
            click.echo(
                click.style(f"--> {stamp} {record.path.lstrip('/')}", bold=True) + "  " + what
            )
            click.echo(click.style(answer, fg="green" if not why else "red"))
            if why:
                click.echo(
                    click.style(f"    not acknowledged ({why}): the sandbox retries", fg="red")
                )

    return show


@click.command()
@server_options
@partner_option("Whose callbacks.")
@click.option(
    "--forward-to",
    metavar="URL",
    help="Your handler: each callback is POSTed, as received, to URL + its path "
    "(URL takes the place of the partner's callback_url), and its answer is the "
    "acknowledgement. Without it this listener acknowledges every callback itself.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Where to receive.")
@click.option("--port", type=int, default=0, help="Port to receive on (default: a free one).")
@click.option(
    "--public-url",
    metavar="URL",
    help="The address the sandbox calls when it is not on this machine (a tunnel or VPN name "
    "leading to --host/--port). Default: http://HOST:PORT.",
)
@click.option("--pretty", is_flag=True, help="Indent each callback's JSON.")
def listen(url, token, partner, forward_to, host, port, public_url, pretty):
    """Receive a partner's callbacks here: print each one decrypted as it arrives, forward it
    to your handler and relay its answer. Ctrl-C puts the previous callback_url back.

    The sandbox must be able to reach the receiver: on this machine that is automatic; for
    a sandbox elsewhere bind --host 0.0.0.0 and give --public-url.
    """
    from ..harness.listen import Listener

    if host in ("0.0.0.0", "::") and not public_url:
        raise click.UsageError(f"--host {host} listens everywhere: give --public-url too")
    if forward_to and not forward_to.startswith(("http://", "https://")):
        raise click.BadParameter(f"{forward_to!r}: give an http(s) URL", param_hint="--forward-to")
    with remote(url, token) as api:
        listener = Listener(
            api,
            partner,
            forward_to=forward_to,
            host=host,
            port=port,
            public_url=public_url,
            on_record=_printer(forward_to, pretty),
        )
        try:
            listener.start()
        except OSError as e:
            fail(1, f"cannot receive on {host}:{port}: {e.strerror or e}")
        _serve(listener, partner, forward_to)


def _serve(listener, partner: str, forward_to: str | None) -> None:
    was = listener.previous or "none"
    target = f"forwarding to {forward_to}" if forward_to else "acknowledging each one here"
    click.echo(
        f"Ready: callbacks of {partner} come to {listener.url} (was: {was}), {target}. "
        "Ctrl-C to stop.",
        err=True,
    )
    if listener.paused:
        click.echo(
            f"Note: {partner}'s callbacks are paused: nothing arrives until "
            f"POST /sandbox/partners/{partner}/callbacks/resume",
            err=True,
        )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` ends it like Ctrl-C
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        restored = listener.close()
        note = (
            f"callback_url of {partner} is {was} again"
            if restored
            else (f"callback_url of {partner} was changed meanwhile: left as it is")
        )
        click.echo(f"Stopped: {note}.", err=True)
