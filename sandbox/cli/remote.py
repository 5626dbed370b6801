"""Commands for a running sandbox, through the one control-API client (`SandboxControl`):
`clock`, `orders ls|show`, `trigger`, `pay`, `callbacks ls|show|redeliver`."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from .common import (
    echo_json,
    json_option,
    partner_option,
    remote,
    server_options,
    status_text,
    table,
)

# --- clock ------------------------------------------------------------------------------


@click.group()
def clock():
    """Show, advance or set a partner's virtual clock on a running sandbox."""


def _clock_call(
    url: str, partner: str, token: str | None, method: str, suffix: str, body: dict | None = None
) -> None:
    path = f"/sandbox/partners/{quote(partner, safe='')}/clock{suffix}"
    with remote(url, token) as api:
        echo_json(api.request(method, path, json_body=body))


@clock.command("show")
@server_options
@partner_option("Whose clock (partner token).")
def clock_show(url, token, partner):
    """Print the partner's clock."""
    _clock_call(url, partner, token, "GET", "")


@clock.command("advance")
@click.argument("by")
@server_options
@partner_option("Whose clock (partner token).")
def clock_advance(by, url, token, partner):
    """Move the clock forward BY: 8d, 2h, 90m, 30s, 1h30m or plain seconds."""
    from ..core.clock import ClockError, parse_duration

    try:
        parse_duration(by)  # checked here too so a typo fails before any request
    except ClockError as e:
        raise click.BadParameter(str(e), param_hint="BY") from None
    _clock_call(url, partner, token, "POST", "/advance", {"by": by})


@clock.command("set")
@click.argument("iso", metavar="ISO")
@server_options
@partner_option("Whose clock (partner token).")
def clock_set(iso, url, token, partner):
    """Set the clock to ISO (e.g. 2026-12-01T09:00:00+07:00; no zone = WIB); forward only."""
    from ..core.clock import ClockError, parse_instant

    try:
        parse_instant(iso)
    except ClockError as e:
        raise click.BadParameter(str(e), param_hint="ISO") from None
    _clock_call(url, partner, token, "POST", "/set", {"to": iso})


# --- orders -----------------------------------------------------------------------------


@click.group()
def orders():
    """List a partner's orders or show one, with its timeline and callbacks."""


