"""Figures the console's start page shows, each scoped like the lists they link to.

``owner_ids``: only leads assigned to one of these users (sdr_console/api/scoping.py owner_filter); None: all.
Merged-away and erased leads are not leads any more, so no figure counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Handoff, Lead, LeadTask


@dataclass(frozen=True, slots=True)
class LeadLine:
    id: int
    name: str | None
    stage: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TaskLine:
    id: int
    title: str
    due_at: datetime | None
    lead_id: int
    lead_name: str | None


def _live(owner_ids: list[int] | None) -> list[ColumnElement[bool]]:
    where = [Lead.merged_into_id.is_(None), Lead.erased_at.is_(None)]
    if owner_ids is not None:
        where.append(Lead.owner_user_id.in_(owner_ids))
    return where


async def leads_by_stage(session: AsyncSession, owner_ids: list[int] | None = None) -> dict[str, int]:
    """Live leads per stage."""
    stmt = select(Lead.stage, func.count()).where(*_live(owner_ids)).group_by(Lead.stage)
    return {stage: count for stage, count in (await session.execute(stmt)).all()}


async def open_handoffs(session: AsyncSession, owner_ids: list[int] | None = None) -> int:
    stmt = select(func.count()).select_from(Handoff).where(Handoff.status == "open")
    if owner_ids is not None:
        stmt = stmt.where(Handoff.lead_id.in_(select(Lead.id).where(Lead.owner_user_id.in_(owner_ids))))
    return (await session.execute(stmt)).scalar_one()


async def new_leads(session: AsyncSession, since: datetime, *, owner_ids: list[int] | None = None,
                    latest: int = 5) -> tuple[int, list[LeadLine]]:
    """How many live leads were created since ``since``, and the newest few."""
    where = [*_live(owner_ids), Lead.created_at >= since]
    count = (await session.execute(select(func.count()).select_from(Lead).where(*where))).scalar_one()
    rows = (await session.execute(select(Lead.id, Lead.display_name, Lead.stage, Lead.created_at).where(*where)
                                  .order_by(Lead.created_at.desc(), Lead.id.desc()).limit(latest))).all()
    return count, [LeadLine(*row) for row in rows]


async def leads_in_stage(session: AsyncSession, stage: str, *, owner_ids: list[int] | None = None,
                         latest: int = 5) -> tuple[int, list[LeadLine]]:
    """How many live leads wait in ``stage`` (MQLs for the SDRs), the longest-waiting first."""
    where = [*_live(owner_ids), Lead.stage == stage]
    count = (await session.execute(select(func.count()).select_from(Lead).where(*where))).scalar_one()
    rows = (await session.execute(select(Lead.id, Lead.display_name, Lead.stage, Lead.created_at).where(*where)
                                  .order_by(Lead.last_activity_at, Lead.id).limit(latest))).all()
    return count, [LeadLine(*row) for row in rows]


async def due_tasks(session: AsyncSession, user_id: int, until: datetime, *, limit: int = 8) -> tuple[int,
                                                                                                    list[TaskLine]]:
    """Open tasks assigned to ``user_id`` due before ``until`` (today's end: due today and overdue), earliest first."""
    where = [LeadTask.assignee_user_id == user_id, LeadTask.status == "open", LeadTask.due_at.is_not(None),
             LeadTask.due_at < until, Lead.erased_at.is_(None)]
    base = select(LeadTask.id).join(Lead, Lead.id == LeadTask.lead_id).where(*where)
    count = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    rows = (await session.execute(
        select(LeadTask.id, LeadTask.title, LeadTask.due_at, LeadTask.lead_id, Lead.display_name)
        .join(Lead, Lead.id == LeadTask.lead_id).where(*where)
        .order_by(LeadTask.due_at, LeadTask.id).limit(limit))).all()
    return count, [TaskLine(*row) for row in rows]
