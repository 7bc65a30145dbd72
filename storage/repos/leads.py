"""Leads, identities, touchpoints: the database side of identity resolution."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from leads.events import DomainEvents
from leads.identity import PHONE, IdentityKey, KnownLead, ResolutionPlan, plan_resolution
from leads.scoring import ScoreEvent, ScoreModel
from leads.sources import Source
from storage.models import (
    Handoff,
    Identity,
    Lead,
    LeadMerge,
    LeadScore,
    LeadTag,
    MergeConflict,
    MiniProgramSession,
    OutboxMessage,
    Touchpoint,
    utcnow,
)
from storage.repos.events import EventTx
from storage.repos.scores import LeadScorer


class LeadRepository:
    def __init__(self, session: AsyncSession, scoring: ScoreModel | None = None,
                 clock: Callable[[], datetime] = utcnow, events: DomainEvents[EventTx] | None = None) -> None:
        """With a scoring model, every touchpoint and profile change updates the lead's scores, and what that
        changes is published to ``events`` (by default the quadrant actions of the model's rules)."""
        self.session = session
        name = session.bind.dialect.name if session.bind is not None else "sqlite"
        self._insert = postgresql.insert if name == "postgresql" else sqlite.insert
        self._locking = name == "postgresql"
        self.scorer = LeadScorer(session, scoring, clock, events) if scoring is not None else None
        self._locked: list[Lead | LeadScore] = []

    async def resolve(self, observed: list[IdentityKey], *, now: datetime, inbox_id: int | None,
                      display_name: str | None = None) -> Lead:
        """Find, create or merge the lead behind these identities and return the one the event belongs to."""
        owners = await self._owners(observed)
        plan = plan_resolution(observed, owners)
        return await self._apply(plan, now=now, inbox_id=inbox_id, display_name=display_name)

    async def _owners(self, observed: list[IdentityKey]) -> dict[tuple[str, str, str], KnownLead]:
        refs = [i.ref for i in observed]
        rows = (await self.session.execute(
            select(Identity.kind, Identity.app, Identity.value, Lead.id, Lead.created_at)
            .join(Lead, Lead.id == Identity.lead_id)
            .where(tuple_(Identity.kind, Identity.app, Identity.value).in_(refs))
        )).all()
        if not rows:
            return {}
        lead_ids = sorted({r.id for r in rows})
        await self._lock(lead_ids)
        phones: dict[int, set[str]] = defaultdict(set)
        if len(lead_ids) > 1:  # verified phones only matter to a merge, which takes two leads
            for lead_id, value in (await self.session.execute(
                select(Identity.lead_id, Identity.value)
                .where(Identity.lead_id.in_(lead_ids), Identity.kind == PHONE, Identity.verified.is_(True))
            )).all():
                phones[lead_id].add(value)
        return {
            (r.kind, r.app, r.value): KnownLead(r.id, r.created_at, frozenset(phones[r.id])) for r in rows
        }

    async def _lock(self, lead_ids: list[int]) -> None:
        """Lock the leads (ascending: two events touching the same leads never deadlock each other) and load
        them as they are now, so the event works on what it locked without reading them again."""
        if not self._locking:
            return
        # Their scores come along when they will be updated; held here because the session's identity map keeps
        # objects only while something references them.
        stmt = select(Lead, LeadScore).outerjoin(LeadScore, LeadScore.lead_id == Lead.id) \
            if self.scorer is not None else select(Lead)
        rows = await self.session.execute(
            stmt.where(Lead.id.in_(lead_ids)).order_by(Lead.id).with_for_update(of=Lead)
            .execution_options(populate_existing=True))
        self._locked.extend(obj for row in rows for obj in row if obj is not None)

    async def _apply(self, plan: ResolutionPlan, *, now: datetime, inbox_id: int | None,
                     display_name: str | None) -> Lead:
        if plan.target_id is None:
            lead = Lead(display_name=display_name, stage="lead", consent="unknown", profile={},
                        created_at=now, last_activity_at=now)
            self.session.add(lead)
            await self.session.flush()
            if self.scorer is not None:
                await self.scorer.new_lead(lead)
        else:
            lead = await self.session.get_one(Lead, plan.target_id)
            if display_name and not lead.display_name:
                lead.display_name = display_name
        for merge in plan.merges:
            await self._merge(merge.survivor_id, merge.merged_id, merge.via, inbox_id, now)
        if plan.merges and self.scorer is not None:
            # History moved onto the survivor: its score is rebuilt from all of it, the absorbed one dropped.
            for merge in plan.merges:
                await self.scorer.forget(merge.merged_id)
            for survivor_id in sorted({m.survivor_id for m in plan.merges}):
                await self.scorer.rebuild(await self.session.get_one(Lead, survivor_id))
        for conflict in plan.conflicts:
            await self.session.execute(
                self._insert(MergeConflict).values(
                    lead_id=conflict.lead_id, other_lead_id=conflict.other_lead_id,
                    identity_kind=conflict.via.kind, identity_value=conflict.via.value,
                    reason=conflict.reason, status="open", inbox_id=inbox_id, created_at=now,
                ).on_conflict_do_nothing()
            )
        for ident in plan.attach:
            self.session.add(Identity(lead_id=lead.id, kind=ident.kind, app=ident.app, value=ident.value,
                                      verified=ident.verified, created_at=now))
        await self.session.flush()
        return lead

    async def _merge(self, survivor_id: int, merged_id: int, via: IdentityKey, inbox_id: int | None,
                     now: datetime) -> None:
        survivor = await self.session.get_one(Lead, survivor_id)
        merged = await self.session.get_one(Lead, merged_id)
        moved: dict[str, Any] = {}
        for model in (Identity, Touchpoint, Handoff, MiniProgramSession, OutboxMessage):
            result = await self.session.execute(
                update(model).where(model.lead_id == merged_id).values(lead_id=survivor_id)
            )
            moved[model.__tablename__] = result.rowcount
        tags = (await self.session.execute(select(LeadTag.tag).where(LeadTag.lead_id == merged_id))).scalars().all()
        if tags:
            await self.session.execute(
                self._insert(LeadTag).values([{"lead_id": survivor_id, "tag": t, "created_at": now} for t in tags])
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

    async def add_touchpoint(self, lead: Lead, *, kind: str, source: Source, occurred_at: datetime,
                             inbox_id: int | None, detail: dict[str, Any] | None = None) -> None:
        stmt = self._insert(Touchpoint).values(
            lead_id=lead.id, kind=kind, scene=source.scene, channel=source.channel,
            source_code=source.code, occurred_at=occurred_at, inbox_id=inbox_id, detail=detail or {},
        ).on_conflict_do_nothing()
        if occurred_at > lead.last_activity_at:
            lead.last_activity_at = occurred_at
        if self.scorer is None or not self.scorer.wants(kind):
            await self.session.execute(stmt)
            return
        touchpoint_id = (await self.session.execute(stmt.returning(Touchpoint.id))).scalar_one_or_none()
        if touchpoint_id is not None:  # None: this inbox row's touchpoint exists already, it was scored then
            await self.scorer.touchpoint(lead, ScoreEvent(touchpoint_id, kind, occurred_at, source.channel,
                                                          source.scene, detail or {}))

    async def note_oa_interaction(self, lead: Lead, at: datetime) -> None:
        """The user acted in the OA: customer-service messages are allowed for 48 h from now."""
        if lead.oa_last_interaction_at is None or at > lead.oa_last_interaction_at:
            lead.oa_last_interaction_at = at

    async def set_consent(self, lead: Lead, state: str, at: datetime) -> None:
        lead.consent = state
        lead.consent_updated_at = at
        if self.scorer is not None:
            await self.scorer.consent_changed(lead, state, at)

    async def merge_profile(self, lead: Lead, values: dict[str, Any]) -> None:
        before = lead.profile
        lead.profile = {**before, **{k: v for k, v in values.items() if v not in (None, "")}}
        if self.scorer is not None and any(before.get(k) != lead.profile.get(k) for k in self.scorer.attributes):
            await self.scorer.profile_changed(lead)


async def search_leads(session: AsyncSession, q: str | None, limit: int, offset: int) -> list[Lead]:
    stmt = select(Lead).where(Lead.merged_into_id.is_(None))
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        stmt = stmt.where(or_(
            Lead.display_name.ilike(pattern, escape="\\"),
            Lead.id.in_(select(Identity.lead_id).where(Identity.value.ilike(pattern, escape="\\"))),
        ))
    stmt = stmt.order_by(Lead.last_activity_at.desc(), Lead.id.desc()).limit(limit).offset(offset)
    return list((await session.execute(stmt)).scalars())


async def lead_detail(session: AsyncSession, lead_id: int) -> dict[str, list[Any]]:
    identities = (await session.execute(
        select(Identity).where(Identity.lead_id == lead_id).order_by(Identity.id))).scalars().all()
    touchpoints = (await session.execute(
        select(Touchpoint).where(Touchpoint.lead_id == lead_id)
        .order_by(Touchpoint.occurred_at, Touchpoint.id))).scalars().all()
    merges = (await session.execute(
        select(LeadMerge).where(or_(LeadMerge.survivor_id == lead_id, LeadMerge.merged_id == lead_id))
        .order_by(LeadMerge.id))).scalars().all()
    conflicts = (await session.execute(
        select(MergeConflict).where(or_(MergeConflict.lead_id == lead_id, MergeConflict.other_lead_id == lead_id))
        .order_by(MergeConflict.id))).scalars().all()
    tags = (await session.execute(select(LeadTag.tag).where(LeadTag.lead_id == lead_id)
                                  .order_by(LeadTag.tag))).scalars().all()
    return {"identities": list(identities), "touchpoints": list(touchpoints), "merges": list(merges),
            "conflicts": list(conflicts), "tags": list(tags)}

