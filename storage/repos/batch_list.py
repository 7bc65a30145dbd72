"""The list of batches (``GET /api/batches`` and the console's 群发消息 page): newest first, a keyset page, each
with its segment's and creator's names, and its recipients' counts per channel and per outcome.

Outcomes are counted as the batch report shows each recipient (leads/batches/reasons.py ``outcome``: an OA
recipient's outcome is its template message's outbox status), in one GROUP BY over the page's batches, so the
list and the report cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leads.batches.reasons import outcome
from storage.models import Batch, BatchRecipient, OutboxMessage, Segment, User


@dataclass(frozen=True, slots=True)
class BatchListRow:
    batch: Batch
    segment_name: str | None
    creator: str | None  # the creator's username (None: a service token)
    creator_name: str | None  # their display name, for people


@dataclass
class BatchCounts:
    channels: dict[str, int] = field(default_factory=dict)  # wecom / oa -> recipients
    outcomes: dict[str, int] = field(default_factory=dict)  # outcome code -> recipients (excluded ones too)
    total: int = 0


async def list_batches(session: AsyncSession, creator_ids: list[int] | None, before: int | None,
                       limit: int) -> list[BatchListRow]:
    """Batches with id below ``before`` (a keyset page), newest first; ``creator_ids`` None: everyone's, else
    only those created by these users (a service token's batches have no creator and are then left out)."""
    stmt = (select(Batch, Segment.name, User.username, func.coalesce(func.nullif(User.display_name, ""), User.username))
            .outerjoin(Segment, Segment.id == Batch.segment_id)
            .outerjoin(User, User.id == Batch.created_by_user_id))
    if creator_ids is not None:
        stmt = stmt.where(Batch.created_by_user_id.in_(creator_ids))
    if before is not None:
        stmt = stmt.where(Batch.id < before)
    rows = await session.execute(stmt.order_by(Batch.id.desc()).limit(limit))
    return [BatchListRow(b, name, creator, shown) for b, name, creator, shown in rows.all()]


async def batch_counts(session: AsyncSession, batch_ids: Sequence[int]) -> dict[int, BatchCounts]:
    """Per batch: recipients per channel and per outcome code (every batch asked for gets an entry)."""
    out = {int(i): BatchCounts() for i in batch_ids}
    if not out:
        return out
    br = BatchRecipient
    stmt = (select(br.batch_id, br.channel, br.status, OutboxMessage.status, func.count())
            .outerjoin(OutboxMessage, OutboxMessage.id == br.outbox_id)
            .where(br.batch_id.in_(sorted(out)))
            .group_by(br.batch_id, br.channel, br.status, OutboxMessage.status))
    for batch_id, channel, status, outbox_status, n in (await session.execute(stmt)).all():
        counts = out[int(batch_id)]
        code, _ = outcome(status, "", outbox_status)
        counts.outcomes[code] = counts.outcomes.get(code, 0) + n
        if channel:
            counts.channels[channel] = counts.channels.get(channel, 0) + n
        counts.total += n
    return out
