"""Due tasks waiting for their WeCom reminder (the job ``task_reminders``, bot/tasks/reminders.py).

A task is due for a reminder when it is open, its due time has come and ``reminded_at`` is empty. It goes to
its assignee, or, unassigned, to its creator: only an enabled user with a WeCom userid (a disabled one gets
nothing; one without a userid is reminded once they have one). Rows are claimed with ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so two processes running the job at once each remind a different set of tasks; the
reminder and ``reminded_at`` are written in the claiming transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leads import access
from storage.models import Lead, LeadTask, User
from storage.repos.teams import teammate_ids

OPEN = "open"


@dataclass(frozen=True, slots=True)
class DueTask:
    id: int
    person_id: int  # who is reminded: the assignee, else the creator
    lead_id: int
    title: str
    due_at: datetime
    lead_name: str
    company: str
    lead_owner_id: int | None
    erased: bool  # the lead's personal data is gone: nothing to remind about


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: int
    role: str
    wecom_userid: str
    teammates: frozenset[int]  # members of the user's teams (the user included): whose leads a team lead sees


def responsible() -> Any:
    """The SQL expression for whom a task is for: its assignee, or its creator when nobody is assigned."""
    return func.coalesce(LeadTask.assignee_user_id, LeadTask.created_by_user_id)


async def claim_due_tasks(session: AsyncSession, now: datetime, limit: int) -> list[DueTask]:
    """Up to ``limit`` due, unreminded tasks of reachable users, oldest due first, locked for this transaction."""
    person = responsible()
    stmt = (select(LeadTask.id, person.label("person")).join(User, User.id == person)
            .where(LeadTask.status == OPEN, LeadTask.due_at.is_not(None), LeadTask.due_at <= now,
                   LeadTask.reminded_at.is_(None), User.disabled_at.is_(None), User.wecom_userid.is_not(None),
                   User.wecom_userid != "")
            .order_by(LeadTask.due_at, LeadTask.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        # Locks the task rows only: a concurrent run skips them instead of waiting to send them twice.
        stmt = stmt.with_for_update(of=LeadTask, skip_locked=True)
    claimed = {row.id: int(row.person) for row in (await session.execute(stmt)).all()}
    if not claimed:
        return []
    rows = (await session.execute(
        select(LeadTask.id, LeadTask.lead_id, LeadTask.title, LeadTask.due_at, Lead.display_name, Lead.profile,
               Lead.owner_user_id, Lead.erased_at)
        .join(Lead, Lead.id == LeadTask.lead_id).where(LeadTask.id.in_(claimed))
        .order_by(LeadTask.due_at, LeadTask.id))).all()
    return [DueTask(id=r.id, person_id=claimed[r.id], lead_id=r.lead_id, title=r.title or "", due_at=r.due_at,
                    lead_name=r.display_name or str((r.profile or {}).get("name") or ""),
                    company=str((r.profile or {}).get("company") or ""), lead_owner_id=r.owner_user_id,
                    erased=r.erased_at is not None) for r in rows]


async def recipients(session: AsyncSession, user_ids: set[int]) -> dict[int, Recipient]:
    users = (await session.execute(select(User).where(User.id.in_(user_ids)))).scalars()
    found: dict[int, Recipient] = {}
    for user in users:
        team_scope = access.scope(user.role, access.LEAD_READ) is access.TEAM
        mates = await teammate_ids(session, user.id) if team_scope else [user.id]
        found[user.id] = Recipient(user.id, user.role, user.wecom_userid or "", frozenset(mates))
    return found


async def mark_reminded(session: AsyncSession, task_ids: list[int], now: datetime) -> None:
    if task_ids:
        await session.execute(update(LeadTask).where(LeadTask.id.in_(task_ids)).values(reminded_at=now))
