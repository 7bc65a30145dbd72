"""Scores, quadrants and stages in the database, kept in step with touchpoints inside the caller's transaction.

The arithmetic is leads/scoring.py's; this reads the stored state, applies the new touchpoint (or replays
the lead's scored touchpoints when the state cannot take it: none yet, other rules, an out-of-order event,
a merge) and writes the result. Entering another quadrant is published as a QuadrantEntered domain event
(leads/events.py) in the same transaction; what follows (the quadrant actions, storage/repos/quadrant_actions.py,
and whatever else subscribed at start-up) is the subscribers' business, not the scorer's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from leads.events import DomainEvents, StageChanged
from leads.lifecycle import MERGED, consent_transition
from leads.scoring import MotivationState, ScoreEvent, ScoreModel
from leads.touch_events import score_events
from storage.models import Lead, LeadScore, Touchpoint, utcnow
from storage.repos.events import EventTx
from storage.repos.quadrant_actions import standard_events
from storage.repos.stages import apply_transition, change_stages

__all__ = ["LeadScorer", "apply_transition", "current_state", "scored_events"]


class LeadScorer:
    def __init__(self, session: AsyncSession, model: ScoreModel, clock: Callable[[], datetime] = utcnow,
                 events: DomainEvents[EventTx] | None = None) -> None:
        """``events``: who hears what scoring reports; by default the quadrant actions of ``model``'s rules."""
        self.session = session
        self.model = model
        self.clock = clock
        self.tx = EventTx(session, events if events is not None else standard_events(model.rules.actions))
        # Profile attributes ability rules read: only a change to one of them can change a score.
        self.attributes = frozenset(r.attribute for r in model.rules.ability)

    def wants(self, kind: str) -> bool:
        return kind in self.model.scored_kinds

    async def consent_changed(self, lead: Lead, consent: str, at: datetime) -> None:
        """Opting out makes the lead Unsubscribed; opting in again brings it back."""
        move = consent_transition(f"consent_{consent}", lead.stage)
        if move is not None:
            await change_stages(self.tx, [StageChanged.of(lead.id, move, at)])

    async def touchpoint(self, lead: Lead, event: ScoreEvent) -> None:
        """A new touchpoint on ``lead``: update its scores (and stage) incrementally."""
        if lead.stage == MERGED or event.kind not in self.model.scored_kinds:
            return
        row = await self.session.get(LeadScore, lead.id)
        state = None
        if row is not None and row.rules == self.model.fingerprint:
            state = self.model.step(MotivationState.from_json(row.state), event)
        if state is None:
            state = await self._replay(lead.id)
        await self._save(lead, row, state, event.touchpoint_id)

    async def profile_changed(self, lead: Lead) -> None:
        """Ability may have changed: re-read it, keep the motivation state."""
        if lead.stage == MERGED or not self.model.rules.ability:
            return
        row = await self.session.get(LeadScore, lead.id)
        await self._save(lead, row, await current_state(self.session, self.model, lead.id, row), None)

    async def rebuild(self, lead: Lead) -> None:
        """Everything from the stored touchpoints (after a merge moved history onto this lead)."""
        row = await self.session.get(LeadScore, lead.id)
        await self._save(lead, row, await self._replay(lead.id), None)

    async def new_lead(self, lead: Lead) -> None:
        """A lead created just now: no history to read; it enters its first quadrant."""
        await self._save(lead, None, MotivationState(), None)

    async def forget(self, lead_id: int) -> None:
        await self.session.execute(delete(LeadScore).where(LeadScore.lead_id == lead_id))

    async def _replay(self, lead_id: int) -> MotivationState:
        return self.model.replay(await scored_events(self.session, lead_id, self.model.scored_kinds))

    async def _save(self, lead: Lead, row: LeadScore | None, state: MotivationState,
                    touchpoint_id: int | None) -> None:
        now = self.clock()
        ability, motivation, quadrant = self.model.standing(lead.profile or {}, state, now)
        old_quadrant = row.quadrant if row is not None else None
        old_motivation = row.motivation if row is not None else 0.0
        values = {"ability": ability, "motivation": motivation, "quadrant": quadrant,
                  "rules": self.model.fingerprint, "state": state.to_json(), "scored_at": now}
        if row is None:
            self.session.add(LeadScore(lead_id=lead.id, **values))
        else:
            for key, value in values.items():
                setattr(row, key, value)
        await self.session.flush()
        heard = score_events(self.tx.events, lead.id, lead.stage, old_quadrant, quadrant, old_motivation,
                             motivation, now, touchpoint_id)
        if heard:
            await self.tx.publish(heard)


async def current_state(session: AsyncSession, model: ScoreModel, lead_id: int,
                        row: LeadScore | None) -> MotivationState:
    """The stored state when it was built with these rules, else replayed from the scored touchpoints."""
    if row is not None and row.rules == model.fingerprint:
        return MotivationState.from_json(row.state)
    return model.replay(await scored_events(session, lead_id, model.scored_kinds))


async def scored_events(session: AsyncSession, lead_id: int, kinds: frozenset[str]) -> list[ScoreEvent]:
    if not kinds:
        return []
    rows = (await session.execute(
        select(Touchpoint.id, Touchpoint.kind, Touchpoint.occurred_at, Touchpoint.channel, Touchpoint.scene,
               Touchpoint.detail)
        .where(Touchpoint.lead_id == lead_id, Touchpoint.kind.in_(sorted(kinds)))
    )).all()
    return [ScoreEvent(r.id, r.kind, r.occurred_at, r.channel, r.scene, r.detail or {}) for r in rows]
