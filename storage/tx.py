"""Transactions for web requests that create leads: a concurrent callback may create the same identity
first, which shows up as a unique violation; the request then simply runs again and finds it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")


async def in_transaction(sessions: async_sessionmaker, work: Callable[[AsyncSession], Awaitable[T]],
                         attempts: int = 3) -> T:
    for attempt in range(1, attempts + 1):
        try:
            async with sessions() as session, session.begin():
                return await work(session)
        except IntegrityError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
