"""Lifecycle stage changes in the database: the lead's stage, its history row, and the events they mean."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from leads.events import DomainEvents, StageChanged, stage_events
from leads.lifecycle import Transition
from storage.models import Lead, StageTransition
from storage.repos.events import NO_SUBSCRIBERS, EventTx

_leads = Lead.__table__
_SET_STAGE = update(_leads).where(_leads.c.id == bindparam("b_lead")).values(stage=bindparam("b_stage"))


async def change_stages(tx: EventTx, changes: Sequence[StageChanged]) -> None:
    """Record moves the lifecycle allowed (leads.lifecycle checked each) and publish StageChanged, plus
    BecameMQL for a lead that became an MQL, in the same transaction."""
    if not changes:
        return
    await tx.db.execute(_SET_STAGE, [{"b_lead": c.lead_id, "b_stage": c.to_stage} for c in changes])
    await tx.db.execute(insert(StageTransition.__table__), [
        {"lead_id": c.lead_id, "from_stage": c.from_stage, "to_stage": c.to_stage, "actor": c.actor,
         "actor_id": c.actor_id, "reason": c.reason, "touchpoint_id": c.touchpoint_id, "occurred_at": c.at}
        for c in changes])
    if isinstance(tx.db, AsyncSession):
        # The statement went around the ORM: leads the session holds learn their stage without a reload (the
        # next touchpoint's quadrant actions read it) and without an UPDATE of their own at flush.
        for c in changes:
            lead = tx.db.identity_map.get(Session.identity_key(Lead, c.lead_id))
            if lead is not None:
                set_committed_value(lead, "stage", c.to_stage)
    await tx.publish([event for c in changes for event in stage_events(c)])


async def apply_transition(session: AsyncSession, lead: Lead, move: Transition, *, at: datetime,
                           touchpoint_id: int | None, events: DomainEvents[EventTx] = NO_SUBSCRIBERS) -> None:
    """One lead's move (leads.lifecycle.transition allowed it), heard by ``events``' subscribers."""
    await change_stages(EventTx(session, events), [StageChanged.of(lead.id, move, at, touchpoint_id)])
