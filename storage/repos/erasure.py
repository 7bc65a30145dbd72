"""Erasing a person's personal data on request (PIPL): identities, profile, message texts and payloads go;
what remains is an anonymous lead row with its touch counts (kind, channel, scene, time) for the funnel."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Handoff,
    Identity,
    InboxEvent,
    Lead,
    LeadMerge,
    MergeConflict,
    MiniProgramSession,
    OutboxMessage,
    Touchpoint,
)

ERASED = "erased"


async def erase_lead(session: AsyncSession, lead_id: int, now: datetime) -> bool:
    """Erase in the caller's transaction. False when there is no such (surviving) lead."""
    lead = await session.get(Lead, lead_id, with_for_update=session.bind.dialect.name == "postgresql")
    if lead is None or lead.merged_into_id is not None:
        return False
    values = list((await session.execute(select(Identity.value).where(Identity.lead_id == lead_id))).scalars())
    inbox_rows = (await session.execute(
        select(InboxEvent.id, InboxEvent.dedup_key).join(Touchpoint, Touchpoint.inbox_id == InboxEvent.id)
        .where(Touchpoint.lead_id == lead_id).distinct())).all()
    # Raw callbacks hold OpenIDs and message texts; the dedup key keeps its uniqueness as a hash.
    for inbox_id, dedup_key in inbox_rows:
        await session.execute(update(InboxEvent).where(InboxEvent.id == inbox_id).values(
            payload="", reply=None, from_user=ERASED, dedup_key=f"{ERASED}:{_digest(dedup_key)}"))
    await session.execute(update(Touchpoint).where(Touchpoint.lead_id == lead_id).values(detail={}, source_code=None))
    await session.execute(update(Handoff).where(Handoff.lead_id == lead_id).values(message="", status="closed",
                                                                                    closed_at=now))
    await session.execute(update(OutboxMessage).where(OutboxMessage.lead_id == lead_id,
                                                      OutboxMessage.status.in_(("pending", "sandboxed")))
                          .values(status="cancelled", last_error="the recipient's data was erased"))
    await session.execute(update(OutboxMessage).where(OutboxMessage.lead_id == lead_id).values(payload={}))
    await session.execute(delete(MiniProgramSession).where(MiniProgramSession.lead_id == lead_id))
    if values:
        for model in (LeadMerge, MergeConflict):
            await session.execute(update(model).where(model.identity_value.in_(values)).values(identity_value=ERASED))
    await session.execute(delete(Identity).where(Identity.lead_id == lead_id))
    lead.display_name = None
    lead.profile = {"erased": True}
    lead.consent = "revoked"
    lead.consent_updated_at = now
    lead.erased_at = now
    await session.flush()
    return True


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
