"""Domain events: what happened to a lead (it entered a quadrant, changed stage, became an MQL), and who hears it.

Scoring reports these; it does not decide what follows. Subscribers registered at start-up do: today the
quadrant actions (stage, tags, journey placeholder), later routing and journeys, without touching the code
that publishes. Pure: the registry only calls subscribers with whatever transaction the publisher passes in,
so what they write commits or rolls back with what caused the event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from leads.lifecycle import MQL, Transition


@dataclass(frozen=True, slots=True)
class QuadrantEntered:
    """The lead's scores put it in another quadrant (``old`` is None for its first)."""

    lead_id: int
    old: str | None
    new: str
    stage: str  # the lead's stage as it entered: quadrant actions never override what people decided
    at: datetime
    touchpoint_id: int | None = None  # the touchpoint that moved it; None for decay, profile, merge, recompute


@dataclass(frozen=True, slots=True)
class StageChanged:
    """A lifecycle move, by the system (a quadrant action, consent) or a person (the API)."""

    lead_id: int
    from_stage: str
    to_stage: str
    actor: str  # system | sdr | sales
    reason: str
    at: datetime
    actor_id: str = ""  # the rule ("quadrant:sales_ready", "consent"), the SDR's or salesperson's user id
    touchpoint_id: int | None = None

    @classmethod
    def of(cls, lead_id: int, move: Transition, at: datetime, touchpoint_id: int | None = None) -> StageChanged:
        return cls(lead_id, move.from_stage, move.to_stage, move.actor, move.reason, at, move.actor_id, touchpoint_id)


@dataclass(frozen=True, slots=True)
class BecameMQL:
    """The lead became a marketing-qualified lead: the moment sales wants to hear about (routing)."""

    lead_id: int
    from_stage: str
    actor: str
    at: datetime
    actor_id: str = ""
    touchpoint_id: int | None = None


@dataclass(frozen=True, slots=True)
class LeadAssigned:
    """A salesperson now holds the lead's pending assignment: routed, reassigned by hand, by the SLA or because
    the previous owner was disabled. Subscribers push the card (bot/handoff) and start the SLA timers."""

    lead_id: int
    assignment_id: int
    user_id: int
    rule: str  # "routing.rules[2]", "routing.default_owner", "manual", "sla.reassign", "member_disabled"
    at: datetime
    previous_assignment_id: int | None = None
    previous_user_id: int | None = None


@dataclass(frozen=True, slots=True)
class LeadAccepted:
    """Sales accepted the lead (SAL): the CRM hears of it, the card shows who accepted, the SLA stops."""

    lead_id: int
    assignment_id: int
    user_id: int  # who accepted (the assignee, or a team lead / manager acting for them)
    at: datetime


@dataclass(frozen=True, slots=True)
class LeadReturned:
    """Sales returned the lead with a reason: back to the SDR queue and nurture; the SLA stops."""

    lead_id: int
    assignment_id: int
    user_id: int
    reason: str  # one of handoff.return_reasons
    text: str
    at: datetime


# What nurture journeys start from besides the events above (leads/journeys/enrolment.py). Publishers send them
# only to a registry that has a subscriber for them, so the inbox pays nothing while no journey listens.


@dataclass(frozen=True, slots=True)
class TouchpointSeen:
    """A touchpoint of ``kind`` ("form_submit", "content_download", "oa_subscribe") was recorded for the lead."""

    lead_id: int
    kind: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ScoreCrossed:
    """The lead's motivation score moved from ``old`` to ``new`` (published when it changes)."""

    lead_id: int
    old: float
    new: float
    at: datetime


@dataclass(frozen=True, slots=True)
class FormSubmitted:
    lead_id: int
    form_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TagAdded:
    lead_id: int
    tag: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LeadInactive:
    """A daily sweep found no touchpoint from the lead since ``last_activity_at``."""

    lead_id: int
    last_activity_at: datetime
    at: datetime

    @property
    def days(self) -> int:
        return (self.at - self.last_activity_at).days


