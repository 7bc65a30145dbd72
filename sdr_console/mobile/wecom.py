"""The live WeCom app as the mobile inbox sees it: the API client of the bot (for ``auth/getuserinfo``) and the
shared agent ``jsapi_ticket`` (bot/wechat/jsapi.py). Absent in sandbox mode and without a WeCom app: sign-in is
by login link there, and the chat toolbar cannot be configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.config.core import WeComConfig
from bot.keys import CONFIG, REDIS, SERVICES
from bot.wechat.jsapi import agent_ticket_cache
from bot.wechat.tokens import AccessTokenCache

PRODUCTION_API = "https://qyapi.weixin.qq.com"
# WeCom's authorize page is served by open.weixin.qq.com, its API by qyapi.weixin.qq.com. The config has only
# wecom.api_base_url, so production is mapped here; any other base (the fake, a proxy) serves both.
AUTHORIZE_HOSTS = {PRODUCTION_API: "https://open.weixin.qq.com"}


@dataclass(frozen=True, slots=True)
class MobileWeCom:
    api: Any  # bot.wechat.api.WeComAPI: named loosely, the console must not import wechatpy
    tickets: AccessTokenCache
    corp_id: str
    agent_id: int


WECOM = web.AppKey("mobile_wecom", MobileWeCom)


def authorize_url(cfg: WeComConfig, redirect_uri: str, state: str) -> str:
    """WeCom's web OAuth page (``snsapi_base``: silent inside WeCom); WeCom wants this parameter order and the
    ``#wechat_redirect`` fragment."""
    base = cfg.api_base_url.rstrip("/")
    query = urlencode({"appid": cfg.corp_id, "redirect_uri": redirect_uri, "response_type": "code",
                       "scope": "snsapi_base", "agentid": cfg.agent_id, "state": state})
    return f"{AUTHORIZE_HOSTS.get(base, base)}/connect/oauth2/authorize?{query}#wechat_redirect"


async def wecom_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the bot's clients (bot/app.py clients_ctx): one ticket cache per process, over the bot's client."""
    api = app[SERVICES].wecom_api
    if api is not None:
        cfg = app[CONFIG]
        tickets = agent_ticket_cache(app[REDIS], cfg.redis.key_prefix, cfg.wecom.corp_id, cfg.wecom.agent_id,
                                     api.get_agent_jsapi_ticket)
        app[WECOM] = MobileWeCom(api, tickets, cfg.wecom.corp_id, cfg.wecom.agent_id)
    yield
