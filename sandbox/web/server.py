"""`lender-sandbox serve`: the app under uvicorn, with its start-up banner and log settings."""

from __future__ import annotations

import logging
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ..core.addresses import is_loopback
from ..services.config import load_settings, redacted_url
from ..services.lender import Lender, create_lender
from .access import configure_logging
from .app import create_app
from .lender import quiet_drops


def banner(lender: Lender) -> str:
    """What `serve` prints once it is up. Never a password, nor a token; the fixture partners'
    keys only on a loopback bind (one developer's terminal) — a shared instance's log is read
    by more people than the partners'."""
    s = lender.settings
    url = s.public_url()
    lines = [f"Lender Sandbox ready on {url}  (database: {redacted_url(s.database.url)})", ""]
    shared = not is_loopback(s.server.host)
    for p in s.partners:
        keys = "" if shared else f"  aes_key={p.aes_key}  aes_iv={p.aes_iv}"
        lines.append(f"  partner_token={p.partner_token}{keys}")
    if shared:
        lines += [
            "  (a shared instance prints no keys: GET /sandbox/partners/{token}?secrets=1 with",
            '   the partner\'s control token or the admin token; README "Security")',
        ]
    lines.append("")
    for product in lender.products.values():
        unit = "days" if product.term_unit == 1 else "months"
        lines.append(
            f"  product {product.product_id} {product.product_name}: {product.amount_min}-"
            f"{product.amount_max} IDR, terms {list(product.terms)} {unit}, "
            f"interest {product.interest_rate}/{unit[:-1]}"
        )
    lines += [
        "",
        f"  try:  curl -s {url}/sandbox/health",
        f"  docs: {url}/docs",
        f"  dashboard: {url}/dashboard",
        "  magic mobile suffixes choose outcomes: `lender-sandbox defaults "
        "fixtures/scenarios.toml`",
        "  this terminal now runs the server (Ctrl-C stops it): use another one for the rest",
        "",
    ]
    for w in lender.warnings():
        lines.append(f"  WARNING: {w}")
    return "\n".join(lines)


def _configure_logging(level: str, log_format: str, access_log: bool) -> None:
    """`[server] log_level` for the sandbox's own lines, in `log_format` with request ids
    (web.access); the access log only when `access_log` is on; the chattiest libraries only
    above INFO."""
    configure_logging(log_format, access_log, root_level(level))
    for noisy in ("apscheduler", "httpx", "aiohttp"):  # a line per tick / per attempt: noise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    errors = logging.getLogger("uvicorn.error")
    errors.addFilter(quiet_drops)  # injected drops are not errors
    # uvicorn's start-up lines repeat the banner: only at "debug"
    errors.setLevel(logging.DEBUG if level == "debug" else max(logging.WARNING, root_level(level)))


def root_level(level: str) -> int:
    return logging.getLevelNamesMapping()[level.upper()]


def run_server(
    config_path: str | Path | Traversable | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    access_log: bool | None = None,
) -> None:
    """Serve until stopped. Options given here win over the file and the environment."""
    import uvicorn

    given = {"host": host, "port": port, "access_log": access_log}
    overrides: dict[str, Any] = {"server": {k: v for k, v in given.items() if v is not None}}
    settings = load_settings(config_path, overrides)
    server = settings.server
    if not is_loopback(server.host) and not server.admin_token:
        raise SystemExit(
            "refusing to bind a non-loopback address without [server] admin_token "
            "(or LENDER_SANDBOX_ADMIN_TOKEN): the control API would be open to all"
        )
    _configure_logging(server.log_level, server.log_format, server.access_log)
    lender = create_lender(settings)
    app = create_app(settings, lender=lender, on_ready=lambda: print(banner(lender), flush=True))
    uvicorn.run(
        app,
        host=server.host,
        port=server.port,
        access_log=False,  # ours (web.access) names the request id, partner and code
        log_config=None,  # the logging configured above: uvicorn would replace it
        log_level=None,  # and would set its loggers' levels over ours
    )
