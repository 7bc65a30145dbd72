"""The timeline's side of a digest: each hand-off card merged into one gets assignment_events "digest".

Called by the outbox sender's merge (bot/outbox/digest.py, through the card methods' ``Digest.merged``), in the
transaction that marks the cards merged. Rows that are earlier digests carry no assignment: their cards were
recorded when they were first merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage
from storage.repos.assignments import add_assignment_event


async def cards_merged(session: AsyncSession, rows: Sequence[OutboxMessage], digest_id: int, at: datetime) -> None:
    for row in rows:
        assignment_id = (row.payload or {}).get("assignment_id")
        if row.lead_id is not None and isinstance(assignment_id, int):
            await add_assignment_event(session, assignment_id, row.lead_id, "digest", at=at,
                                       detail={"outbox_id": row.id, "digest_id": digest_id})
