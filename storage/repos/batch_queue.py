"""Writing a batch: the batch row, its whole audience as recipients (one INSERT ... SELECT), its WeCom tasks and
their counts (bot/batches/queue.py), then the OA fan-out's hand-over of queued recipients to the outbox
(bot/batches/fanout.py). Set-based: no statement per recipient.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, and_, case, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from leads.batches.reasons import EXCLUDED, OA, QUEUED, SANDBOXED
from storage.models import Batch, BatchRecipient, BatchTask, Lead, User


async def add_batch(session: AsyncSession, segment_id: int, user_id: int | None, message: dict[str, Any],
                    sandbox: bool, at: datetime) -> Batch:
    batch = Batch(segment_id=segment_id, created_by_user_id=user_id, message=message, sandbox=sandbox, status="queued",
                  counts={}, created_at=at)
    session.add(batch)
    await session.flush()
    return batch


async def insert_recipients(session: AsyncSession, batch_id: int, stmt: Select[Any], *, sandbox: bool,
                            at: datetime) -> None:
    """The whole audience into batch_recipients in one INSERT ... SELECT (excluded leads too, with the reason:
    the batch's report and each lead's timeline say why nothing was sent)."""
    aud = stmt.subquery("aud")
    status = case((aud.c.reason != "", literal(EXCLUDED)),
                  (and_(aud.c.channel == "wecom", literal(sandbox)), literal(SANDBOXED)), else_=literal(QUEUED))
    cols = ["batch_id", "lead_id", "channel", "status", "reason", "member_userid", "external_userid", "openid",
            "created_at", "updated_at"]
    source = select(literal(batch_id, Integer), aud.c.lead_id, aud.c.channel, status, aud.c.reason, aud.c.member,
                    aud.c.external_userid, aud.c.openid, literal(at, BatchRecipient.created_at.type),
                    literal(at, BatchRecipient.updated_at.type))
    await session.execute(insert(BatchRecipient).from_select(cols, source))


async def wecom_recipients(session: AsyncSession, batch_id: int) -> list[tuple[int, str, str]]:
    """(recipient id, member, external_userid) of the batch's WeCom recipients, by member then id."""
    rows = await session.execute(
        select(BatchRecipient.id, BatchRecipient.member_userid, BatchRecipient.external_userid)
        .where(BatchRecipient.batch_id == batch_id, BatchRecipient.channel == "wecom",
               BatchRecipient.status != EXCLUDED)
        .order_by(BatchRecipient.member_userid, BatchRecipient.id))
    return [(i, str(m), str(e)) for i, m, e in rows.all()]


async def add_task(session: AsyncSession, batch_id: int, member: str, chunk: int, ids: Sequence[int],
                   *, status: str, at: datetime) -> BatchTask:
    """A WeCom task for one chunk, and its recipients pointed at it (their ids are contiguous in member order:
    one UPDATE over the id range, no per-recipient statement)."""
    task = BatchTask(batch_id=batch_id, member_userid=member, chunk=chunk, recipients=len(ids), status=status,
                     reminders=[], created_at=at, next_check_at=at)
    session.add(task)
    await session.flush()
    await session.execute(update(BatchRecipient).where(
        BatchRecipient.batch_id == batch_id, BatchRecipient.member_userid == member,
        BatchRecipient.channel == "wecom", BatchRecipient.id >= min(ids), BatchRecipient.id <= max(ids))
        .values(task_id=task.id))
    return task


async def member_names(session: AsyncSession, wecom_userids: Sequence[str]) -> dict[str, str]:
    if not wecom_userids:
        return {}
    rows = await session.execute(select(User.wecom_userid, User.display_name, User.username)
                                 .where(User.wecom_userid.in_(sorted(set(wecom_userids)))))
    return {str(w): d or u for w, d, u in rows.all()}


async def set_counts(session: AsyncSession, batch_id: int, counts: dict[str, Any]) -> None:
    await session.execute(update(Batch).where(Batch.id == batch_id).values(counts=counts))


async def oa_pending(session: AsyncSession, limit: int) -> list[tuple[BatchRecipient, Batch, Lead, str | None]]:
    """OA recipients not yet handed to the outbox (oldest batch first), with their batch, lead and owner's name."""
    owner = aliased(User)
    stmt = (select(BatchRecipient, Batch, Lead, func.coalesce(func.nullif(owner.display_name, ""), owner.username))
            .join(Batch, Batch.id == BatchRecipient.batch_id).join(Lead, Lead.id == BatchRecipient.lead_id)
            .outerjoin(owner, owner.id == Lead.owner_user_id)
            .where(Batch.status == "queued", BatchRecipient.channel == "oa", BatchRecipient.status == QUEUED)
            .order_by(BatchRecipient.id).limit(limit))
    return [(r, b, lead, name) for r, b, lead, name in (await session.execute(stmt)).all()]


async def mark_oa(session: AsyncSession, recipient_id: int, outbox_id: int | None, at: datetime) -> None:
    """The recipient's template message is in the outbox (its row's status is the outcome from now on)."""
    await session.execute(update(BatchRecipient).where(BatchRecipient.id == recipient_id)
                          .values(status=OA, outbox_id=outbox_id, updated_at=at))


async def finish_fanned_out(session: AsyncSession) -> int:
    """Batches whose OA recipients are all handed over are "sent"; how many."""
    pending = select(BatchRecipient.id).where(BatchRecipient.batch_id == Batch.id, BatchRecipient.channel == "oa",
                                              BatchRecipient.status == QUEUED).exists()
    result = await session.execute(update(Batch).where(Batch.status == "queued", ~pending).values(status="sent"))
    return int(getattr(result, "rowcount", 0) or 0)
