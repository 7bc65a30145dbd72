"""The cluster job "batch_messages": each pass fans out a slice of OA template messages and collects the due
WeCom tasks' results (with reminders and the SDR fallback). One process of the cluster runs it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.batches.collect import collect
from bot.batches.fanout import Enqueue, fan_out
from bot.capture.links import LinkSigner
from bot.config.core import Config
from bot.wechat.api import WeComAPI
from storage.models import utcnow

JOB_NAME = "batch_messages"
EVERY_S = 60.0


async def run_batches(sessions: async_sessionmaker, api: WeComAPI | None, cfg: Config, links: LinkSigner,
                      enqueue: Enqueue, *, now: datetime | None = None) -> tuple[int, int]:
    """(OA messages enqueued, WeCom tasks looked at) in one pass."""
    now = now or utcnow()
    fanned = await fan_out(sessions, enqueue, cfg, links, now=now)
    collected = await collect(sessions, api, now=now, max_per_day=cfg.batch.remind_max_per_day)
    return fanned, collected
