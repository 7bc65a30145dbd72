"""Counts the console's start page shows: leads by stage and the open hand-off queue."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Handoff, Lead


async def leads_by_stage(session: AsyncSession) -> dict[str, int]:
    """Live leads per stage: merged-away and erased leads are not leads any more."""
    stmt = (select(Lead.stage, func.count()).where(Lead.merged_into_id.is_(None), Lead.erased_at.is_(None))
            .group_by(Lead.stage))
    return {stage: count for stage, count in (await session.execute(stmt)).all()}


async def open_handoffs(session: AsyncSession) -> int:
    stmt = select(func.count()).select_from(Handoff).where(Handoff.status == "open")
    return (await session.execute(stmt)).scalar_one()
