"""Reading batches back: one batch with its tasks, its recipients' counts and a keyset page of their outcomes
(``GET /api/batches/{id}`` and its console page), and a lead's place in batches (its timeline,
storage/repos/timeline.py). The list of batches is storage/repos/batch_list.py.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Batch, BatchRecipient, BatchTask, Lead, OutboxMessage, User


async def counts_of(session: AsyncSession, batch_id: int) -> dict[str, dict[str, int]]:
    """{"channel": {...}, "reason": {...}, "status": {...}} of a batch's recipients."""
    rows = await session.execute(
        select(BatchRecipient.channel, BatchRecipient.reason, BatchRecipient.status, func.count())
        .where(BatchRecipient.batch_id == batch_id)
        .group_by(BatchRecipient.channel, BatchRecipient.reason, BatchRecipient.status))
    out: dict[str, dict[str, int]] = {"channel": {}, "reason": {}, "status": {}}
    for channel, reason, status, n in rows.all():
        for key, value in (("channel", channel), ("reason", reason), ("status", status)):
            if value:
                out[key][value] = out[key].get(value, 0) + n
    return out


async def get_batch(session: AsyncSession, batch_id: int) -> Batch | None:
    return await session.get(Batch, batch_id)


async def tasks_of(session: AsyncSession, batch_id: int) -> list[BatchTask]:
    stmt = select(BatchTask).where(BatchTask.batch_id == batch_id).order_by(BatchTask.id)
    return list((await session.execute(stmt)).scalars())


@dataclass(frozen=True, slots=True)
class RecipientRow:
    recipient: BatchRecipient
    display_name: str | None
    outbox_status: str | None  # an OA recipient's template message


async def recipients_page(session: AsyncSession, batch_id: int, after: int, limit: int, *,
                          readable: Collection[int] | None = None) -> list[RecipientRow]:
    """Recipients after id ``after`` (a keyset page), with the lead's name and an OA message's status.
    ``readable``: the owners whose leads the caller may read (None: all); other leads' names are left out."""
    stmt = (select(BatchRecipient, Lead.display_name, Lead.owner_user_id, OutboxMessage.status)
            .join(Lead, Lead.id == BatchRecipient.lead_id)
            .outerjoin(OutboxMessage, OutboxMessage.id == BatchRecipient.outbox_id)
            .where(BatchRecipient.batch_id == batch_id, BatchRecipient.id > after)
            .order_by(BatchRecipient.id).limit(limit))
    allowed = None if readable is None else set(readable)
    return [RecipientRow(r, name if allowed is None or owner in allowed else None, status)
            for r, name, owner, status in (await session.execute(stmt)).all()]


async def timeline_rows(session: AsyncSession, lead_id: int, condition: Any,
                        take: int) -> list[tuple[BatchRecipient, dict[str, Any], str | None, str | None]]:
    """The lead's batch recipients (newest first): with the batch's message, its sender's name, and an OA
    recipient's outbox status."""
    author = func.coalesce(func.nullif(User.display_name, ""), User.username)
    stmt = (select(BatchRecipient, Batch.message, author, OutboxMessage.status)
            .join(Batch, Batch.id == BatchRecipient.batch_id)
            .outerjoin(User, User.id == Batch.created_by_user_id)
            .outerjoin(OutboxMessage, OutboxMessage.id == BatchRecipient.outbox_id)
            .where(BatchRecipient.lead_id == lead_id))
    if condition is not None:
        stmt = stmt.where(condition)
    stmt = stmt.order_by(BatchRecipient.created_at.desc(), BatchRecipient.id.desc()).limit(take)
    return [(r, dict(m or {}), a, s) for r, m, a, s in (await session.execute(stmt)).all()]

