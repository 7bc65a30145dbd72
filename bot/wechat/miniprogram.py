"""Server-side calls of the mini-program: ``code2session`` (login) and ``getuserphonenumber``.

The mini-program has its own AppID, so its own access token: cached in Redis under a key of its own and
refreshed by one process at a time, exactly like the OA's (bot/wechat/tokens.py). The phone number call goes
through wechatpy with the token injected and the one retry on a bad token (bot/wechat/clients.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bot.config.capture import MiniProgramConfig
from bot.wechat.clients import OAClient, TokenedAPI, WeChatTransportError
from bot.wechat.oauth import sns_get

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class MiniProgramLogin:
    openid: str
    session_key: str  # stays on the server: it decrypts the user's data, never sent to any client
    unionid: str | None = None

    def __repr__(self) -> str:  # keep the session_key out of logs and tracebacks
        return f"MiniProgramLogin(openid={self.openid!r}, unionid={self.unionid!r})"


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    number: str  # 11 digits for mainland numbers, "+<country code><number>" otherwise
    country_code: str


class MiniProgramAPI(TokenedAPI):
    def __init__(self, cfg: MiniProgramConfig, api_base_url: str, redis: aioredis.Redis, key_prefix: str,
                 http: aiohttp.ClientSession, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__(executor=None, max_workers=4, name="wechat-mp")
        self.app_id = cfg.app_id
        self._secret = cfg.app_secret
        self._base = api_base_url.rstrip("/")
        self._http = http
        # wechatpy's OA client fits: the mini-program's token comes from the same /cgi-bin/token.
        self._client = self._register(OAClient(cfg.app_id, cfg.app_secret, api_base_url, timeout_s))
        self.tokens = self._token_cache(redis, f"{key_prefix}wechat:mp:{cfg.app_id}:access_token", self._client)

    async def code2session(self, js_code: str) -> MiniProgramLogin:
        result = await sns_get(self._http, f"{self._base}/sns/jscode2session", {
            "appid": self.app_id, "secret": self._secret, "js_code": js_code,
            "grant_type": "authorization_code"})
        openid, session_key = result.get("openid"), result.get("session_key")
        if not isinstance(openid, str) or not openid or not isinstance(session_key, str) or not session_key:
            raise WeChatTransportError("code2session answer without openid or session_key")
        unionid = result.get("unionid")
        return MiniProgramLogin(openid, session_key, unionid if isinstance(unionid, str) and unionid else None)

    async def phone_number(self, code: str) -> PhoneNumber:
        """The number behind a ``getPhoneNumber`` button code (single-use): verified by WeChat."""
        result: dict[str, Any] = await self.call(self.tokens, lambda: self._client.post(
            "wxa/business/getuserphonenumber", data={"code": code}, api_base_url=self._base + "/"))
        info = result.get("phone_info")
        if not isinstance(info, dict) or not info.get("purePhoneNumber"):
            raise WeChatTransportError("getuserphonenumber answer without phone_info")
        pure, country = str(info["purePhoneNumber"]), str(info.get("countryCode") or "86")
        return PhoneNumber(pure if country == "86" else f"+{country}{pure}", country)
