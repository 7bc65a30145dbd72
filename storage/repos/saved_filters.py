"""A user's saved lead-list filters (named query parameters; later the segments of batch sends)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import SavedFilter


async def filters_of(session: AsyncSession, user_id: int) -> list[SavedFilter]:
    stmt = select(SavedFilter).where(SavedFilter.user_id == user_id).order_by(SavedFilter.name, SavedFilter.id)
    return list((await session.execute(stmt)).scalars())


async def count_of(session: AsyncSession, user_id: int) -> int:
    stmt = select(func.count()).select_from(SavedFilter).where(SavedFilter.user_id == user_id)
    return int((await session.execute(stmt)).scalar_one())


async def named(session: AsyncSession, user_id: int, name: str) -> SavedFilter | None:
    stmt = select(SavedFilter).where(SavedFilter.user_id == user_id, SavedFilter.name == name)
    return (await session.execute(stmt)).scalar_one_or_none()


async def own_filter(session: AsyncSession, user_id: int, filter_id: int) -> SavedFilter | None:
    """The filter, if it is this user's: someone else's is as good as missing."""
    stmt = select(SavedFilter).where(SavedFilter.id == filter_id, SavedFilter.user_id == user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_filter(session: AsyncSession, user_id: int, name: str,
                     query: dict[str, Any]) -> SavedFilter | None:
    """The new filter, or None when the user has one of this name (a save a moment ago, e.g. a double click:
    the unique constraint decides, in a savepoint so the caller's transaction goes on)."""
    saved = SavedFilter(user_id=user_id, name=name, query=query)
    try:
        async with session.begin_nested():
            session.add(saved)
            await session.flush()
    except IntegrityError:
        return None
    return saved


async def remove_filter(session: AsyncSession, saved: SavedFilter) -> None:
    await session.execute(delete(SavedFilter).where(SavedFilter.id == saved.id))
