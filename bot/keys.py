"""Typed keys for everything the application owns."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.config import Config
from bot.context import Conversation, Services
from bot.dispatch import Router
from bot.inbox import InboxWriter
from bot.outbox import OutboxSender
from bot.pipeline import CallbackPipeline
from bot.processor import InboxProcessor
from leads.scoring import ScoreModel

CONFIG = web.AppKey("config", Config)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker)
REDIS = web.AppKey("redis", Any)
ROUTER = web.AppKey("router", Router)
SERVICES = web.AppKey("services", Services)
INBOX_WRITER = web.AppKey("inbox_writer", InboxWriter)
PROCESSOR = web.AppKey("processor", InboxProcessor)
PIPELINE = web.AppKey("pipeline", CallbackPipeline)
SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)
OUTBOX_SENDER = web.AppKey("outbox_sender", OutboxSender)
CONVERSATION = web.AppKey("conversation", Conversation)
SCORING = web.AppKey("scoring", ScoreModel)
