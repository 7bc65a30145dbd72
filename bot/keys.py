"""Typed keys for everything the application owns.

The service classes are named for type checkers only: reading a key (the console does) must not import the
inbox, the fast lane, the outbox sender or wechatpy. tests/test_layers.py holds that line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

    from bot.config.core import Config
    from bot.dispatch.context import Conversation, Services
    from bot.dispatch.router import Router
    from bot.handoff.sla_scheduler import SlaRunner
    from bot.inbox.processor import InboxProcessor
    from bot.inbox.writer import InboxWriter
    from bot.ingress.pipeline import CallbackPipeline
    from bot.jobs.registry import Job
    from bot.jobs.scheduler import JobRunner
    from bot.outbox.sender import OutboxSender
    from leads.events import DomainEvents
    from leads.scoring import ScoreModel
    from storage.repos.events import EventTx

CONFIG: web.AppKey[Config] = web.AppKey("config")
ENGINE: web.AppKey[AsyncEngine] = web.AppKey("engine")
SESSIONS: web.AppKey[async_sessionmaker] = web.AppKey("sessions")
REDIS: web.AppKey[Any] = web.AppKey("redis")
ROUTER: web.AppKey[Router] = web.AppKey("router")
SERVICES: web.AppKey[Services] = web.AppKey("services")
INBOX_WRITER: web.AppKey[InboxWriter] = web.AppKey("inbox_writer")
PROCESSOR: web.AppKey[InboxProcessor] = web.AppKey("processor")
PIPELINE: web.AppKey[CallbackPipeline] = web.AppKey("pipeline")
SCHEDULER: web.AppKey[AsyncIOScheduler] = web.AppKey("scheduler")  # JOB_RUNNER's: the enabled jobs, by name
JOBS: web.AppKey[tuple[Job, ...]] = web.AppKey("jobs")  # registered and enabled ([jobs] enabled)
JOB_RUNNER: web.AppKey[JobRunner] = web.AppKey("job_runner")
# Who hears what scoring and stage changes report (leads/events.py); built once in create_app.
EVENTS: web.AppKey[DomainEvents[EventTx]] = web.AppKey("events")
OUTBOX_SENDER: web.AppKey[OutboxSender] = web.AppKey("outbox_sender")
CONVERSATION: web.AppKey[Conversation] = web.AppKey("conversation")
SCORING: web.AppKey[ScoreModel] = web.AppKey("scoring")
# The outbox method names this app can send (the console filters by them without importing the sender).
OUTBOX_METHODS: web.AppKey[frozenset[str]] = web.AppKey("outbox_methods")
# bot.outbox.enqueue.enqueue: the console records its sends (hand-off replies) without importing the outbox.
ENQUEUE: web.AppKey[Any] = web.AppKey("enqueue")
# The hand-off SLA timers' scheduler (bot/handoff/sla_scheduler.py); absent when [jobs] enabled leaves out handoff_sla.
SLA_RUNNER: web.AppKey[SlaRunner] = web.AppKey("sla_runner")
