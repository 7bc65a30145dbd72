"""Enrolling leads in journeys from the domain events: the journeys' subscriber on the domain-event seam.

It runs in the publisher's transaction, so an enrolment commits with what caused it (a returned lead is in
re-nurture exactly when the return is recorded). The first step is due at once: the executor's next tick runs it
after commit, never inside the publisher's transaction. A quadrant's ``journey:<id>`` action enrols in the journey
it names whatever that journey's own trigger is; the re-entry policy applies either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from leads.events import (
    FormSubmitted,
    LeadInactive,
    LeadReturned,
    QuadrantEntered,
    ScoreCrossed,
    StageChanged,
    TagAdded,
    TouchpointSeen,
)
from leads.journeys.definition import Journey
from leads.journeys.enrolment import matches_trigger, may_enter
from leads.journeys.plan import fingerprint
from leads.lifecycle import quadrant_effects
from storage.repos.journey_enrolments import NewEnrolment, enrol, past_enrolments

if TYPE_CHECKING:
    from storage.repos.events import EventTx

# Which domain event each trigger kind listens to (the wiring subscribes to these only).
TRIGGER_EVENTS: dict[str, type] = {
    "event": TouchpointSeen, "score_crossed": ScoreCrossed, "quadrant_entered": QuadrantEntered,
    "stage_entered": StageChanged, "form_submitted": FormSubmitted, "tag_added": TagAdded,
    "inactive_days": LeadInactive, "returned_by_sales": LeadReturned,
}


def trigger_label(event: Any) -> str:
    """What enrolled the lead, as the console shows it ("returned:预算不足")."""
    if isinstance(event, QuadrantEntered):
        return f"quadrant:{event.new}"
    if isinstance(event, StageChanged):
        return f"stage:{event.to_stage}"
    if isinstance(event, LeadReturned):
        return f"returned:{event.reason}"
    if isinstance(event, FormSubmitted):
        return f"form:{event.form_id}"
    if isinstance(event, TagAdded):
        return f"tag:{event.tag}"
    if isinstance(event, ScoreCrossed):
        return f"score:{event.new:g}"
    if isinstance(event, LeadInactive):
        return f"inactive:{event.days}d"
    if isinstance(event, TouchpointSeen):
        return f"event:{event.kind}"
    return type(event).__name__


@dataclass(frozen=True, slots=True)
class EnrolLeads:
    """A plain value (picklable, like the quadrant actions): the journeys and the scoring rules' quadrant actions."""

    journeys: tuple[Journey, ...]
    quadrant_actions: dict[str, tuple[str, ...]]

    async def __call__(self, tx: EventTx, events: Sequence[Any]) -> None:
        by_id = {j.id: j for j in self.journeys}
        wanted: dict[tuple[str, int], tuple[Journey, Any, bool]] = {}  # first event per pair; named by an action?
        for event in events:
            for journey in self.journeys:
                if matches_trigger(journey.trigger, event):
                    wanted.setdefault((journey.id, event.lead_id), (journey, event, False))
            if isinstance(event, QuadrantEntered):
                effects = quadrant_effects(event.old, event.new, event.stage, self.quadrant_actions)
                for journey_id in effects.journeys:
                    if journey_id in by_id:
                        wanted.setdefault((journey_id, event.lead_id), (by_id[journey_id], event, True))
        if not wanted:
            return
        past = await past_enrolments(tx.db, set(wanted))
        new = [NewEnrolment(journey.id, lead_id, fingerprint(journey), trigger_label(event), event.at)
               for (journey_id, lead_id), (journey, event, _) in wanted.items()
               if may_enter(journey, past.get((journey_id, lead_id), ()), event.at)]
        await enrol(tx.db, new)


def listened_events(journeys: Sequence[Journey], quadrant_actions: dict[str, tuple[str, ...]]) -> tuple[type, ...]:
    """The event types the configured journeys start from, in a stable order."""
    kinds = {TRIGGER_EVENTS[j.trigger.kind] for j in journeys}
    if journeys and any(a.startswith("journey:") for actions in quadrant_actions.values() for a in actions):
        kinds.add(QuadrantEntered)
    return tuple(t for t in TRIGGER_EVENTS.values() if t in kinds)
