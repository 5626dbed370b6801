"""What the commands share: the options naming a running sandbox, its control client, one
clear line instead of a traceback, and printing JSON or a table."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from ..harness.client import SandboxControl

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT = 10.0  # seconds per control call: a sandbox answers in milliseconds


def fail(code: int, message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def url_option(f: Callable) -> Callable:
    return click.option(
        "--url",
        envvar="LENDER_SANDBOX_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="The running sandbox (env LENDER_SANDBOX_URL).",
    )(f)


def token_option(f: Callable) -> Callable:
    return click.option(
        "--token",
        "--admin-token",
        "token",
        envvar=["LENDER_SANDBOX_TOKEN", "LENDER_SANDBOX_ADMIN_TOKEN"],
        default=None,
        help="Sent as `Authorization: Bearer ...` where the sandbox asks for a token: your "
        "partner's control token, or the admin token (env LENDER_SANDBOX_TOKEN, else "
        "LENDER_SANDBOX_ADMIN_TOKEN). Not needed on a loopback sandbox without an admin token.",
    )(f)


def server_options(f: Callable) -> Callable:
    """--url and --token: where the sandbox runs and how to get in."""
    return url_option(token_option(f))


def partner_option(help: str = "Partner token.") -> Callable[[Callable], Callable]:
    return click.option("--partner", default="demo", show_default=True, help=help)


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")(f)


def control_client(url: str, token: str = "") -> SandboxControl:
    """The control-API client every command that talks to a running sandbox uses."""
    from ..harness.client import SandboxControl

    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r}: give an http(s) URL", param_hint="--url")
    return SandboxControl(url, token=token, timeout=TIMEOUT)


@contextmanager
def remote(url: str, token: str | None) -> Iterator[SandboxControl]:
    """A control client whose failures end the command with one readable message."""
    import httpx  # only the commands that talk to a server need it

    from ..harness.client import ControlAPIError

    with control_client(url, token or "") as api:
        try:
            yield api
        except httpx.TimeoutException:
            fail(1, f"the sandbox at {api.base_url} did not answer within {TIMEOUT:g}s")
        except httpx.TransportError:
            fail(1, f"no sandbox answers at {api.base_url}: start one with `lender-sandbox serve`")
        except ControlAPIError as e:
            hint = "\n(give --token, or set LENDER_SANDBOX_TOKEN)" if e.http_status == 401 else ""
            fail(1, f"{api.base_url}: {e}\n{dumps(e.body)}{hint}")


def dumps(doc: Any) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)


def echo_json(doc: Any) -> None:
    click.echo(dumps(doc))


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    """Left-aligned columns, two spaces apart; None prints as '-'."""
    cells = [[str(h) for h in header]] + [
        ["-" if v is None or v == "" else str(v) for v in row] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        click.echo(click.style(line, bold=True) if n == 0 else line)


def status_text(status: int | None, name: str | None = None) -> str:
    """'170 repaying'."""
    from ..core.lifecycle import Status

    if status is None:
        return "-"
    try:
        return f"{status} {name or Status(status).name.lower()}"
    except ValueError:
        return str(status)
