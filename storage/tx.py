"""Transactions for web requests that create leads, run again when they lost a race:

- a concurrent callback created the same identity first (a unique violation): the next run finds it;
- what the transaction read changed before it could lock it (``Retry``: a lead being erased or merged while
  this request waited for its lock): the next run reads it as committed, tombstones included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")


class Retry(Exception):
    """What this transaction read changed under it: roll back and run the work again."""


async def in_transaction(sessions: async_sessionmaker, work: Callable[[AsyncSession], Awaitable[T]],
                         attempts: int = 3) -> T:
    for attempt in range(1, attempts + 1):
        try:
            async with sessions() as session, session.begin():
                return await work(session)
        except (IntegrityError, Retry):
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
