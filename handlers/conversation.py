"""Talking with prospects in the OA: consent words, intents, content, the welcome, and the fallback to an SDR.

Reply handlers answer inline (pure: they read the message and the configuration); the process handlers of
the same events record what it meant after the answer, in the event's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from wechatpy.replies import ArticlesReply

from bot.capture.links import LinkTarget
from bot.config.capture import Intent
from bot.crypto.keyring import Purpose
from bot.dispatch import filters as F
from bot.dispatch.context import HandlerContext, ReplyContext, Services
from bot.dispatch.router import Router
from bot.ingress.events import OA
from handlers import oa
from handlers.common import OA_CHANNEL, oa_identity, source_for
from leads.content import ContentItem
from leads.intents import matches_any
from leads.sources import oa_scene_code
from storage.repos.erasure import erase_lead
from storage.repos.handoffs import open_handoff

router = Router("conversation")
UNSUBSCRIBE, RESUBSCRIBE, DELETE = "unsubscribe", "resubscribe", "delete"
_MAX_ARTICLES = 8


@dataclass(frozen=True, slots=True)
class Understanding:
    consent: str | None = None
    intent: Intent | None = None


def understand(services: Services, text: str) -> Understanding:
    bot = services.config.capture.bot
    matcher = services.conversation.intents
    tokens = matcher.tokens(text)
    for action, keywords in ((DELETE, bot.delete_keywords), (UNSUBSCRIBE, bot.unsubscribe_keywords),
                             (RESUBSCRIBE, bot.resubscribe_keywords)):
        if keywords and matches_any(matcher, text, keywords, tokens):
            return Understanding(consent=action)
    found = matcher.match(text, tokens)
    if found is None:
        return Understanding()
    return Understanding(intent=next(i for i in services.config.capture.intents if i.name == found.name))


def _intent_named(services: Services, name: str) -> Intent | None:
    return next((i for i in services.config.capture.intents if i.name == name), None)


def news(ctx: ReplyContext, items: list[ContentItem]) -> str:
    """A news (articles) reply whose links are tracked for this recipient."""
    conversation = ctx.services.conversation
    base = ctx.services.config.server.public_url.rstrip("/")
    reply = ArticlesReply(source=ctx.event.to_user, target=ctx.event.from_user)
    for item in items[:_MAX_ARTICLES]:
        token = conversation.links.token(LinkTarget(item.id, "oa_openid", ctx.event.from_user))
        reply.add_article({"title": item.title, "description": item.summary, "image": item.cover,
                           "url": f"{base}/c/{token}"})
    return reply.render()


def intent_reply(ctx: ReplyContext, intent: Intent) -> str:
    library = ctx.services.conversation.content
    items = [item for cid in intent.content if (item := library.get(cid)) is not None]
    return news(ctx, items) if items else ctx.text(intent.reply)


@router.reply(F.source(OA), F.msg_type("text"))
async def answer_text(ctx: ReplyContext) -> str | None:
    bot = ctx.services.config.capture.bot
    meaning = understand(ctx.services, ctx.event.get("Content") or "")
    replies = {UNSUBSCRIBE: bot.unsubscribe_reply, RESUBSCRIBE: bot.resubscribe_reply, DELETE: bot.delete_reply}
    if meaning.consent is not None:
        return ctx.text(replies[meaning.consent])
    if meaning.intent is not None:
        return intent_reply(ctx, meaning.intent)
    return ctx.text(bot.fallback_reply)


@router.reply(F.source(OA), F.event("subscribe"))
async def welcome(ctx: ReplyContext) -> str | None:
    cfg = ctx.services.config
    code = oa_scene_code("subscribe", ctx.event.get("EventKey"))
    channel = cfg.channels[code].channel if code in cfg.channels else None
    welcome_cfg = cfg.capture.welcome
    return ctx.text(welcome_cfg.oa_by_channel.get(channel or "", welcome_cfg.oa_default))


@router.reply(F.source(OA), F.event("click"))
async def menu_click(ctx: ReplyContext) -> str | None:
    """Menu keys: ``content:<id>`` sends that content, ``intent:<name>`` answers as that intent would."""
    kind, _, name = (ctx.event.get("EventKey") or "").partition(":")
    if kind == "content" and (item := ctx.services.conversation.content.get(name)) is not None:
        return news(ctx, [item])
    if kind == "intent" and (intent := _intent_named(ctx.services, name)) is not None:
        return intent_reply(ctx, intent)
    return None


@router.on(F.source(OA), F.msg_type("text"))
async def on_text(ctx: HandlerContext) -> None:
    text = ctx.event.get("Content") or ""
    meaning = understand(ctx.services, text)
    detail = {"intent": meaning.intent.name if meaning.intent else None, "consent": meaning.consent}
    lead = await oa.record_message(ctx, detail)
    at, src = ctx.occurred_at, source_for(ctx, None, channel=OA_CHANNEL, scene="conversation")
    if meaning.consent == DELETE:
        await ctx.leads.add_touchpoint(lead, kind="data_erasure_request", source=src, occurred_at=at,
                                       inbox_id=ctx.inbox_id)
        await erase_lead(ctx.session, lead.id, ctx.now, hasher=ctx.config.keyring.hasher(Purpose.TOMBSTONE))
    elif meaning.consent is not None:
        granted = meaning.consent == RESUBSCRIBE
        await ctx.leads.set_consent(lead, "granted" if granted else "revoked", at)
        await ctx.leads.add_touchpoint(lead, kind="consent_granted" if granted else "consent_revoked", source=src,
                                       occurred_at=at, inbox_id=ctx.inbox_id, detail={"via": "keyword"})
    elif meaning.intent is not None:
        if meaning.intent.score_event:  # a score event is a touchpoint of that kind
            await ctx.leads.add_touchpoint(lead, kind=meaning.intent.score_event, source=src, occurred_at=at,
                                           inbox_id=ctx.inbox_id, detail={"intent": meaning.intent.name})
    else:
        await open_handoff(ctx.session, lead_id=lead.id, inbox_id=ctx.inbox_id, reason="no_intent",
                           message=text[:2000], at=at)


@router.on(F.source(OA), F.event("click"))
async def on_click(ctx: HandlerContext) -> None:
    await oa.other_event(ctx)
    kind, _, name = (ctx.event.get("EventKey") or "").partition(":")
    intent = _intent_named(ctx.services, name) if kind == "intent" else None
    if intent is not None and intent.score_event:
        lead = await ctx.leads.resolve([oa_identity(ctx)], now=ctx.occurred_at, inbox_id=ctx.inbox_id)
        await ctx.leads.add_touchpoint(lead, kind=intent.score_event, occurred_at=ctx.occurred_at,
                                       inbox_id=ctx.inbox_id, detail={"intent": intent.name, "via": "menu"},
                                       source=source_for(ctx, None, channel=OA_CHANNEL, scene="menu"))