DomainEvent = (QuadrantEntered | StageChanged | BecameMQL | LeadAssigned | LeadAccepted | LeadReturned | TouchpointSeen
               | ScoreCrossed | FormSubmitted | TagAdded | LeadInactive)
EVENT_TYPES: tuple[type, ...] = (QuadrantEntered, StageChanged, BecameMQL, LeadAssigned, LeadAccepted, LeadReturned,
                                 TouchpointSeen, ScoreCrossed, FormSubmitted, TagAdded, LeadInactive)


def stage_events(change: StageChanged) -> tuple[StageChanged | BecameMQL, ...]:
    """What a stage change means: itself, and becoming an MQL when it does."""
    if change.to_stage != MQL:
        return (change,)
    return change, BecameMQL(change.lead_id, change.from_stage, change.actor, change.at, change.actor_id,
                             change.touchpoint_id)


Tx = TypeVar("Tx")
# A subscriber gets the publisher's transaction and the events of one type from one publish, in order: one on
# the incremental path, a whole batch in `leadrelay scores recompute`, so set-based work stays set-based.
Subscriber = Callable[[Tx, Sequence[Any]], Awaitable[None]]


class DomainEvents(Generic[Tx]):
    """Subscribers per event type. Built once at start-up; ``subscribe`` returns a new registry, so one that
    is in use never changes (a plain dict inside, not a proxy: registries of picklable subscribers travel to
    recompute worker processes)."""

    __slots__ = ("_subscribers",)

    def __init__(self) -> None:
        self._subscribers: dict[type, tuple[Subscriber[Tx], ...]] = {}

    def subscribe(self, event_type: type, subscriber: Subscriber[Tx]) -> DomainEvents[Tx]:
        """This registry plus ``subscriber`` for ``event_type`` (after the ones it already has)."""
        if event_type not in EVENT_TYPES:
            known = ", ".join(t.__name__ for t in EVENT_TYPES)
            raise TypeError(f"{event_type!r} is not a domain event (one of {known})")
        out: DomainEvents[Tx] = DomainEvents()
        out._subscribers = {**self._subscribers, event_type: (*self._subscribers.get(event_type, ()), subscriber)}
        return out

    def subscribers(self, event_type: type) -> tuple[Subscriber[Tx], ...]:
        return self._subscribers.get(event_type, ())

    async def dispatch(self, tx: Tx, events: Iterable[DomainEvent]) -> None:
        """Every subscriber of each event type present, once, with that type's events (publishers go through
        a Publisher, which orders what subscribers publish in turn).

        Types go in the order their first event came, subscribers in the order they subscribed. An exception
        stops here and reaches the publisher: its transaction rolls back, the event's cause with it.
        """
        groups: dict[type, list[DomainEvent]] = {}
        for event in events:
            kind = type(event)
            if kind not in EVENT_TYPES:
                raise TypeError(f"{event!r} is not a domain event")
            if kind in self._subscribers:
                groups.setdefault(kind, []).append(event)
        for kind, batch in groups.items():
            for subscriber in self._subscribers[kind]:
                await subscriber(tx, tuple(batch))


class Publisher(Generic[Tx]):
    """Publishing within one transaction (one per session or batch, used by one task at a time).

    What subscribers publish while hearing an event (a quadrant action changing the stage) waits until every
    subscriber has heard that event: causes before consequences, for every subscriber whatever its place in
    the registry. The call that started it returns once the consequences, and theirs, have been heard.
    """

    __slots__ = ("events", "_queue")

    def __init__(self, events: DomainEvents[Tx]) -> None:
        self.events = events
        self._queue: list[DomainEvent] | None = None  # not None while dispatching: what waits for its turn

    async def publish(self, tx: Tx, events: Iterable[DomainEvent]) -> None:
        if self._queue is not None:
            self._queue.extend(events)
            return
        self._queue = list(events)
        try:
            while self._queue:
                generation, self._queue = self._queue, []
                await self.events.dispatch(tx, generation)
        finally:
            self._queue = None
