"""Tasks across leads, for ``GET /api/tasks`` and the console's 我的任务 page.

A task belongs to its responsible person: the assignee, or the creator when nobody is assigned (the same rule
the WeCom reminders follow, storage/repos/task_reminders.py). Tasks of erased leads are left out: their titles
are blank and there is nothing left to do for the person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import Lead, LeadTask, User
from storage.repos.task_reminders import responsible

OPEN = "open"


@dataclass(frozen=True, slots=True)
class TaskFilter:
    people: list[int] | None  # whose tasks the caller may see; None: everyone's
    person: int | None = None  # one responsible person
    status: str | None = OPEN  # open | done; None: both
    overdue: bool | None = None  # True: open and past due at ``now``; False: anything else


@dataclass(frozen=True, slots=True)
class TaskRow:
    task: LeadTask
    person_id: int | None
    assignee: str | None  # the assignee's username
    lead_name: str
    company: str
    lead_owner_id: int | None


def _where(f: TaskFilter, now: datetime) -> list[Any]:
    person = responsible()
    where: list[Any] = [Lead.erased_at.is_(None)]
    if f.people is not None:
        where.append(person.in_(f.people))  # an empty list matches nothing
    if f.person is not None:
        where.append(person == f.person)
    if f.status is not None:
        where.append(LeadTask.status == f.status)
    late = and_(LeadTask.status == OPEN, LeadTask.due_at.is_not(None), LeadTask.due_at < now)
    if f.overdue is True:
        where.append(late)
    elif f.overdue is False:
        where.append(not_(late))
    return where


def _base(f: TaskFilter, now: datetime) -> Select[Any]:
    return select(LeadTask.id).join(Lead, Lead.id == LeadTask.lead_id).where(*_where(f, now))


async def count_tasks(session: AsyncSession, f: TaskFilter, now: datetime) -> int:
    return int((await session.execute(select(func.count()).select_from(_base(f, now).subquery()))).scalar_one())


async def list_tasks(session: AsyncSession, f: TaskFilter, now: datetime, limit: int, offset: int) -> list[TaskRow]:
    """Open before done; by due time (undated last), then newest first."""
    assignee = aliased(User)
    stmt = (select(LeadTask, responsible().label("person"), assignee.username, Lead.display_name, Lead.profile,
                   Lead.owner_user_id)
            .join(Lead, Lead.id == LeadTask.lead_id)
            .outerjoin(assignee, assignee.id == LeadTask.assignee_user_id)
            .where(*_where(f, now))
            .order_by(LeadTask.status.desc(), LeadTask.due_at.is_(None), LeadTask.due_at, LeadTask.id.desc())
            .limit(limit).offset(offset))
    rows = (await session.execute(stmt)).all()
    return [TaskRow(task=r[0], person_id=r.person, assignee=r.username,
                    lead_name=r.display_name or str((r.profile or {}).get("name") or ""),
                    company=str((r.profile or {}).get("company") or ""), lead_owner_id=r.owner_user_id)
            for r in rows]

