"""What the console shows of journeys: counts per journey and per waiting position, and enrolment pages."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import JourneyEnrolment, JourneyStep, Lead

_E = JourneyEnrolment


@dataclass(frozen=True, slots=True)
class JourneyCounts:
    active: int = 0
    done: int = 0
    exited: int = 0
    waiting: dict[str, int] | None = None  # position -> active enrolments whose next step it is

    @property
    def entered(self) -> int:
        return self.active + self.done + self.exited


@dataclass(frozen=True, slots=True)
class EnrolmentRow:
    id: int
    lead_id: int
    lead_name: str
    status: str
    position: str
    trigger: str
    reason: str
    enrolled_at: datetime
    due_at: datetime | None
    ended_at: datetime | None
    attempts: int
    last_error: str | None


async def journey_counts(session: AsyncSession) -> dict[str, JourneyCounts]:
    """Per journey id: enrolments by status, and the active ones by position (two grouped scans)."""
    by_status: dict[str, dict[str, int]] = defaultdict(dict)
    for journey_id, status, n in await session.execute(
            select(_E.journey_id, _E.status, func.count()).group_by(_E.journey_id, _E.status)):
        by_status[journey_id][status] = n
    waiting: dict[str, dict[str, int]] = defaultdict(dict)
    for journey_id, position, n in await session.execute(
            select(_E.journey_id, _E.position, func.count()).where(_E.status == "active")
            .group_by(_E.journey_id, _E.position)):
        waiting[journey_id][position] = n
    return {j: JourneyCounts(s.get("active", 0), s.get("done", 0), s.get("exited", 0), waiting.get(j, {}))
            for j, s in by_status.items()}


async def enrolment_page(session: AsyncSession, journey_id: str, *, status: str | None, position: str | None,
                         before: int | None, limit: int, owner_ids: Collection[int] | None) -> list[EnrolmentRow]:
    """Newest first, ``limit`` rows before id ``before``; ``owner_ids``: only leads these users own."""
    stmt = (select(_E.id, _E.lead_id, func.coalesce(Lead.display_name, ""), _E.status, _E.position, _E.trigger,
                   _E.reason, _E.enrolled_at, _E.due_at, _E.ended_at, _E.attempts, _E.last_error)
            .join(Lead, Lead.id == _E.lead_id).where(_E.journey_id == journey_id).order_by(_E.id.desc()).limit(limit))
    if status is not None:
        stmt = stmt.where(_E.status == status)
    if position is not None:
        stmt = stmt.where(_E.position == position)
    if before is not None:
        stmt = stmt.where(_E.id < before)
    if owner_ids is not None:
        stmt = stmt.where(Lead.owner_user_id.in_(sorted(owner_ids)))
    return [EnrolmentRow(*row) for row in await session.execute(stmt)]


async def timeline_steps(session: AsyncSession, lead_id: int, condition: Any, take: int) -> list[JourneyStep]:
    """The lead's journey steps for its timeline, newest first (ix_journey_steps_lead_id_at)."""
    stmt = select(JourneyStep).where(JourneyStep.lead_id == lead_id)
    if condition is not None:
        stmt = stmt.where(condition)
    stmt = stmt.order_by(JourneyStep.at.desc(), JourneyStep.id.desc()).limit(take)
    return list((await session.execute(stmt)).scalars())
