"""Staging a race: wait until a request or transaction is blocked behind one the test holds open."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.backends import Backend


async def until_blocked(engine: AsyncEngine, backend: Backend, task: asyncio.Task, timeout: float = 10.0) -> None:
    """PostgreSQL: until a session of this database waits for a lock. SQLite (one pooled connection, held by
    the test's transaction): everything else queues for it, so a moment later the task must still be waiting.
    Either way the task must not have finished."""
    if not backend.is_production:
        await asyncio.sleep(0.5)
        assert not task.done(), "the task finished while the test's transaction was open"
        return
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with engine.connect() as conn:
            waiting = (await conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"))).scalar_one()
        assert not task.done(), "the task finished while the test's transaction was open"
        if waiting:
            return
        assert asyncio.get_running_loop().time() < deadline, "the task never waited for a lock"
        await asyncio.sleep(0.05)
