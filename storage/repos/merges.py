"""Merging leads found to be one person: the survivor takes over the other's rows, history and score.

Used by identity resolution (storage/repos/leads.py, a strong identity seen on two leads) and by an SDR
resolving a duplicate suggestion (``merge_pair``). The leads are locked by the caller's repository first.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from leads.identity import Conflict, IdentityKey, KnownLead, Merge, plan_merge
from storage.models import (
    Handoff,
    Identity,
    Lead,
    LeadMerge,
    LeadNote,
    LeadTag,
    LeadTask,
    MergeConflict,
    MiniProgramSession,
    OutboxMessage,
    SubmissionKey,
    Touchpoint,
)
from storage.repos.duplicates import close_moot

if TYPE_CHECKING:  # the repository that owns this one (and its session, locks and scorer)
    from storage.repos.leads import LeadRepository


class LeadMerges:
    def __init__(self, leads: LeadRepository) -> None:
        self.leads = leads
        self.session = leads.session

    async def merge_pair(self, a_id: int, b_id: int, via: IdentityKey, *, now: datetime) -> Merge | Conflict:
        """Merge two surviving leads a person found to be one, by the rules of identity resolution: the older
        survives; when their verified phones differ nothing merges and the conflict is recorded."""
        ids = sorted({a_id, b_id})
        await self.leads.lock(ids)
        phones = await self.leads.verified_phones(ids)
        a, b = await self.session.get_one(Lead, a_id), await self.session.get_one(Lead, b_id)
        outcome = plan_merge(KnownLead(a.id, a.created_at, frozenset(phones.get(a.id, ()))),
                             KnownLead(b.id, b.created_at, frozenset(phones.get(b.id, ()))), via)
        if isinstance(outcome, Merge):
            await self.merge_all((outcome,), None, now)
        else:
            await self.record_conflict(outcome, None, now)
        await self.session.flush()
        return outcome

    async def merge_all(self, merges: tuple[Merge, ...], inbox_id: int | None, now: datetime) -> None:
        for merge in merges:
            await self._merge(merge.survivor_id, merge.merged_id, merge.via, inbox_id, now)
        scorer = self.leads.scorer
        if merges and scorer is not None:
            # History moved onto the survivor: its score is rebuilt from all of it, the absorbed one dropped.
            for merge in merges:
                await scorer.forget(merge.merged_id)
            for survivor_id in sorted({m.survivor_id for m in merges}):
                await scorer.rebuild(await self.session.get_one(Lead, survivor_id))

    async def record_conflict(self, conflict: Conflict, inbox_id: int | None, now: datetime) -> None:
        await self.session.execute(
            self.leads.insert(MergeConflict).values(
                lead_id=conflict.lead_id, other_lead_id=conflict.other_lead_id,
                identity_kind=conflict.via.kind, identity_value=conflict.via.value,
                reason=conflict.reason, status="open", inbox_id=inbox_id, created_at=now,
            ).on_conflict_do_nothing()
        )

    async def _merge(self, survivor_id: int, merged_id: int, via: IdentityKey, inbox_id: int | None,
                     now: datetime) -> None:
        survivor = await self.session.get_one(Lead, survivor_id)
        merged = await self.session.get_one(Lead, merged_id)
        moved: dict[str, Any] = {}
        for model in (Identity, Touchpoint, Handoff, MiniProgramSession, OutboxMessage, LeadNote, LeadTask,
                      SubmissionKey):
            result = await self.session.execute(
                update(model).where(model.lead_id == merged_id).values(lead_id=survivor_id)
            )
            moved[model.__tablename__] = result.rowcount
        tags = (await self.session.execute(select(LeadTag.tag).where(LeadTag.lead_id == merged_id))).scalars().all()
        if tags:
            await self.session.execute(
                self.leads.insert(LeadTag).values([{"lead_id": survivor_id, "tag": t, "created_at": now}
                                                   for t in tags])
                .on_conflict_do_nothing()
            )
            await self.session.execute(delete(LeadTag).where(LeadTag.lead_id == merged_id))
        moved["tags"] = list(tags)
        # Earlier merges into the absorbed lead now point at the survivor: lookups need one hop only.
        await self.session.execute(
            update(Lead).where(Lead.merged_into_id == merged_id).values(merged_into_id=survivor_id)
        )
        survivor.profile = {**merged.profile, **survivor.profile}
        survivor.display_name = survivor.display_name or merged.display_name
        survivor.last_activity_at = max(survivor.last_activity_at, merged.last_activity_at)
        interactions = [t for t in (survivor.oa_last_interaction_at, merged.oa_last_interaction_at) if t]
        survivor.oa_last_interaction_at = max(interactions, default=None)
        if merged.consent == "revoked" and survivor.consent != "revoked":
            # A person who said no through one channel said no: keep the stricter state.
            survivor.consent, survivor.consent_updated_at = merged.consent, merged.consent_updated_at
        merged.merged_into_id = survivor_id
        merged.stage = "merged"
        self.session.add(LeadMerge(survivor_id=survivor_id, merged_id=merged_id, identity_kind=via.kind,
                                   identity_value=via.value, moved=moved, inbox_id=inbox_id, created_at=now))
        await self.session.flush()
        await close_moot(self.session, survivor_id, now)
