"""Reads of the inbox outside its hot path. Storing, claiming and handling rows stay in bot/inbox/, where
the statements are tuned for the callback benchmark (bench/README.md)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboxEvent


async def count_inbox_events(session: AsyncSession) -> int:
    """How many callbacks were ever stored (whatever their status)."""
    return (await session.execute(select(func.count()).select_from(InboxEvent))).scalar_one()
