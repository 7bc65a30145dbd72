"""Helpers shared by handlers: the sender's identities and best-effort enrichment from WeChat.

The WeChat lookups take a PrepareContext: they run in prepare handlers, after the ack and outside the event's
transaction (bot/dispatch/router.py), never while the inbox batch holds its row locks.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.dispatch.context import HandlerContext, PrepareContext
from bot.errors import WeChatAPIError
from bot.ingress.events import InboundEvent
from bot.logs.redact import short_id
from leads.identity import OA_OPENID, UNIONID, WECOM_EXTERNAL, IdentityKey
from leads.sources import Source, resolve_source

log = logging.getLogger(__name__)

OA_CHANNEL = "wechat_oa"
WECOM_CHANNEL = "wecom"
# Lookups that fail must not lose the touch: the event is recorded without the extra identity.
_LOOKUP_ERRORS = (WeChatAPIError, OSError, TimeoutError)


def oa_identity(ctx: HandlerContext) -> IdentityKey:
    return oa_key(ctx.event)


def oa_key(event: InboundEvent) -> IdentityKey:
    return IdentityKey(OA_OPENID, event.app_id, event.from_user)


def unionid_identity(unionid: str | None) -> list[IdentityKey]:
    # UnionIDs are unique across one open platform account, which is the scope LeadRelay serves.
    return [IdentityKey(UNIONID, "", unionid)] if unionid else []


async def oa_user_info(ctx: PrepareContext, openid: str) -> dict[str, Any]:
    api = ctx.services.oa_api
    if api is None:
        return {}
    try:
        return await api.user_info(openid)
    except _LOOKUP_ERRORS as exc:
        log.warning("user_info for %s failed, continuing without UnionID: %s", short_id(openid), exc)
        return {}


async def wecom_contact(ctx: PrepareContext, external_userid: str) -> dict[str, Any]:
    api = ctx.services.wecom_api
    if api is None:
        return {}
    try:
        return (await api.get_external_contact(external_userid)).get("external_contact", {})
    except _LOOKUP_ERRORS as exc:
        log.warning("externalcontact/get for %s failed, continuing without UnionID: %s", short_id(external_userid),
                    exc)
        return {}


def wecom_identity(ctx: HandlerContext, external_userid: str) -> IdentityKey:
    return IdentityKey(WECOM_EXTERNAL, ctx.event.app_id, external_userid)


def source_for(ctx: HandlerContext, code: str | None, *, channel: str, scene: str) -> Source:
    return resolve_source(code, ctx.config.channels, Source(channel=channel, scene=scene))
