"""Official Account events and messages: who it is, where they came from, what they did."""

from __future__ import annotations

from typing import Any

from bot.dispatch import filters as F
from bot.dispatch.context import HandlerContext, PrepareContext
from bot.dispatch.router import Router
from bot.ingress.events import OA
from handlers.common import OA_CHANNEL, oa_identity, oa_user_info, source_for, unionid_identity
from leads.sources import oa_scene_code
from storage.models import Lead

router = Router("oa")
# Events that are the user's own action in the OA (they open the 48-h customer-service window).
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


@router.on(F.source(OA), F.msg_type("event"))
async def other_event(ctx: HandlerContext) -> None:
    """Menu clicks, link views, location reports...: a touch with the event's key as detail."""
    ev = ctx.event
    lead = await ctx.leads.resolve([oa_identity(ctx)], now=ctx.occurred_at, inbox_id=ctx.inbox_id)
    if ev.event in _USER_ACTIONS:
        await ctx.leads.note_oa_interaction(lead, ctx.occurred_at)
    scene = "menu" if ev.event in ("click", "view") else (ev.event or "event")
    await ctx.leads.add_touchpoint(lead, kind=f"oa_{ev.event}", occurred_at=ctx.occurred_at, inbox_id=ctx.inbox_id,
                                   source=source_for(ctx, None, channel=OA_CHANNEL, scene=scene),
                                   detail={"event_key": ev.get("EventKey")})


async def record_message(ctx: HandlerContext, detail: dict[str, object] | None = None) -> Lead:
    """A message from the user: a conversation touch on their lead, which also opens the 48-h window."""
    ev = ctx.event
    lead = await ctx.leads.resolve([oa_identity(ctx)], now=ctx.occurred_at, inbox_id=ctx.inbox_id)
    await ctx.leads.note_oa_interaction(lead, ctx.occurred_at)
    base = {"msg_id": ev.get("MsgId"), "content": (ev.get("Content") or "")[:2000]}
    await ctx.leads.add_touchpoint(lead, kind=f"oa_message_{ev.msg_type}", occurred_at=ctx.occurred_at,
                                   inbox_id=ctx.inbox_id, detail={**base, **(detail or {})},
                                   source=source_for(ctx, None, channel=OA_CHANNEL, scene="conversation"))
    return lead


@router.on(F.source(OA))
async def message(ctx: HandlerContext) -> None:
    """Image, voice, location, link... (text has its own handler in handlers/conversation.py)."""
    await record_message(ctx)
