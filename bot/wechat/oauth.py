"""OA web OAuth (``snsapi_base``) and the other code exchanges that need no access token.

WeChat's ``/sns/...`` endpoints take the app secret instead of an access token, so they are plain aiohttp
calls here rather than wechatpy clients (whose requests would carry, and need, an access token). Codes are
single-use: bot/wechat/codes.py claims each one before WeChat is asked.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bot.config.core import WeChatConfig
from bot.errors import WeChatAPIError
from bot.wechat.clients import WeChatTransportError

PRODUCTION_API = "https://api.weixin.qq.com"
# The authorize page is served by open.weixin.qq.com, the API by api.weixin.qq.com. The config has only
# wechat.api_base_url, so production is mapped here and any other base (a fake, a proxy) serves both.
OAUTH_HOSTS = {PRODUCTION_API: "https://open.weixin.qq.com"}


def oauth_base_url(api_base_url: str) -> str:
    base = api_base_url.rstrip("/")
    return OAUTH_HOSTS.get(base, base)


async def sns_get(http: aiohttp.ClientSession, url: str, params: dict[str, str]) -> dict[str, Any]:
    """GET a ``/sns/...`` endpoint. WeChat answers JSON as text/plain, so the body is parsed by hand."""
    try:
        async with http.get(url, params=params) as resp:
            if resp.status != 200:
                raise WeChatTransportError(f"HTTP status {resp.status}")
            body = await resp.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise WeChatTransportError(f"{type(exc).__name__}: {exc}") from exc
    try:
        result = json.loads(body)
    except ValueError as exc:
        raise WeChatTransportError("answer is not JSON") from exc
    if not isinstance(result, dict):
        raise WeChatTransportError("answer is not a JSON object")
    errcode = int(result.get("errcode") or 0)
    if errcode:
        raise WeChatAPIError(errcode, str(result.get("errmsg", "")))
    return result


class OAWebOAuth:
    """The OA's web authorisation: where to send the visitor, and how to turn the code into an OpenID."""

    def __init__(self, cfg: WeChatConfig, http: aiohttp.ClientSession) -> None:
        self._cfg = cfg
        self._http = http
        self._authorize = oauth_base_url(cfg.api_base_url) + "/connect/oauth2/authorize"
        self._token = cfg.api_base_url.rstrip("/") + "/sns/oauth2/access_token"

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        # WeChat requires this parameter order and the #wechat_redirect fragment.
        query = urlencode({"appid": self._cfg.app_id, "redirect_uri": redirect_uri, "response_type": "code",
                           "scope": "snsapi_base", "state": state})
        return f"{self._authorize}?{query}#wechat_redirect"

    async def exchange(self, code: str) -> tuple[str, str | None]:
        """(openid, unionid or None). The web access token that comes with it is not kept: snsapi_base
        grants nothing beyond the OpenID."""
        result = await sns_get(self._http, self._token, {
            "appid": self._cfg.app_id, "secret": self._cfg.app_secret, "code": code,
            "grant_type": "authorization_code"})
        openid = result.get("openid")
        if not isinstance(openid, str) or not openid:
            raise WeChatTransportError("OAuth answer without openid")
        unionid = result.get("unionid")
        return openid, unionid if isinstance(unionid, str) and unionid else None
