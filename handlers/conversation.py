"""Talking with prospects in the OA: consent words, intents, content, the welcome, and the fallback to an SDR.

Reply handlers answer inline (pure: they read the message and the configuration); the process handlers of
the same events record what it meant after the answer, in the event's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from wechatpy.replies import ArticlesReply

from bot.capture.links import LinkTarget
from bot.config.capture import Intent
from bot.crypto.keyring import Purpose
from bot.dispatch import filters as F
from bot.dispatch.context import HandlerContext, ReplyContext, Services
from bot.dispatch.router import Router
from bot.ingress.events import OA, InboundEvent
from handlers import oa
from handlers.common import OA_CHANNEL
from leads.activity import Activity, HandOff, Touch
from leads.content import ContentItem
from leads.intents import matches_any
from leads.sources import Source, oa_scene_code
from storage.repos.activity_batch import record_activity
from storage.repos.erasure import erase_lead

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


def _text_activity(ev: InboundEvent, services: Services, at: datetime, meaning: Understanding) -> Activity:
    """The message's touch, the intent's score event, or (neither consent words nor an intent) a question for
    an SDR."""
    detail = {"intent": meaning.intent.name if meaning.intent else None, "consent": meaning.consent}
    intent = meaning.intent
    scored = (Touch(intent.score_event, oa.CONVERSATION, {"intent": intent.name}),) \
        if intent is not None and intent.score_event else ()  # a score event is a touchpoint of that kind
    activity = oa.describe_message(ev, services, at, detail, *scored)
    if intent is None and meaning.consent is None:
        activity = replace(activity, handoff=HandOff("no_intent", (ev.get("Content") or "")[:2000]))
    return activity


def describe_text(ev: InboundEvent, services: Services, at: datetime) -> Activity | None:
    """Text leaves touches (and perhaps a question for an SDR); consent words do more."""
    meaning = understand(services, ev.get("Content") or "")
    return None if meaning.consent is not None else _text_activity(ev, services, at, meaning)


@router.on(F.source(OA), F.msg_type("text"), describe=describe_text)
async def on_text(ctx: HandlerContext) -> None:
    meaning = understand(ctx.services, ctx.event.get("Content") or "")
    lead = await record_activity(ctx.leads, _text_activity(ctx.event, ctx.services, ctx.occurred_at, meaning),
                                 ctx.inbox_id)
    at, src = ctx.occurred_at, oa.CONVERSATION
    if meaning.consent == DELETE:
        await ctx.leads.add_touchpoint(lead, kind="data_erasure_request", source=src, occurred_at=at,
                                       inbox_id=ctx.inbox_id)
        await erase_lead(ctx.session, lead.id, ctx.now, hasher=ctx.config.keyring.hasher(Purpose.TOMBSTONE))
    elif meaning.consent is not None:
        granted = meaning.consent == RESUBSCRIBE
        await ctx.leads.set_consent(lead, "granted" if granted else "revoked", at)
        await ctx.leads.add_touchpoint(lead, kind="consent_granted" if granted else "consent_revoked", source=src,
                                       occurred_at=at, inbox_id=ctx.inbox_id, detail={"via": "keyword"})


def describe_click(ev: InboundEvent, services: Services, at: datetime) -> Activity:
    """A menu click, plus the score event of the intent its key names."""
    kind, _, name = (ev.get("EventKey") or "").partition(":")
    intent = _intent_named(services, name) if kind == "intent" else None
    scored = (Touch(intent.score_event, Source(OA_CHANNEL, "menu"), {"intent": intent.name, "via": "menu"}),) \
        if intent is not None and intent.score_event else ()
    return oa.describe_event(ev, services, at, *scored)


@router.on(F.source(OA), F.event("click"), describe=describe_click)
async def on_click(ctx: HandlerContext) -> None:
    await record_activity(ctx.leads, describe_click(ctx.event, ctx.services, ctx.occurred_at), ctx.inbox_id)
