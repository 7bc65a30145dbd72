"""The aiohttp application: routes, middleware and the lifetimes of everything it owns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import jieba
from aiohttp import web

from bot.capture.content import ContentLibrary, load_content_file
from bot.capture.links import LinkSigner
from bot.capture.routes import add_capture
from bot.capture.tracked import add_tracked_routes
from bot.config.core import Config
from bot.dispatch.context import Conversation, Services
from bot.dispatch.router import Router
from bot.handoff.crm_client import CrmWebhookClient
from bot.handoff.sla_scheduler import sla_ctx
from bot.handoff.wiring import handoff_events
from bot.inbox.gauge import IngestGauge
from bot.inbox.processor import InboxProcessor
from bot.inbox.writer import InboxWriter
from bot.ingress.events import OA, WECOM
from bot.ingress.pipeline import CallbackPipeline
from bot.ingress.routes import add_routes
from bot.jobs.builtin import builtin_jobs
from bot.jobs.registry import enabled_jobs
from bot.jobs.scheduler import jobs_ctx
from bot.journeys.wiring import journey_events
from bot.keys import (
    CONFIG,
    CONVERSATION,
    ENGINE,
    ENQUEUE,
    EVENTS,
    INBOX_WRITER,
    JOBS,
    OUTBOX_METHODS,
    OUTBOX_SENDER,
    PIPELINE,
    PROCESSOR,
    REDIS,
    ROUTER,
    SCORING,
    SERVICES,
    SESSIONS,
)
from bot.limits.web import add_rate_limits
from bot.outbox.enqueue import enqueue
from bot.outbox.methods import METHODS, ApiClients
from bot.outbox.sender import OutboxSender
from bot.serving.deadlines import quiet_disconnects
from bot.web.middleware import error_middleware
from leads.events import DomainEvents
from leads.intents import IntentMatcher, build_tokenizer
from leads.scoring import ScoreModel
from sdr_console.api import add_console_api
from sdr_console.mobile import add_mobile
from sdr_console.pages import add_console_pages
from storage.db import create_engine, is_sqlite, session_factory
from storage.migrate import is_current, upgrade
from storage.redis import create_redis
from storage.repos.content import upsert_content_items
from storage.repos.events import EventTx
from storage.repos.quadrant_actions import standard_events

log = logging.getLogger(__name__)
JIEBA_BASE = web.AppKey("jieba_base", jieba.Tokenizer)


class SchemaOutdated(RuntimeError):
    pass


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    engine = create_engine(cfg.database)
    try:
        if is_sqlite(cfg.database.url):
            await upgrade(engine)  # the embedded default keeps itself current
        elif not await is_current(engine):
            raise SchemaOutdated("the database schema is not at the latest migration: "
                                 "run `leadrelay db upgrade --config PATH` first")
        app[ENGINE] = engine
        app[SESSIONS] = session_factory(engine)
        yield
    finally:
        await engine.dispose()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    client = create_redis(app[CONFIG].redis.url)
    app[REDIS] = client
    yield
    await client.aclose()


async def conversation_ctx(app: web.Application) -> AsyncIterator[None]:
    """The intent matcher (jieba's dictionary loads once, here, never on a first message) and the content."""
    cfg = app[CONFIG].capture
    consent_words = [*cfg.bot.unsubscribe_keywords, *cfg.bot.resubscribe_keywords, *cfg.bot.delete_keywords]
    keywords = [k for intent in cfg.intents for k in intent.keywords] + consent_words
    base = app.get(JIEBA_BASE)
    tokenizer = await asyncio.get_running_loop().run_in_executor(None, lambda: build_tokenizer(keywords, base=base))
    items = list(cfg.content) + (list(load_content_file(cfg.content_file)) if cfg.content_file else [])
    if items:
        await upsert_content_items(app[ENGINE], items)
    library = ContentLibrary()
    await library.refresh(app[ENGINE])
    app[CONVERSATION] = Conversation(intents=IntentMatcher(cfg.intents, tokenizer, consent_words), content=library,
                                     links=LinkSigner.from_config(app[CONFIG]))
    yield


async def clients_ctx(app: web.Application) -> AsyncIterator[None]:
    from bot.wechat.api import OfficialAccountAPI, WeComAPI

    cfg = app[CONFIG]
    live = cfg.wechat.mode == "live"
    prefix = cfg.redis.key_prefix
    oa_api = OfficialAccountAPI(cfg.wechat, app[REDIS], prefix) if live else None
    wecom_api = WeComAPI(cfg.wecom, app[REDIS], prefix) if live and cfg.wecom.enabled else None
    app[SERVICES] = Services(config=cfg, redis=app[REDIS], oa_api=oa_api, wecom_api=wecom_api,
                             conversation=app[CONVERSATION], scoring=app[SCORING], events=app[EVENTS])
    yield
    for api in (oa_api, wecom_api):
        if api is not None:
            await api.aclose()


async def outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    """Live mode: send what handlers recorded in the outbox. Sandbox mode keeps it recorded only, except the
    CRM webhook (not WeChat): whenever ``crm.webhook_url`` is set, the sender runs for it."""
    services = app[SERVICES]
    cfg = app[CONFIG]
    crm = CrmWebhookClient(cfg.crm) if cfg.crm.webhook_url else None
    if services.oa_api is None and services.wecom_api is None and crm is None:
        yield
        return
    sender = OutboxSender(app[ENGINE], ApiClients(oa=services.oa_api, wecom=services.wecom_api, crm=crm),
                          outbound=cfg.capture.outbound, redis=app[REDIS], key_prefix=cfg.redis.key_prefix)
    task = asyncio.create_task(sender.run(), name="outbox-sender")
    app[OUTBOX_SENDER] = sender
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if crm is not None:
        await crm.aclose()


async def inbox_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    app_ids = {OA: cfg.wechat.app_id, WECOM: cfg.wecom.corp_id}
    gauge = IngestGauge()
    processor = InboxProcessor(app[ENGINE], app[SESSIONS], app[ROUTER], app[SERVICES], cfg.inbox, app_ids,
                               gauge=gauge)
    writer = InboxWriter(app[ENGINE], max_batch=cfg.inbox.max_batch, flushers=cfg.inbox.flushers,
                         on_stored=processor.notify, gauge=gauge)
    processor.start()
    writer.start()
    await processor.sweep(grace_s=0)  # events a killed process answered but never handled; then the inbox_sweep job
    app[PROCESSOR], app[INBOX_WRITER] = processor, writer
    app[PIPELINE] = CallbackPipeline(app[ROUTER], app[SERVICES], writer)
    yield
    await writer.stop()
    await processor.stop()


def domain_events(config: Config) -> DomainEvents[EventTx]:
    """Who hears what scoring and stage changes report, in the reporter's transaction: today the quadrant
    actions; routing and journeys subscribe here (``.subscribe(BecameMQL, ...)``), storage/ stays as it is."""
    return journey_events(config, handoff_events(config, standard_events(config.scoring.rules.actions)))


def create_app(config: Config, *, router: Router | None = None,
               jieba_base: jieba.Tokenizer | None = None) -> web.Application:
    """``jieba_base``: an initialised tokenizer whose dictionary is copied instead of loaded from disk (tests
    build many apps in one process; loading takes about a second each)."""
    from handlers import build_router

    app = web.Application(middlewares=[error_middleware, quiet_disconnects],
                          client_max_size=config.server.max_body_bytes)
    app[CONFIG] = config
    if jieba_base is not None:
        app[JIEBA_BASE] = jieba_base
    app[ROUTER] = router or build_router()
    app[SCORING] = ScoreModel(config.scoring.rules)  # pure and immutable: built once, shared by every path
    app[OUTBOX_METHODS] = frozenset(METHODS)
    app[ENQUEUE] = enqueue  # the console's hand-off replies (it may not import bot.outbox)
    app[EVENTS] = domain_events(config)
    app[JOBS] = enabled_jobs(builtin_jobs(app), config.jobs.enabled)  # an unknown name in [jobs] fails here
    # Cleaned up in reverse: the jobs stop (a running one finishes) before the SLA timers, the inbox, Redis and
    # the engine go.
    app.cleanup_ctx.extend([database_ctx, redis_ctx, conversation_ctx, clients_ctx, outbox_ctx, inbox_ctx, sla_ctx,
                          jobs_ctx])
    add_routes(app, config)  # the WeChat and WeCom callbacks
    add_capture(app)  # H5 forms (/f/<form>) and the mini-program API (/api/mp/...)
    add_tracked_routes(app)  # /c/<token>
    add_console_api(app)  # the console's JSON API and /healthz
    add_rate_limits(app)  # [rate_limits] on the forms, the mini-program API and /c/ (never the callbacks)
    add_console_pages(app)  # / and /console/: sign-in, sessions, CSRF, the pages (inside the rate limits)
    add_mobile(app)  # /m/: the sales mobile inbox and the chat toolbar (the console's sessions)
    return app
