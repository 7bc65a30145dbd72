"""Segments: saved lead-list queries that batch messages go to (the lead list's own filter model, stored as its
query parameters; sdr_console/api/lead_list.py turns them back into a LeadFilter)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Segment, User


async def all_segments(session: AsyncSession, limit: int, offset: int) -> list[tuple[Segment, str | None]]:
    """Segments with their creator's username, newest first."""
    stmt = (select(Segment, User.username).outerjoin(User, User.id == Segment.created_by_user_id)
            .order_by(Segment.id.desc()).limit(limit).offset(offset))
    return [(s, name) for s, name in (await session.execute(stmt)).all()]


async def count_segments(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(Segment))).scalar_one())


async def get_segment(session: AsyncSession, segment_id: int) -> Segment | None:
    return await session.get(Segment, segment_id)


async def add_segment(session: AsyncSession, name: str, query: dict[str, Any], user_id: int | None) -> Segment | None:
    """The new segment, or None when the name is taken (the unique constraint decides, in a savepoint, so a
    double click cannot make two)."""
    segment = Segment(name=name, query=query, created_by_user_id=user_id)
    try:
        async with session.begin_nested():
            session.add(segment)
            await session.flush()
    except IntegrityError:
        return None
    return segment
