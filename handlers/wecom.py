"""WeCom customer contact events: a company member added, edited or lost an external contact."""

from __future__ import annotations

from typing import Any

from bot.dispatch import filters as F
from bot.dispatch.context import HandlerContext, PrepareContext
from bot.dispatch.router import Router
from bot.ingress.events import WECOM
from bot.outbox.enqueue import enqueue
from handlers.common import WECOM_CHANNEL, source_for, unionid_identity, wecom_contact, wecom_identity
from storage.models import Lead

# send_welcome_msg accepts the add event's WelcomeCode once, within 20 s of the event.
WELCOME_CODE_LIFE_S = 20.0

router = Router("wecom")


_ADDED = ("add_external_contact", "add_half_external_contact")


@router.prepare(F.source(WECOM), F.change_type(*_ADDED))
async def added_contact_info(ctx: PrepareContext) -> dict[str, Any]:
    """The contact's name and UnionID (externalcontact/get), before the event's transaction."""
    external_userid = ctx.event.get("ExternalUserID")
    return {"contact": await wecom_contact(ctx, external_userid)} if external_userid else {}


@router.on(F.source(WECOM), F.change_type(*_ADDED))
async def contact_added(ctx: HandlerContext) -> None:
    ev = ctx.event
    external_userid = ev.get("ExternalUserID")
    if not external_userid:
        return
    contact = ctx.prepared.get("contact") or {}
    lead = await ctx.leads.resolve(
        [wecom_identity(ctx, external_userid), *unionid_identity(contact.get("unionid"))],
        now=ctx.occurred_at, inbox_id=ctx.inbox_id, display_name=contact.get("name"),
    )
    state = ev.get("State")
    source = source_for(ctx, state, channel=WECOM_CHANNEL, scene="contact_me" if state else "add_contact")
    await ctx.leads.merge_profile(lead, {"wecom_owner": ev.get("UserID")})
    await ctx.leads.add_touchpoint(lead, kind="wecom_add_contact", source=source, occurred_at=ctx.occurred_at,
                                   inbox_id=ctx.inbox_id,
                                   detail={"owner": ev.get("UserID"), "welcome_code": ev.get("WelcomeCode")})
    code = ev.get("WelcomeCode")
    if code:
        await _enqueue_welcome(ctx, lead, code, state)


async def _enqueue_welcome(ctx: HandlerContext, lead: Lead, code: str, state: str | None) -> None:
    """The welcome for the "contact me" State, in this event's transaction: it exists iff the event is done.

    The outbox wakes its sender right after this transaction commits (storage/outbox_wake.py). The deadline
    runs from the add event, not from our processing: a backlog must not make us send a dead code.
    Keyed by the inbox row, so a reprocessed event or a redelivered callback never sends twice.
    """
    welcome = ctx.config.capture.welcome
    text = welcome.wecom_by_state.get(state or "") or welcome.wecom_default
    if not text:
        return
    payload = {"welcome_code": code, "text": text, "not_after": ctx.occurred_at.timestamp() + WELCOME_CODE_LIFE_S}
    await enqueue(ctx.session, target="wecom", method="wecom.welcome", payload=payload,
                  idempotency_key=f"welcome:{ctx.inbox_id}", sandbox=ctx.config.wechat.mode == "sandbox",
                  lead_id=lead.id, outbound=ctx.config.capture.outbound)


@router.on(F.source(WECOM), F.change_type("edit_external_contact", "del_external_contact", "del_follow_user"))
async def contact_changed(ctx: HandlerContext) -> None:
    ev = ctx.event
    change = ev.get("ChangeType") or ""
    external_userid = ev.get("ExternalUserID")
    if not external_userid:
        return
    lead = await ctx.leads.resolve([wecom_identity(ctx, external_userid)],
                                   now=ctx.occurred_at, inbox_id=ctx.inbox_id)
    if change == "del_follow_user":
        # The customer removed the company member: no more marketing through WeCom.
        await ctx.leads.set_consent(lead, "revoked", ctx.occurred_at)
    await ctx.leads.add_touchpoint(lead, kind=f"wecom_{change}", occurred_at=ctx.occurred_at, inbox_id=ctx.inbox_id,
                                   source=source_for(ctx, None, channel=WECOM_CHANNEL, scene="contact"),
                                   detail={"owner": ev.get("UserID")})


@router.on(F.source(WECOM))
async def other(ctx: HandlerContext) -> None:
    """Messages and other events from employees to the agent app carry no customer: nothing to record."""
