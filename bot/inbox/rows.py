"""The inbox rows' own statements around handling: which rows are due, the claim, the per-sender order check,
and recording a failed attempt.

These stay here instead of in storage/repos/: they are the callback hot path, and their statements are tuned
for the callback benchmark (bench/README.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from storage.models import InboxEvent

log = logging.getLogger(__name__)
_table = InboxEvent.__table__

# Rows are locked in id order; rows another process holds are skipped, not waited for.
CLAIM = select(_table.c.id, _table.c.source, _table.c.from_user, _table.c.payload) \
    .order_by(_table.c.id).with_for_update(skip_locked=True)


def due_for_handling(now: datetime) -> ColumnElement[bool]:
    """Inbox rows still pending whose retry backoff, if any, has run out."""
    return and_(_table.c.status == "pending",
                _table.c.next_attempt_at.is_(None) | (_table.c.next_attempt_at <= now))


async def first_pending_elsewhere(session: AsyncSession, rows: Sequence[Any]) -> dict[tuple[str, str], int]:
    """Per sender of these rows: the first pending inbox row before the last of them that is not one of them.

    Bounded by the last row's id: handled roughly in arrival order, what is pending before a batch is only
    what other workers hold right now, however long the backlog behind it.
    """
    if not rows:
        return {}
    found = await session.execute(
        select(_table.c.source, _table.c.from_user, func.min(_table.c.id))
        .where(_table.c.status == "pending", _table.c.id < max(r.id for r in rows),
               tuple_(_table.c.source, _table.c.from_user).in_({(r.source, r.from_user) for r in rows}),
               _table.c.id.not_in([r.id for r in rows]))
        .group_by(_table.c.source, _table.c.from_user))
    return {(source, from_user): first for source, from_user, first in found.all()}


async def record_failure(engine: AsyncEngine, inbox_id: int, exc: BaseException, *, retry_in: float | None,
                         max_attempts: int, now: datetime) -> None:
    """One more attempt on the row, with its error; retried after ``retry_in`` (None: backoff), or given up."""
    async with engine.begin() as conn:
        attempts = (await conn.execute(
            select(_table.c.attempts).where(_table.c.id == inbox_id))).scalar_one() + 1
        delay = retry_in if retry_in is not None else min(2 ** attempts, 600)
        give_up = attempts >= max_attempts
        await conn.execute(update(_table).where(_table.c.id == inbox_id, _table.c.status == "pending").values(
            attempts=attempts, last_error=f"{type(exc).__name__}: {exc}"[:2000],
            status="failed" if give_up else "pending", next_attempt_at=now + timedelta(seconds=delay),
        ))
    if give_up:
        log.error("inbox row %s failed %d times; left as failed for an operator", inbox_id, attempts)
