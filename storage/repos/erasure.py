"""Erasing a person's personal data on request (PIPL): identities, profile, message texts and payloads go;
what remains is an anonymous lead row with its touch counts (kind, channel, scene, time) for the funnel.

The erased identities are kept only as keyed hashes (storage/repos/tombstones.py), so that a link, cookie or
session issued to the person before the erasure can be recognised and refused instead of bringing them back.
Leads merged into the erased one are the same person: their leftover rows are erased too.

The lead stays locked until the erasure commits. A request that found the person's identities before that
waits for the lock, sees the lead erased and runs again (storage/repos/leads.py, storage.tx.Retry), this time
seeing the tombstones: nothing it writes lands on the erased lead.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import String, cast, delete, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leads.identity import MP_OPENID, WECOM_EXTERNAL, IdentityKey
from storage.models import (
    AuditEntry,
    DuplicateSuggestion,
    Handoff,
    Identity,
    InboxEvent,
    Lead,
    LeadMerge,
    LeadNote,
    LeadTask,
    MergeConflict,
    MiniProgramSession,
    OutboxMessage,
    SubmissionKey,
    Touchpoint,
)
from storage.repos.batch_erasure import erase_recipients
from storage.repos.handoff_cards import erase_from_digests
from storage.repos.lead_history import PROFILE_EDIT
from storage.repos.tombstones import Hasher, bury
from storage.repos.transfers import erase_customers

ERASED = "erased"


async def erase_lead(session: AsyncSession, lead_id: int, now: datetime, *, hasher: Hasher) -> bool:
    """Erase in the caller's transaction. False when there is no such (surviving) lead."""
    lead = await session.get(Lead, lead_id, with_for_update=session.bind.dialect.name == "postgresql")
    if lead is None or lead.merged_into_id is not None:
        return False
    # Merges repoint earlier merges at the survivor, so one hop finds every lead absorbed into this one.
    absorbed = list((await session.scalars(select(Lead).where(Lead.merged_into_id == lead_id))).all())
    ids = [lead_id, *(a.id for a in absorbed)]
    identities = [IdentityKey(k, a, v) for k, a, v in (await session.execute(
        select(Identity.kind, Identity.app, Identity.value).where(Identity.lead_id.in_(ids)))).all()]
    await bury(session, set(identities), hasher, now)
    await _erase_messages(session, ids, now)
    # Customer-transfer batches name up to 100 people each, so they carry no lead_id for the line above.
    await erase_customers(session, ids, [i.value for i in identities if i.kind == WECOM_EXTERNAL])
    # And batch messages: a member's task lists up to 10,000 customers; recipient rows keep the outcome only.
    await erase_recipients(session, ids, [i.value for i in identities if i.kind == WECOM_EXTERNAL])
    # So do digest cards, listing a salesperson's waiting leads by name and company.
    await erase_from_digests(session, ids)
    mp_openids = [i.value for i in identities if i.kind == MP_OPENID]
    await session.execute(delete(MiniProgramSession).where(or_(
        MiniProgramSession.lead_id.in_(ids), MiniProgramSession.openid.in_(mp_openids))))
    await _erase_identity_values(session, ids, [i.value for i in identities], now)
    await session.execute(delete(Identity).where(Identity.lead_id.in_(ids)))
    await session.execute(delete(SubmissionKey).where(SubmissionKey.lead_id.in_(ids)))
    for row in (lead, *absorbed):
        row.display_name = None
        row.profile = {"erased": True}
        row.consent = "revoked"
        row.consent_updated_at = now
        row.erased_at = now
    await session.flush()
    return True


async def _erase_messages(session: AsyncSession, ids: list[int], now: datetime) -> None:
    """Callbacks, touch details, hand-off texts, outbound payloads, notes and task titles: the counts stay, the
    contents go."""
    inbox_rows = (await session.execute(
        select(InboxEvent.id, InboxEvent.dedup_key).join(Touchpoint, Touchpoint.inbox_id == InboxEvent.id)
        .where(Touchpoint.lead_id.in_(ids)).distinct())).all()
    # Raw callbacks hold OpenIDs and message texts; the dedup key keeps its uniqueness as a hash.
    for inbox_id, dedup_key in inbox_rows:
        await session.execute(update(InboxEvent).where(InboxEvent.id == inbox_id).values(
            payload="", reply=None, from_user=ERASED, dedup_key=f"{ERASED}:{_digest(dedup_key)}"))
    await session.execute(update(Touchpoint).where(Touchpoint.lead_id.in_(ids)).values(detail={}, source_code=None))
    await session.execute(update(Handoff).where(Handoff.lead_id.in_(ids)).values(message="", status="closed",
                                                                                 closed_at=now))
    await session.execute(update(OutboxMessage).where(OutboxMessage.lead_id.in_(ids),
                                                      OutboxMessage.status.in_(("pending", "sandboxed")))
                          .values(status="cancelled", last_error="the recipient's data was erased"))
    await session.execute(update(OutboxMessage).where(OutboxMessage.lead_id.in_(ids)).values(payload={}))
    # People's notes and task titles can quote the person: they go; that a note or task existed stays.
    await session.execute(update(LeadNote).where(LeadNote.lead_id.in_(ids)).values(body=""))
    await session.execute(update(LeadTask).where(LeadTask.lead_id.in_(ids)).values(title=""))
    # The profile history (the 360) is audit entries holding the edited values: that an edit happened stays.
    await session.execute(update(AuditEntry).where(
        AuditEntry.target_kind == "lead", AuditEntry.target_id.in_([str(i) for i in ids]),
        AuditEntry.action == PROFILE_EDIT).values(before=None, after={"erased": True}))


async def _erase_identity_values(session: AsyncSession, ids: list[int], values: list[str], now: datetime) -> None:
    """Merges, merge conflicts and duplicate suggestions keep that they happened, not the identity."""
    for model, a, b in ((LeadMerge, LeadMerge.survivor_id, LeadMerge.merged_id),
                        (MergeConflict, MergeConflict.lead_id, MergeConflict.other_lead_id)):
        await session.execute(update(model).where(or_(model.identity_value.in_(values), a.in_(ids), b.in_(ids)))
                              .values(identity_value=ERASED))
    involved = or_(DuplicateSuggestion.lead_id.in_(ids), DuplicateSuggestion.other_lead_id.in_(ids))
    # Each row gets its own placeholder: the suggestion's uniqueness includes the value.
    await session.execute(update(DuplicateSuggestion).where(involved).values(
        identity_value=literal(f"{ERASED}:") + cast(DuplicateSuggestion.id, String)))
    # Nobody can merge with an erased person any more: open suggestions are closed.
    await session.execute(update(DuplicateSuggestion).where(involved, DuplicateSuggestion.status == "open").values(
        status="dismissed", resolved_at=now, resolved_by=ERASED))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
