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

    async def send_app_message(self, userid: str, msgtype: str, body: dict[str, Any]) -> dict[str, Any]:
        """An app message of any ``msgtype`` ("template_card", "textcard", ...) to member(s) ``userid``
        ("a|b"). A template card's answer carries ``response_code``: update_template_card needs it."""
        data = {"touser": userid, "msgtype": msgtype, "agentid": self.agent_id, msgtype: body}
        return await self.call(self.app_tokens, lambda: self._app.post("message/send", data=data))

    async def update_template_card(self, userids: list[str], response_code: str,
                                   *, replace_name: str) -> dict[str, Any]:
        """Turn the buttons of a sent button_interaction card into one unclickable label, for ``userids``.
        Each response_code works once, within 72 hours (the send's, or a click callback's)."""
        data = {"userids": userids, "agentid": self.agent_id, "response_code": response_code,
                "button": {"replace_name": replace_name}}
        return await self.call(self.app_tokens, lambda: self._app.post("message/update_template_card", data=data))

    async def get_user_info_by_code(self, code: str) -> dict[str, Any]:
        """Web OAuth (``auth/getuserinfo``): a member's {"userid"}, or {"openid"} for someone outside the company.
        The code works once, for 5 minutes (WeCom answers 40029 for an unknown, used or expired one)."""
        return await self.call(self.app_tokens, lambda: self._app.get("auth/getuserinfo", params={"code": code}))

    async def get_agent_jsapi_ticket(self) -> tuple[str, int]:
        """A new agent ``jsapi_ticket`` and its lifetime in seconds; callers go through bot/wechat/jsapi.py's
        shared cache (WeCom allows 400 fetches an hour per company)."""
        result = await self.call(self.app_tokens,
                                 lambda: self._app.get("ticket/get", params={"type": "agent_config"}))
        return str(result["ticket"]), int(result.get("expires_in", 7200))

    async def transfer_customer(self, handover_userid: str, takeover_userid: str, external_userids: list[str],
                                *, message: str | None = None, resigned: bool = False) -> dict[str, Any]:
        """Hand at most 100 of a member's customers to another (在职继承; ``resigned``: 离职继承).

        The answer's "customer" list has one errcode per customer: 0 only means the transfer started (WeCom
        completes it after 24 hours unless the customer refuses); 40128 is WeCom's "2 transfers per customer
        per 90 days" limit. ``message`` (transfer_success_msg, ≤ 200 characters) exists for on-the-job only.
        """
        body: dict[str, Any] = {"handover_userid": handover_userid, "takeover_userid": takeover_userid,
                                "external_userid": list(external_userids)}
        if message and not resigned:
            body["transfer_success_msg"] = message
        path = "externalcontact/resigned/transfer_customer" if resigned else "externalcontact/transfer_customer"
        return await self.call(self.contact_tokens, lambda: self._contact.post(path, data=body))

    async def transfer_result(self, handover_userid: str, takeover_userid: str, *, cursor: str = "",
                              resigned: bool = False) -> dict[str, Any]:
        """One page (≤ 1,000) of the pair's transfers: {"customer": [{"external_userid", "status",
        "takeover_time"}], "next_cursor"}; status 1 接替完毕, 2 等待接替, 3 客户拒绝, 4 接替成员客户达到上限."""
        body = {"handover_userid": handover_userid, "takeover_userid": takeover_userid, "cursor": cursor}
        path = "externalcontact/resigned/transfer_result" if resigned else "externalcontact/transfer_result"
        return await self.call(self.contact_tokens, lambda: self._contact.post(path, data=body))

    async def add_msg_template_batch(self, sender: str, external_userids: list[str], content: str,
                                     attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A mass-message task for member ``sender`` to ≤ 10,000 of their customers (bot/batches). The answer's
        "msgid" names the task for get_groupmsg_task / send_result / remind; "fail_list" the customers WeCom
        refused at once (not the member's customers, invalid ids)."""
        body: dict[str, Any] = {"chat_type": "single", "sender": sender, "external_userid": list(external_userids),
                                "text": {"content": content}}
        if attachments:
            body["attachments"] = attachments
        return await self.call(self.contact_tokens,
                               lambda: self._contact.post("externalcontact/add_msg_template", data=body))

    async def get_groupmsg_task(self, msgid: str, *, cursor: str = "", limit: int = 1000) -> dict[str, Any]:
        """One page of a mass message's members: {"task_list": [{"userid", "status" (0 not sent, 2 sent),
        "send_time"}], "next_cursor"}."""
        body = {"msgid": msgid, "limit": limit, "cursor": cursor}
        return await self.call(self.contact_tokens,
                               lambda: self._contact.post("externalcontact/get_groupmsg_task", data=body))

    async def get_groupmsg_send_result(self, msgid: str, userid: str, *, cursor: str = "",
                                       limit: int = 1000) -> dict[str, Any]:
        """One page (≤ 1,000) of a member's customers for a mass message: {"send_list": [{"external_userid",
        "userid", "status" (0 not sent, 1 sent, 2 not a friend, 3 over the customer's limit), "send_time"}],
        "next_cursor"}."""
        body = {"msgid": msgid, "userid": userid, "limit": limit, "cursor": cursor}
        return await self.call(self.contact_tokens,
                               lambda: self._contact.post("externalcontact/get_groupmsg_send_result", data=body))

    async def remind_groupmsg_send(self, msgid: str) -> dict[str, Any]:
        """Remind the members of a mass message to send it (WeCom: at most 3 times per message per 24 hours)."""
        return await self.call(self.contact_tokens,
                               lambda: self._contact.post("externalcontact/remind_groupmsg_send",
                                                          data={"msgid": msgid}))