@orders.command("ls")
@server_options
@partner_option()
@click.option("--status", type=int, help="Only orders in this status (e.g. 170).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@json_option
def orders_ls(url, token, partner, status, limit, as_json):
    """The partner's orders, newest first."""
    with remote(url, token) as api:
        found = api.orders(partner, status, limit)
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo(f"no orders of {partner}" + (f" in status {status}" if status else ""))
        return
    table(
        [
            (
                o["order_no"],
                status_text(o["status"], o["status_name"]),
                o["user_name"],
                o["user_mobile"],
                o["approved_amount"] or o["application_amount"],
                o["scenario"],
                o["updated_at"],
            )
            for o in found
        ],
        ("order_no", "status", "name", "mobile", "amount", "scenario", "updated (virtual)"),
    )


@orders.command("show")
@click.argument("order_no")
@server_options
@partner_option()
@json_option
def orders_show(order_no, url, token, partner, as_json):
    """An order: status, timeline, pending events, payment codes and callbacks."""
    with remote(url, token) as api:
        detail = api.order(order_no, partner)
    if as_json:
        echo_json(detail)
    else:
        show_order(detail)


def show_order(o: dict[str, Any]) -> None:
    title = f"{o['order_no']}  {status_text(o['status'], o['status_name'])}"
    click.echo(click.style(title, bold=True))
    amount = o["approved_amount"] or o["application_amount"]
    click.echo(f"  {o['user_name']} · {o['user_mobile']} · product {o['product_id']} · {amount}")
    if o.get("payout_error"):
        click.echo(click.style(f"  payout failed: {o['payout_error']}", fg="red"))
    if o.get("due_at"):
        click.echo(f"  due {o['due_at']} (virtual)")
    click.echo(f"  allowed triggers: {', '.join(o['allowed_triggers']) or 'none (final)'}")
    click.echo(click.style("\ntimeline (virtual time)", bold=True))
    table(
        [
            (
                t["at"],
                status_text(t["from"]) if t["from"] else "created",
                status_text(t["to"]),
                t["trigger"],
                t["cause"],
            )
            for t in o["timeline"]
        ],
        ("at", "from", "to", "trigger", "cause"),
    )
    if o["pending_events"]:
        click.echo(click.style("\npending events (virtual time)", bold=True))
        table([(e["due_at"], e["kind"]) for e in o["pending_events"]], ("due", "event"))
    if o["repay_codes"]:
        click.echo(click.style("\npayment codes", bold=True))
        table(
            [
                (c["repay_code"], c["repay_type"], c["amount"], c["state"], c["expire_time"])
                for c in o["repay_codes"]
            ],
            ("code", "type", "amount", "state", "expires (virtual)"),
        )
    click.echo(click.style("\ncallbacks", bold=True))
    table(
        [(c["id"], c["path"], c["state"], c["attempts"]) for c in o["callbacks"]],
        ("id", "path", "state", "attempts"),
    )


# --- trigger and pay ----------------------------------------------------------------------


@click.command()
@click.argument("order_no")
@click.argument("trigger")
@server_options
@partner_option()
@click.option("--amount", type=int, help="approve: the approved amount.")
@click.option("--reason", help="reject / fail_payout: the reason.")
@click.option("--delay-term", type=int, help="extend: days.")
@json_option
def trigger(order_no, trigger, url, token, partner, amount, reason, delay_term, as_json):
    """Force TRIGGER on an order: approve, reject, confirm, disburse, fail_payout, cancel,
    overdue, extend or settle (an illegal one says which are allowed)."""
    params = {"amount": amount, "reason": reason, "delay_term": delay_term}
    with remote(url, token) as api:
        detail = api.transition(
            order_no, trigger, partner, **{k: v for k, v in params.items() if v is not None}
        )
    if as_json:
        echo_json(detail)
        return
    last = detail["timeline"][-1]
    click.echo(
        f"{order_no}: {status_text(last['from'])} -> {status_text(last['to'])} ({trigger}); "
        f"allowed next: {', '.join(detail['allowed_triggers']) or 'none (final)'}"
    )


@click.command()
@click.argument("repay_code")
@server_options
@click.option("--amount", type=int, help="Must equal the code's amount (default: it does).")
@json_option
def pay(repay_code, url, token, amount, as_json):
    """The borrower pays REPAY_CODE (a code from 15 get-repay-detail)."""
    with remote(url, token) as api:
        paid = api.pay(repay_code, amount)
    if as_json:
        echo_json(paid)
        return
    kind = "full repayment" if paid["repay_type"] == 1 else "extension fee"
    click.echo(
        f"paid {paid['amount']} ({kind}) for order {paid['order_no']} of "
        f"{paid['partner_token']}: now {status_text(paid['order_status'])}"
    )


# --- callbacks --------------------------------------------------------------------------


@click.group()
def callbacks():
    """Callback deliveries (19-21): list, show every attempt, send again."""


@callbacks.command("ls")
@server_options
@partner_option()
@click.option("--order", "order_no", help="Only this order's.")
@click.option(
    "--state", type=click.Choice(["pending", "delivered", "dead"]), help="Only in this state."
)
@json_option
def callbacks_ls(url, token, partner, order_no, state, as_json):
    """The partner's deliveries, oldest first."""
    with remote(url, token) as api:
        found = api.callbacks(partner, order_no, state)
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo(f"no callbacks of {partner}")
        return
    table(
        [
            (
                c["id"],
                c["order_no"],
                c["path"],
                c["state"],
                f"{c['attempts']}/{c['max_attempts']}",
                _last_answer(c),
                c["created_at"],
                c["delivered_at"] or c["waiting"],
            )
            for c in found
        ],
        (
            "id",
            "order_no",
            "path",
            "state",
            "attempts",
            "last answer",
            "created (virtual)",
            "delivered (wall) / waiting",
        ),
    )


def _last_answer(c: dict[str, Any]) -> str:
    if not c["attempt_log"]:
        return ""
    a = c["attempt_log"][-1]
    return f"HTTP {a['status_code']}" if a["status_code"] is not None else (a["error"] or "?")


@callbacks.command("show")
@click.argument("callback_id", type=int)
@server_options
@json_option
def callbacks_show(callback_id, url, token, as_json):
    """A delivery: the body (decrypted), and each attempt as sent and answered."""
    with remote(url, token) as api:
        c = api.callback(callback_id)
    if as_json:
        echo_json(c)
    else:
        show_delivery(c)


def show_delivery(c: dict[str, Any]) -> None:
    click.echo(
        click.style(f"#{c['id']} {c['path']}  {c['state']}", bold=True)
        + f"  order {c['order_no']} of {c['partner_token']}"
    )
    click.echo(f"  created {c['created_at']} (virtual) · to {c['url'] or '(no callback_url)'}")
    if c["waiting"]:
        click.echo(f"  waiting: {c['waiting']}")
    click.echo("  body (decrypted): " + json.dumps(c["body"], ensure_ascii=False))
    for n, a in enumerate(c["attempt_log"], 1):
        answer = f"HTTP {a['status_code']}" if a["status_code"] is not None else "no answer"
        line = f"  attempt {n} at {a['at']} (wall): {answer}, {a['latency_ms']:.0f} ms"
        ok = a["status_code"] is not None and not a["error"]
        click.echo(click.style(line, fg=None if ok else "red"))
        if a["error"]:
            click.echo(click.style(f"    error: {a['error']}", fg="red"))
        click.echo(f"    sent:     {a['request_body']}")
        click.echo(f"    answered: {a['response_body']}")


@callbacks.command("redeliver")
@click.argument("callback_id", type=int)
@server_options
@json_option
def callbacks_redeliver(callback_id, url, token, as_json):
    """Send a delivery again (a new attempt cycle; the log keeps the earlier attempts)."""
    with remote(url, token) as api:
        c = api.redeliver(callback_id)
    if as_json:
        echo_json(c)
        return
    click.echo(f"#{c['id']} {c['path']}: {c['state']}, {c['waiting'] or 'sent'}")
