"""Handing inbox rows to the app's own handling by hand, and reading back where each row stands."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.inbox.tx import InboxHandling
from bot.ingress.events import OA, WECOM
from bot.keys import CONFIG, ENGINE, ROUTER, SERVICES, SESSIONS
from storage.models import InboxEvent


def handling(client: TestClient) -> InboxHandling:
    """Handles rows as the app's workers would (its router, services and config): for apps without workers."""
    app = client.server.app
    cfg = app[CONFIG]
    return InboxHandling(app[ENGINE], app[SESSIONS], app[ROUTER], app[SERVICES], cfg.inbox,
                         {OA: cfg.wechat.app_id, WECOM: cfg.wecom.corp_id})


async def statuses(engine: AsyncEngine) -> dict[int, tuple[str, int]]:
    """Every inbox row's (status, attempts) by id."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(InboxEvent.id, InboxEvent.status, InboxEvent.attempts))
        return {id_: (status, attempts) for id_, status, attempts in rows.all()}
