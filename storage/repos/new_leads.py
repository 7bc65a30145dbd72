"""New leads for senders seen for the first time, many at once: what LeadRepository.resolve does for one sender
nobody knows (a lead with that identity, its first score row, its first quadrant heard by the subscribers), in
three multi-row statements and one publish for the lot.

A concurrent event of the same sender elsewhere makes the identity insert fail on its unique key: the whole
transaction rolls back and its events are handled one by one, as any conflict is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from leads.events import DomainEvent, DomainEvents
from leads.identity import IdentityKey
from leads.scoring import MotivationState, ScoreModel
from leads.touch_events import score_events
from storage.models import Identity, Lead, LeadScore
from storage.repos.events import EventTx

_i, _l, _s = Identity.__table__, Lead.__table__, LeadScore.__table__
_NEW_LEADS = insert(_l).returning(_l.c.id, sort_by_parameter_order=True)
_NEW_IDENTITIES = insert(_i)
_NEW_SCORES = insert(_s)


async def create_leads(session: AsyncSession, model: ScoreModel, events: DomainEvents[EventTx],
                       clock: Callable[[], datetime], senders: Sequence[tuple[IdentityKey, datetime]]) -> None:
    """One lead per (identity, first seen at): created then, in stage lead, scored, its quadrant published."""
    if not senders:
        return
    ids = list((await session.execute(_NEW_LEADS, [
        {"display_name": None, "stage": "lead", "consent": "unknown", "profile": {}, "created_at": at,
         "last_activity_at": at} for _, at in senders])).scalars())
    await session.execute(_NEW_IDENTITIES, [
        {"lead_id": lead_id, "kind": key.kind, "app": key.app, "value": key.value, "verified": key.verified,
         "created_at": at} for lead_id, (key, at) in zip(ids, senders, strict=True)])
    now, state = clock(), MotivationState()
    ability, motivation, quadrant = model.standing({}, state, now)  # nothing known of them yet
    await session.execute(_NEW_SCORES, [
        {"lead_id": lead_id, "ability": ability, "motivation": motivation, "quadrant": quadrant,
         "rules": model.fingerprint, "state": state.to_json(), "scored_at": now} for lead_id in ids])
    heard: list[DomainEvent] = [event for lead_id in ids for event in score_events(
        events, lead_id, "lead", None, quadrant, 0.0, motivation, now, None)]
    if heard:
        await EventTx(session, events).publish(heard)
