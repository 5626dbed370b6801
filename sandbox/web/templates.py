"""The one Jinja2 environment of the web layer: the templates/ folder, autoescaped, the little
Markdown filter (`md`) the API reference uses, and `when` for ISO times on the dashboard."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape


def md(text: Any) -> Markup:
    """The little Markdown the descriptions use: `code` and **bold** (escaped first)."""
    html = str(escape(text or ""))
    html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
    return Markup(re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html))


def when(iso: Any) -> str:
    """'2026-12-01T19:09:54.123+07:00' -> '2026-12-01 19:09:54.123': an ISO time as the
    dashboard shows it, like the protocol's own times (docs/protocol.md §7), without the zone."""
    if not iso:
        return ""
    text = str(iso).replace("T", " ", 1)
    return re.sub(r"([+-]\d\d:\d\d|Z)$", "", text)


TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "svg"]),
)
TEMPLATES.filters["md"] = md
TEMPLATES.filters["when"] = when
