"""The one Jinja2 environment of the web layer: the templates/ folder, autoescaped, and the
little Markdown filter (`md`) the API reference uses."""

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


TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "svg"]),
)
TEMPLATES.filters["md"] = md
