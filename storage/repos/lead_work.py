"""The work people do on a lead in the 360: notes, tasks and tags. Each function runs in the caller's
transaction, so the change and its audit entry commit (or roll back) together."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LeadNote, LeadTag, LeadTask, User

OPEN, DONE = "open", "done"


async def add_note(session: AsyncSession, lead_id: int, body: str, *, author_user_id: int | None,
                   author_label: str, now: datetime) -> LeadNote:
    note = LeadNote(lead_id=lead_id, body=body, author_user_id=author_user_id, author_label=author_label[:64],
                    created_at=now)
    session.add(note)
    await session.flush()
    return note


async def list_notes(session: AsyncSession, lead_id: int, limit: int, offset: int) -> list[LeadNote]:
    """Newest first."""
    stmt = (select(LeadNote).where(LeadNote.lead_id == lead_id).order_by(LeadNote.id.desc())
            .limit(limit).offset(offset))
    return list((await session.execute(stmt)).scalars())


async def add_task(session: AsyncSession, lead_id: int, title: str, *, due_at: datetime | None,
                   assignee_user_id: int | None, created_by_user_id: int | None, now: datetime) -> LeadTask:
    task = LeadTask(lead_id=lead_id, title=title, due_at=due_at, assignee_user_id=assignee_user_id, status=OPEN,
                    created_by_user_id=created_by_user_id, created_at=now)
    session.add(task)
    await session.flush()
    return task


async def find_task(session: AsyncSession, lead_id: int, task_id: int) -> LeadTask | None:
    """The task, only when it belongs to this lead (a task id under another lead's URL is unknown)."""
    task = await session.get(LeadTask, task_id)
    return task if task is not None and task.lead_id == lead_id else None


async def mark_done(session: AsyncSession, task: LeadTask, now: datetime) -> bool:
    """False when it was done already (done_at keeps the first completion)."""
    if task.status == DONE:
        return False
    task.status, task.done_at = DONE, now
    await session.flush()
    return True


async def list_tasks(session: AsyncSession, lead_id: int, status: str | None, limit: int,
                     offset: int) -> list[tuple[LeadTask, str | None]]:
    """(task, assignee's username): open ones first, by due date (undated last), then the rest newest first."""
    stmt = (select(LeadTask, User.username).outerjoin(User, User.id == LeadTask.assignee_user_id)
            .where(LeadTask.lead_id == lead_id))
    if status:
        stmt = stmt.where(LeadTask.status == status)
    stmt = stmt.order_by(LeadTask.status.desc(), LeadTask.due_at.is_(None), LeadTask.due_at, LeadTask.id.desc())
    return [(t, name) for t, name in (await session.execute(stmt.limit(limit).offset(offset))).all()]


async def username_of(session: AsyncSession, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    return (await session.execute(select(User.username).where(User.id == user_id))).scalar_one_or_none()


async def tags_of(session: AsyncSession, lead_id: int) -> list[str]:
    stmt = select(LeadTag.tag).where(LeadTag.lead_id == lead_id).order_by(LeadTag.tag)
    return list((await session.execute(stmt)).scalars())


async def change_tags(session: AsyncSession, lead_id: int, add: Iterable[str], remove: Iterable[str],
                      now: datetime) -> None:
    """Adds and removes; adding a tag the lead has (the bot may add one concurrently) is no error."""
    gone = set(remove)
    if gone:
        await session.execute(delete(LeadTag).where(LeadTag.lead_id == lead_id, LeadTag.tag.in_(gone)))
    new = sorted(set(add) - gone)
    if new:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        await session.execute(insert(LeadTag).values([{"lead_id": lead_id, "tag": t, "created_at": now}
                                                      for t in new]).on_conflict_do_nothing())
