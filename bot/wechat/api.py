"""Outbound calls to the WeChat Official Account and WeCom APIs.

Every call runs in a thread pool (wechatpy is synchronous), uses the access token shared through Redis,
and is retried once when WeChat says the token is bad. Any other non-zero errcode raises
``WeChatAPIError`` (45009, the quota error, included: callers decide how to back off); HTTP failures
raise ``WeChatTransportError``.

Sends made here go out immediately: product code sends through ``bot.outbox.sender``, which also honours sandbox
mode. These methods are what the outbox sender calls in live mode.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

import redis.asyncio as aioredis

from bot.config.core import WeChatConfig, WeComConfig
from bot.wechat.clients import (
    BAD_TOKEN_ERRCODES,
    QUOTA_ERRCODE,
    OAClient,
    TokenedAPI,
    WeChatTransportError,
    WeComClient,
)
from bot.wechat.tokens import AccessTokenCache, TokenUnavailable

__all__ = [
    "BAD_TOKEN_ERRCODES",
    "QUOTA_ERRCODE",
    "AccessTokenCache",
    "OfficialAccountAPI",
    "TokenUnavailable",
    "WeChatTransportError",
    "WeComAPI",
]

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_WORKERS = 16


class OfficialAccountAPI(TokenedAPI):
    def __init__(
        self,
        cfg: WeChatConfig,
        redis: aioredis.Redis,
        key_prefix: str,
        *,
        executor: Executor | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_workers: int = DEFAULT_WORKERS,
    ) -> None:
        super().__init__(executor=executor, max_workers=max_workers, name="wechat-oa")
        self._client = self._register(OAClient(cfg.app_id, cfg.app_secret, cfg.api_base_url, timeout_s))
        self.tokens = self._token_cache(redis, f"{key_prefix}wechat:oa:{cfg.app_id}:access_token", self._client)

    async def user_info(self, openid: str, lang: str = "zh_CN") -> dict[str, Any]:
        """Profile of a follower; has "unionid" when the OA is bound to an Open Platform account."""
        return await self.call(self.tokens, lambda: self._client.user.get(openid, lang=lang))

    async def send_custom_text(self, openid: str, content: str) -> dict[str, Any]:
        # Only allowed within 48 h of the user's last interaction (45015 afterwards).
        return await self.call(self.tokens, lambda: self._client.message.send_text(openid, content))

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, Any], url: str | None = None
    ) -> dict[str, Any]:
        return await self.call(
            self.tokens, lambda: self._client.message.send_template(openid, template_id, data, url=url)
        )

    async def create_menu(self, menu: dict[str, Any]) -> dict[str, Any]:
        return await self.call(self.tokens, lambda: self._client.menu.create(menu))


class WeComAPI(TokenedAPI):
    """WeCom app messages use the app secret; customer-contact calls use the contact secret if set."""

    def __init__(
        self,
        cfg: WeComConfig,
        redis: aioredis.Redis,
        key_prefix: str,
        *,
        executor: Executor | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_workers: int = DEFAULT_WORKERS,
    ) -> None:
        super().__init__(executor=executor, max_workers=max_workers, name="wechat-wecom")
        self.agent_id = cfg.agent_id
        base = f"{key_prefix}wecom:{cfg.corp_id}"
        self._app = self._register(WeComClient(cfg.corp_id, cfg.secret, cfg.api_base_url, timeout_s))
        self.app_tokens = self._token_cache(redis, f"{base}:agent:{cfg.agent_id}:access_token", self._app)
        if cfg.contact_secret and cfg.contact_secret != cfg.secret:
            self._contact = self._register(
                WeComClient(cfg.corp_id, cfg.contact_secret, cfg.api_base_url, timeout_s)
            )
            self.contact_tokens = self._token_cache(redis, f"{base}:contact:access_token", self._contact)
        else:
            # One secret means one token: two caches for it would keep invalidating each other.
            self._contact = self._app
            self.contact_tokens = self.app_tokens

    async def get_external_contact(self, external_userid: str) -> dict[str, Any]:
        """{"external_contact": {"name", "unionid", ...}, "follow_user": [...]}."""
        return await self.call(
            self.contact_tokens, lambda: self._contact.external_contact.get(external_userid)
        )

    async def send_welcome_msg(self, welcome_code: str, text: str) -> dict[str, Any]:
        # The code from add_external_contact works once, within 20 s.
        body = {"welcome_code": welcome_code, "text": {"content": text}}
        return await self.call(
            self.contact_tokens, lambda: self._contact.external_contact.send_welcome_msg(body)
        )

    async def send_app_text(self, userid: str, content: str) -> dict[str, Any]:
        """A text from our WeCom app to an employee (WeCom drops more than 30 a minute per person)."""
        return await self.call(
            self.app_tokens, lambda: self._app.message.send_text(self.agent_id, userid, content)
        )

    async def add_msg_template(self, sender: str, external_userid: str, content: str) -> dict[str, Any]:
        """A message task for member ``sender`` to one external contact: it is sent once they confirm it in WeCom."""
        body = {"chat_type": "single", "sender": sender, "external_userid": [external_userid],
                "text": {"content": content}}
        return await self.call(
            self.contact_tokens, lambda: self._contact.external_contact.add_msg_template(body)
        )
