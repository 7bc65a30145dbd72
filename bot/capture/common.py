"""What the capture endpoints (H5 forms, mini-program API) share: their clients, templates and look-ups."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from jinja2 import Environment, FileSystemLoader

from bot.config.capture import FormDef
from bot.keys import CONFIG, REDIS
from bot.wechat.miniprogram import MiniProgramAPI
from bot.wechat.oauth import OAWebOAuth

log = logging.getLogger(__name__)
HTTP_TIMEOUT_S = 10.0
# Pages carry no scripts at all: even if escaping were ever missed, injected markup could not run.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # an OAuth code in the URL must not leak through Referer
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
}


@dataclass(frozen=True, slots=True)
class CaptureServices:
    http: aiohttp.ClientSession
    oauth: OAWebOAuth | None  # None unless wechat.mode = "live": sandbox never talks to WeChat
    mp: MiniProgramAPI | None  # None unless [mini_program] has app_id and app_secret


CAPTURE = web.AppKey("capture", CaptureServices)


async def capture_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S))
    oauth = OAWebOAuth(cfg.wechat, http) if cfg.wechat.mode == "live" else None
    mp_cfg = cfg.capture.mini_program
    mp = None
    if mp_cfg.enabled and mp_cfg.app_secret:
        # Login cannot be sandboxed (only WeChat can turn a wx.login code into an OpenID), so the
        # mini-program talks to WeChat whenever it is configured, whatever wechat.mode says.
        mp = MiniProgramAPI(mp_cfg, cfg.wechat.api_base_url, app[REDIS], cfg.redis.key_prefix, http)
    elif mp_cfg.enabled:
        log.warning("mini_program.app_id is set but app_secret is empty: mini-program login is disabled")
    app[CAPTURE] = CaptureServices(http=http, oauth=oauth, mp=mp)
    yield
    if mp is not None:
        await mp.aclose()
    await http.close()


def find_form(request: web.Request) -> FormDef | None:
    form_id = request.match_info["form_id"]
    return next((f for f in request.app[CONFIG].capture.forms if f.id == form_id), None)


@cache
def templates() -> Environment:
    # Autoescape everywhere: names and company fields are visitor input and may hold markup.
    return Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True,
                       trim_blocks=True, lstrip_blocks=True)


def render(name: str, status: int = 200, **context: Any) -> web.Response:
    html = templates().get_template(name).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers=PAGE_HEADERS)


def message_page(status: int, heading: str, message: str, *, ok: bool = False, link: str | None = None,
                 link_label: str = "重新打开") -> web.Response:
    return render("message.html", status, title=heading, heading=heading, message=message, ok=ok, link=link,
                  link_label=link_label)
