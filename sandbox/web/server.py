"""`lender-sandbox serve`: the app under uvicorn, with its start-up banner and log settings."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..services.config import load_settings
from ..services.lender import Lender, create_lender
from .access import configure_logging
from .app import create_app, is_loopback
from .lender import quiet_drops


def banner(lender: Lender) -> str:
    s = lender.settings
    url = s.public_url()
    lines = [f"Lender Sandbox ready on {url}  (database: {s.database.url})", ""]
    for p in s.partners:
        lines.append(f"  partner_token={p.partner_token}  aes_key={p.aes_key}  aes_iv={p.aes_iv}")
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
        "  magic mobile suffixes choose outcomes: see fixtures/scenarios.toml",
        "",
    ]
    for w in lender.warnings():
        lines.append(f"  WARNING: {w}")
    return "\n".join(lines)


def run_server(
    config_path: str | Path | None = None, *, host: str | None = None, port: int | None = None
) -> None:
    import uvicorn

    overrides: dict[str, Any] = {"server": {}}
    if host:
        overrides["server"]["host"] = host
    if port:
        overrides["server"]["port"] = port
    settings = load_settings(config_path, overrides)
    if not is_loopback(settings.server.host) and not settings.server.admin_token:
        raise SystemExit(
            "refusing to bind a non-loopback address without [server] admin_token "
            "(or LENDER_SANDBOX_ADMIN_TOKEN): the control API would be open to all"
        )
    configure_logging(settings.server.log_format, settings.server.access_log)
    for noisy in ("apscheduler", "httpx"):  # a line per tick / per callback attempt is noise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").addFilter(quiet_drops)  # injected drops are not errors
    lender = create_lender(settings)
    app = create_app(settings, lender=lender, on_ready=lambda: print(banner(lender), flush=True))
    uvicorn.run(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_level="warning",
        log_config=None,  # uvicorn's lines go through our handler, in our format
        access_log=False,  # ours (web.access) names the request id, partner and code
    )
