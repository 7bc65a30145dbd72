"""Server-rendered console pages: one Jinja2 environment (autoescaped: names, notes and questions come from
prospects and may hold markup) and the headers every page carries."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader

from leads.access import ROLE_LABELS
from sdr_console.web.assets import ASSETS

# Scripts and styles only from our own origin, no inline script: injected markup that escaped escaping
# still could not run. Bootstrap draws its form controls' icons as data: SVG images.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'",
}


@cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
                      autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.globals["role_label"] = lambda role: ROLE_LABELS.get(role, role)
    return env


def render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    assets = request.app[ASSETS]
    html = environment().get_template(name).render(static=assets.url, vendor=assets.vendor, **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers=PAGE_HEADERS)
