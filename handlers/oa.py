"""Official Account events and messages: who it is, where they came from, what they did."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.dispatch import filters as F
from bot.dispatch.context import HandlerContext, PrepareContext, Services
from bot.dispatch.router import Router
from bot.ingress.events import OA, InboundEvent
from handlers.common import OA_CHANNEL, oa_identity, oa_key, oa_user_info, source_for, unionid_identity
from leads.activity import Activity, Touch
from leads.sources import Source, oa_scene_code
from storage.repos.activity_batch import record_activity

router = Router("oa")
# Events that are the user's own action in the OA (they open the 48-h customer-service window).
CONVERSATION = Source(OA_CHANNEL, "conversation")
_USER_ACTIONS = {"subscribe", "scan", "click", "view", "location", "scancode_push", "scancode_waitmsg"}


@router.prepare(F.source(OA), F.event("subscribe"))
async def follower_info(ctx: PrepareContext) -> dict[str, Any]:
    """The follower's UnionID (user/info, up to its time-out), before the event's transaction."""
    return {"user_info": await oa_user_info(ctx, ctx.event.from_user)}


@router.on(F.source(OA), F.event("subscribe", "scan"))
async def follow_or_scan(ctx: HandlerContext) -> None:
    ev = ctx.event
    info = ctx.prepared.get("user_info") or {}
    lead = await ctx.leads.resolve([oa_identity(ctx), *unionid_identity(info.get("unionid"))],
                                   now=ctx.occurred_at, inbox_id=ctx.inbox_id)
    code = oa_scene_code(ev.event, ev.get("EventKey"))
    source = source_for(ctx, code, channel=OA_CHANNEL, scene="qrcode" if code else "follow")
    await ctx.leads.merge_profile(lead, {"oa_following": True})
    await ctx.leads.note_oa_interaction(lead, ctx.occurred_at)
    await ctx.leads.add_touchpoint(lead, kind=f"oa_{ev.event}", source=source, occurred_at=ctx.occurred_at,
                                   inbox_id=ctx.inbox_id, detail={"event_key": ev.get("EventKey")})


@router.on(F.source(OA), F.event("unsubscribe"))
async def unfollow(ctx: HandlerContext) -> None:
    lead = await ctx.leads.resolve([oa_identity(ctx)], now=ctx.occurred_at, inbox_id=ctx.inbox_id)
    await ctx.leads.set_consent(lead, "revoked", ctx.occurred_at)
    await ctx.leads.merge_profile(lead, {"oa_following": False})
    source = source_for(ctx, None, channel=OA_CHANNEL, scene="unfollow")
    await ctx.leads.add_touchpoint(lead, kind="oa_unsubscribe", source=source, occurred_at=ctx.occurred_at,
                                   inbox_id=ctx.inbox_id)


def describe_event(ev: InboundEvent, services: Services, at: datetime, *extra: Touch) -> Activity:
    """Menu clicks, link views, location reports...: a touch with the event's key as detail."""
    scene = "menu" if ev.event in ("click", "view") else (ev.event or "event")
    touch = Touch(f"oa_{ev.event}", Source(OA_CHANNEL, scene), {"event_key": ev.get("EventKey")})
    return Activity(oa_key(ev), at, (touch, *extra), oa_interaction=ev.event in _USER_ACTIONS)


@router.on(F.source(OA), F.msg_type("event"), describe=describe_event)
async def other_event(ctx: HandlerContext) -> None:
    await record_activity(ctx.leads, describe_event(ctx.event, ctx.services, ctx.occurred_at), ctx.inbox_id)


def describe_message(ev: InboundEvent, services: Services, at: datetime, detail: dict[str, object] | None = None,
                     *extra: Touch) -> Activity:
    """A message from the user: a conversation touch on their lead, which also opens the 48-h window."""
    base = {"msg_id": ev.get("MsgId"), "content": (ev.get("Content") or "")[:2000]}
    touch = Touch(f"oa_message_{ev.msg_type}", CONVERSATION, {**base, **(detail or {})})
    return Activity(oa_key(ev), at, (touch, *extra), oa_interaction=True)


@router.on(F.source(OA), describe=describe_message)
async def message(ctx: HandlerContext) -> None:
    """Image, voice, location, link... (text has its own handler in handlers/conversation.py)."""
    await record_activity(ctx.leads, describe_message(ctx.event, ctx.services, ctx.occurred_at), ctx.inbox_id)
