"""Small reads the 360 page needs besides the lead itself: its identities, the open duplicate suggestions and
merge conflicts that name it, and the people a task may be assigned to. Each is one bounded query."""

from __future__ import annotations

from sqlalchemy import case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import DuplicateSuggestion, Identity, Lead, MergeConflict, User

OPEN = "open"
MAX_ROWS = 50


async def identities_of(session: AsyncSession, lead_id: int) -> list[Identity]:
    stmt = select(Identity).where(Identity.lead_id == lead_id).order_by(Identity.id).limit(MAX_ROWS)
    return list((await session.execute(stmt)).scalars())


async def open_suggestions(session: AsyncSession, lead_id: int) -> list[tuple[DuplicateSuggestion, Lead]]:
    """Open duplicate suggestions on either side of this lead, each with the other lead."""
    other = aliased(Lead)
    stmt = (select(DuplicateSuggestion, other)
            .join(other, other.id == case((DuplicateSuggestion.lead_id == lead_id, DuplicateSuggestion.other_lead_id),
                                       else_=DuplicateSuggestion.lead_id))
            .where(DuplicateSuggestion.status == OPEN,
                   or_(DuplicateSuggestion.lead_id == lead_id, DuplicateSuggestion.other_lead_id == lead_id))
            .order_by(DuplicateSuggestion.id.desc()).limit(MAX_ROWS))
    return [(s, lead) for s, lead in (await session.execute(stmt)).all()]


async def open_conflicts(session: AsyncSession, lead_id: int) -> list[MergeConflict]:
    stmt = (select(MergeConflict)
            .where(MergeConflict.status == OPEN,
                   or_(MergeConflict.lead_id == lead_id, MergeConflict.other_lead_id == lead_id))
            .order_by(MergeConflict.id.desc()).limit(MAX_ROWS))
    return list((await session.execute(stmt)).scalars())


async def assignable_users(session: AsyncSession) -> list[User]:
    """Enabled users, by name: who a task may be assigned to."""
    stmt = select(User).where(User.disabled_at.is_(None)).order_by(User.username).limit(500)
    return list((await session.execute(stmt)).scalars())
