"""Collecting a batch's WeCom results (bot/batches/collect.py): the due tasks, each read afresh under its lock,
the recipients' outcomes as WeCom reports them, and the SDR task that is the fallback when a member never
confirms. Outcomes are written per task in set-based UPDATEs (IN lists of at most a page of WeCom's results).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Batch, BatchRecipient, BatchTask, OutboxMessage
from storage.repos import lead_work


@dataclass(frozen=True, slots=True)
class DueTask:
    task: BatchTask
    batch: Batch
    outbox_status: str | None
    outbox_response: dict[str, Any] | None


async def due_tasks(session: AsyncSession, now: datetime, limit: int) -> list[DueTask]:
    """Tasks to look at now: queued (is the call made?) or waiting (has the member sent?), due first."""
    stmt = (select(BatchTask, Batch, OutboxMessage.status, OutboxMessage.response)
            .join(Batch, Batch.id == BatchTask.batch_id)
            .outerjoin(OutboxMessage, OutboxMessage.id == BatchTask.outbox_id)
            .where(BatchTask.status.in_(("queued", "waiting")), BatchTask.next_check_at <= now)
            .order_by(BatchTask.next_check_at, BatchTask.id).limit(limit))
    return [DueTask(t, b, s, dict(r) if r else None) for t, b, s, r in (await session.execute(stmt)).all()]


async def lock_task(session: AsyncSession, task_id: int) -> BatchTask | None:
    """The task read afresh under its row lock (PostgreSQL): two passes never apply the same results twice."""
    stmt = select(BatchTask).where(BatchTask.id == task_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_recipient_status(session: AsyncSession, task_id: int, external_userids: Sequence[str], status: str,
                               at: datetime, *, only: Sequence[str] = (), errcode: int | None = None) -> None:
    """One status for these customers of a task (IN lists of ≤ 1,000: a page of WeCom's results)."""
    ids = list(external_userids)
    for i in range(0, len(ids), 1000):
        stmt = update(BatchRecipient).where(BatchRecipient.task_id == task_id,
                                            BatchRecipient.external_userid.in_(ids[i:i + 1000]))
        if only:
            stmt = stmt.where(BatchRecipient.status.in_(only))
        await session.execute(stmt.values(status=status, errcode=errcode, updated_at=at))


async def set_task_recipients(session: AsyncSession, task_id: int, status: str, at: datetime, *,
                              only: Sequence[str], errcode: int | None = None) -> None:
    """Every recipient of the task still in one of ``only`` gets ``status``."""
    await session.execute(update(BatchRecipient).where(BatchRecipient.task_id == task_id,
                                                       BatchRecipient.status.in_(only))
                          .values(status=status, errcode=errcode, updated_at=at))


async def first_lead_of(session: AsyncSession, task_id: int, statuses: Sequence[str]) -> tuple[int | None, int]:
    """The task's first lead still in ``statuses``, and how many are."""
    stmt = (select(func.min(BatchRecipient.lead_id), func.count())
            .where(BatchRecipient.task_id == task_id, BatchRecipient.status.in_(statuses)))
    lead_id, n = (await session.execute(stmt)).one()
    return lead_id, int(n)


async def add_sdr_task(session: AsyncSession, lead_id: int, title: str, assignee: int | None, at: datetime) -> int:
    """The fallback: an open task on the lead for the batch's creator (the lead's 360 and start page show it)."""
    task = await lead_work.add_task(session, lead_id, title[:200], due_at=at, assignee_user_id=assignee,
                          created_by_user_id=None, now=at)
    return task.id
