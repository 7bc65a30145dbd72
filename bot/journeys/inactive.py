"""The daily look for dormant leads: journeys triggered by ``inactive_days`` hear a LeadInactive per lead.

The events go through the domain-event seam like any other, so the re-entry policy and the one-active-enrolment
rule decide as they do for every trigger. Bounded per run: a database of a million sleepers is woken over
several runs, longest asleep first, instead of in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from leads.events import DomainEvents, LeadInactive
from leads.journeys.definition import Journey
from storage.repos.events import EventTx
from storage.repos.journey_enrolments import inactive_leads

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

SWEEP_EVERY_S = 3600.0
PER_RUN = 5000


async def sweep_inactive(sessions: async_sessionmaker[AsyncSession], events: DomainEvents[EventTx],
                         journeys: Sequence[Journey], now: datetime, limit: int = PER_RUN) -> int:
    """Publish LeadInactive for the dormant leads of each ``inactive_days`` journey; how many were heard."""
    heard = 0
    for journey in journeys:
        days = journey.trigger.days
        if journey.trigger.kind != "inactive_days" or days is None:
            continue
        async with sessions() as session, session.begin():
            found = await inactive_leads(session, journey.id, days, now, limit)
            if found:
                await EventTx(session, events).publish([LeadInactive(lead_id, at, now) for lead_id, at in found])
            heard += len(found)
    return heard
