"""Leads, identities, touchpoints: the database side of identity resolution."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from leads.events import DomainEvents
from leads.identity import PHONE, IdentityKey, KnownLead, ResolutionPlan, plan_resolution
from leads.lead_filters import LeadFilter, classify_query
from leads.scoring import ScoreEvent, ScoreModel
from leads.sources import Source
from leads.touch_events import touchpoint_events
from storage.models import (
    Identity,
    Lead,
    LeadMerge,
    LeadScore,
    LeadTag,
    MergeConflict,
    Touchpoint,
    utcnow,
)
from storage.repos.duplicates import record_suggestion
from storage.repos.events import EventTx
from storage.repos.lead_search import lead_page
from storage.repos.merges import LeadMerges
from storage.repos.scores import LeadScorer
from storage.tx import Retry


class LeadRepository:
    def __init__(self, session: AsyncSession, scoring: ScoreModel | None = None,
                 clock: Callable[[], datetime] = utcnow, events: DomainEvents[EventTx] | None = None) -> None:
        """With a scoring model, every touchpoint and profile change updates the lead's scores, and what that
        changes is published to ``events`` (by default the quadrant actions of the model's rules)."""
        self.session = session
        name = session.bind.dialect.name if session.bind is not None else "sqlite"
        self.insert = postgresql.insert if name == "postgresql" else sqlite.insert  # for ON CONFLICT
        self._locking = name == "postgresql"
        self.scorer = LeadScorer(session, scoring, clock, events) if scoring is not None else None
        self.merges = LeadMerges(self)
        self._locked: list[Lead | LeadScore] = []

    async def resolve(self, observed: list[IdentityKey], *, now: datetime, inbox_id: int | None,
                      display_name: str | None = None) -> Lead:
        """Find, create or merge the lead behind these identities and return the one the event belongs to.

        Raises storage.tx.Retry when a lead it found was erased or merged while it waited for its lock."""
        owners = await self._owners(observed)
        plan = plan_resolution(observed, owners)
        return await self._apply(plan, now=now, inbox_id=inbox_id, display_name=display_name)

    async def _owners(self, observed: list[IdentityKey]) -> dict[tuple[str, str, str], KnownLead]:
        refs = [i.ref for i in observed]
        rows = await self._owner_rows(refs)
        if not rows:
            return {}
        lead_ids = sorted({r.id for r in rows})
        locked = await self.lock(lead_ids)
        if self._locking:
            # The owners were read before the lock: an erasure (which deletes the identities) or a merge (which
            # moves them) that held it has committed since. Planning on that read would write onto an erased or
            # absorbed lead; running the transaction again reads what they left, tombstones included.
            if any(lead.erased_at is not None or lead.merged_into_id is not None for lead in locked):
                raise Retry("a lead was erased or merged while this waited for its lock")
            # Between live leads only a WeChat-verified phone moves (``verify`` below): read phones' owners again.
            # Other kinds stay put unless their lead is erased or merged (just checked); a concurrent insert of
            # the same identity fails on its unique key. The OA callbacks' hot path carries no phone.
            if any(i.kind == PHONE for i in observed) and \
                    {tuple(r) for r in await self._owner_rows(refs)} != {tuple(r) for r in rows}:
                raise Retry("identities changed owner while this waited for their leads' lock")
        # Verified phones matter to a merge (which takes two leads) and to how strongly a lead holds a phone
        # number this event carries.
        wanted = len(lead_ids) > 1 or any(i.kind == PHONE for i in observed)
        phones = await self.verified_phones(lead_ids) if wanted else {}
        return {
            (r.kind, r.app, r.value): KnownLead(r.id, r.created_at, frozenset(phones.get(r.id, ()))) for r in rows
        }

    async def _owner_rows(self, refs: list[tuple[str, str, str]]) -> list[Any]:
        return list((await self.session.execute(
            select(Identity.kind, Identity.app, Identity.value, Lead.id, Lead.created_at)
            .join(Lead, Lead.id == Identity.lead_id)
            .where(tuple_(Identity.kind, Identity.app, Identity.value).in_(refs))
        )).all())

    async def verified_phones(self, lead_ids: list[int]) -> dict[int, set[str]]:
        phones: dict[int, set[str]] = defaultdict(set)
        for lead_id, value in (await self.session.execute(
            select(Identity.lead_id, Identity.value)
            .where(Identity.lead_id.in_(lead_ids), Identity.kind == PHONE, Identity.verified.is_(True))
        )).all():
            phones[lead_id].add(value)
        return phones

    async def lock(self, lead_ids: list[int]) -> list[Lead]:
        """Lock the leads (ascending: two events touching the same leads never deadlock each other) and load
        them as they are now, so the event works on what it locked without reading them again. On SQLite
        (one writer, one connection: storage/db.py) nothing can change them meanwhile; nothing is read."""
        if not self._locking:
            return []
        # Their scores come along when they will be updated; held here because the session's identity map keeps
        # objects only while something references them.
        stmt = select(Lead, LeadScore).outerjoin(LeadScore, LeadScore.lead_id == Lead.id) \
            if self.scorer is not None else select(Lead)
        rows = (await self.session.execute(
            stmt.where(Lead.id.in_(lead_ids)).order_by(Lead.id).with_for_update(of=Lead)
            .execution_options(populate_existing=True))).all()
        self._locked.extend(obj for row in rows for obj in row if obj is not None)
        return [row[0] for row in rows]

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
            if lead.erased_at is not None or lead.merged_into_id is not None:
                # Never reached through _owners' checks; a guard, since writing here would undo an erasure.
                raise Retry("the lead to record on is erased or merged")
            if display_name and not lead.display_name:
                lead.display_name = display_name
        await self.merges.merge_all(plan.merges, inbox_id, now)
        for conflict in plan.conflicts:
            await self.merges.record_conflict(conflict, inbox_id, now)
        for ident in plan.verify:
            # WeChat confirmed the number for this lead: a typed copy (here or on another lead) becomes its own.
            await self.session.execute(update(Identity).where(
                Identity.kind == ident.kind, Identity.app == ident.app, Identity.value == ident.value,
            ).values(lead_id=lead.id, verified=True))
        for suggestion in plan.suggestions:
            await record_suggestion(self.session, lead.id, suggestion.other_lead_id, suggestion.via, now)
        for ident in plan.attach:
            self.session.add(Identity(lead_id=lead.id, kind=ident.kind, app=ident.app, value=ident.value,
                                      verified=ident.verified, created_at=now))
        await self.session.flush()
        return lead

    async def add_touchpoint(self, lead: Lead, *, kind: str, source: Source, occurred_at: datetime,
                             inbox_id: int | None, detail: dict[str, Any] | None = None) -> None:
        stmt = self.insert(Touchpoint).values(
            lead_id=lead.id, kind=kind, scene=source.scene, channel=source.channel,
            source_code=source.code, occurred_at=occurred_at, inbox_id=inbox_id, detail=detail or {},
        ).on_conflict_do_nothing()
        if occurred_at > lead.last_activity_at:
            lead.last_activity_at = occurred_at
        if self.scorer is None or not self.scorer.wants(kind):
            await self.session.execute(stmt)
        else:
            touchpoint_id = (await self.session.execute(stmt.returning(Touchpoint.id))).scalar_one_or_none()
            if touchpoint_id is not None:  # None: this inbox row's touchpoint exists already, it was scored then
                await self.scorer.touchpoint(lead, ScoreEvent(touchpoint_id, kind, occurred_at, source.channel,
                                                              source.scene, detail or {}))
        await self._publish_touchpoint(lead.id, kind, occurred_at, detail)

    async def _publish_touchpoint(self, lead_id: int, kind: str, at: datetime, detail: dict[str, Any] | None
                                  ) -> None:
        tx = self.scorer.tx if self.scorer is not None else None
        if tx is not None and (heard := touchpoint_events(tx.events, lead_id, kind, at, detail)):
            await tx.publish(heard)

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


async def search_leads(session: AsyncSession, q: str | None, limit: int, offset: int, *,
                       owner_ids: list[int] | None = None) -> list[Lead]:
    """Live leads matching the search box ``q`` (its shape decides: leads/lead_filters.py classify_query), most
    recently active first. ``owner_ids``: only leads assigned to one of these users; None: every lead."""
    search = classify_query(q) if q else None
    rows, _ = await lead_page(session, LeadFilter(search=search), owner_ids, limit, offset)
    return [row.lead for row in rows]


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

