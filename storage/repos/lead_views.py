"""What the console reads about one lead: the lead itself, its stored score and its stage history."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Lead, LeadScore, StageTransition


async def find_lead(session: AsyncSession, lead_id: int, *, lock: bool = False) -> Lead | None:
    """The lead row, merged or not; ``lock`` holds it for the transaction (PostgreSQL; SQLite has one writer)."""
    locking = lock and session.bind is not None and session.bind.dialect.name == "postgresql"
    return await session.get(Lead, lead_id, with_for_update=locking)


async def stored_score(session: AsyncSession, lead_id: int) -> LeadScore | None:
    return await session.get(LeadScore, lead_id)


async def stage_history(session: AsyncSession, lead_id: int) -> list[StageTransition]:
    rows = await session.execute(select(StageTransition).where(StageTransition.lead_id == lead_id)
                                 .order_by(StageTransition.id))
    return list(rows.scalars())


async def latest_transition(session: AsyncSession, lead_id: int) -> StageTransition | None:
    rows = await session.execute(select(StageTransition).where(StageTransition.lead_id == lead_id)
                                 .order_by(StageTransition.id.desc()).limit(1))
    return rows.scalar_one_or_none()
