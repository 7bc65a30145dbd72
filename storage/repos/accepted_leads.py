"""Accepted leads for ``GET /api/exports/accepted.csv``: one row per accepted assignment, newest first, streamed
in batches (the assignee's name from a join, each batch's phones from one query)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Assignment, Lead, User
from storage.repos.lead_search import company_expr, dialect_of, phones_of

BATCH = 2000
MAX_EXPORT = 1_000_000
ACCEPTED = "accepted"


def _accepted(since: datetime | None, until: datetime | None, owner_ids: list[int] | None) -> Any:
    cond = [Assignment.status == ACCEPTED, Lead.erased_at.is_(None)]
    if since is not None:
        cond.append(Assignment.decided_at >= since)
    if until is not None:
        cond.append(Assignment.decided_at < until)
    if owner_ids is not None:
        cond.append(Assignment.user_id.in_(owner_ids or [-1]))
    return cond


async def accepted_count(session: AsyncSession, *, since: datetime | None, until: datetime | None,
                         owner_ids: list[int] | None) -> int:
    stmt = (select(func.count()).select_from(Assignment).join(Lead, Lead.id == Assignment.lead_id)
            .where(*_accepted(since, until, owner_ids)))
    return int((await session.execute(stmt)).scalar_one())


async def accepted_rows(session: AsyncSession, *, since: datetime | None, until: datetime | None,
                        owner_ids: list[int] | None, batch: int = BATCH) -> AsyncIterator[list[tuple[Any, ...]]]:
    """Batches of (lead_id, accepted_at, salesperson, company, name, phone, stage, quadrant, rule, assignment_id);
    ``phone`` in full: the caller masks it."""
    person = func.coalesce(func.nullif(User.display_name, ""), User.username)
    stmt = (select(Lead.id, Assignment.decided_at, person, company_expr(dialect_of(session)), Lead.display_name,
                   Lead.stage, Lead.quadrant, Assignment.rule, Assignment.id)
            .join(Lead, Lead.id == Assignment.lead_id).join(User, User.id == Assignment.user_id)
            .where(*_accepted(since, until, owner_ids))
            .order_by(Assignment.decided_at.desc(), Assignment.id.desc()).limit(MAX_EXPORT))
    result = await session.stream(stmt.execution_options(yield_per=batch))
    async for part in result.partitions(batch):
        phones = await phones_of(session, [row[0] for row in part])
        yield [(lead_id, at, who, company, name, phones.get(lead_id), stage, quadrant, rule, assignment_id)
               for lead_id, at, who, company, name, stage, quadrant, rule, assignment_id in part]
