"""WeCom JS-SDK: the agent ``jsapi_ticket`` shared through Redis, and the ``agentConfig`` signature.

A page inside WeCom (the chat toolbar's, /m/chat) calls ``wx.agentConfig`` with a signature over a
``jsapi_ticket`` of type ``agent_config`` (``GET /cgi-bin/ticket/get?type=agent_config``). WeCom allows 400
ticket fetches an hour per company (100 per app), so a ticket is fetched once and shared by every page and every
process until shortly before it expires: the same single-refresher cache as access tokens (bot/wechat/tokens.py,
a Redis lock so exactly one process fetches), under its own key.

The signature is Tencent's: SHA-1 of ``jsapi_ticket=...&noncestr=...&timestamp=...&url=...`` (keys in this
order, values raw, the URL without its ``#`` fragment). No wechatpy here: the console imports this module.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.wechat.tokens import AccessTokenCache

TICKET_TYPE = "agent_config"
# What getCurExternalContact needs; agentConfig is asked for nothing else.
JS_API_LIST = ("getCurExternalContact",)
MAX_URL_LEN = 2000

TicketFetcher = Callable[[], Awaitable[tuple[str, int]]]


def signature(ticket: str, noncestr: str, timestamp: int, url: str) -> str:
    """Tencent's JS-SDK signature (the same algorithm for ``config`` and ``agentConfig``)."""
    page = url.split("#", 1)[0]
    plain = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={page}"
    return hashlib.sha1(plain.encode("utf-8")).hexdigest()


def ticket_key(key_prefix: str, corp_id: str, agent_id: int) -> str:
    return f"{key_prefix}wecom:{corp_id}:agent:{agent_id}:jsapi_ticket"


def agent_ticket_cache(redis: Any, key_prefix: str, corp_id: str, agent_id: int,
                       fetch: TicketFetcher) -> AccessTokenCache:
    """The shared agent ticket: ``fetch`` (WeComAPI.get_agent_jsapi_ticket) runs in one process at a time,
    and only when Redis holds no live ticket. One instance per process (it queues this process's callers)."""
    return AccessTokenCache(redis, ticket_key(key_prefix, corp_id, agent_id), fetch)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """The arguments of ``wx.agentConfig`` (besides jsApiList and the callbacks), named as the JS-SDK names them."""

    corpid: str
    agentid: int
    timestamp: int
    nonceStr: str  # noqa: N815 (the JS-SDK's own spelling)
    signature: str

    def as_json(self) -> dict[str, Any]:
        return {"corpid": self.corpid, "agentid": self.agentid, "timestamp": self.timestamp,
                "nonceStr": self.nonceStr, "signature": self.signature, "jsApiList": list(JS_API_LIST)}


async def agent_config(tickets: AccessTokenCache, corp_id: str, agent_id: int, url: str, *, now: int,
                       nonce: str | None = None) -> AgentConfig:
    """The signed ``agentConfig`` for the page at ``url`` (the page's own location.href, fragment dropped)."""
    ticket = await tickets.get()
    noncestr = nonce or secrets.token_urlsafe(12)
    return AgentConfig(corp_id, agent_id, now, noncestr, signature(ticket, noncestr, now, url))
