"""Events journeys start from that the product does not publish yet; their publishers come with the engine.

The rest (quadrant and stage changes, a lead returned by sales) are the domain events of leads/events.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TouchpointSeen:
    """A touchpoint of ``kind`` ("form_submit", "content_download", "subscribe") was recorded for the lead."""

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


TriggerEvent = TouchpointSeen | ScoreCrossed | FormSubmitted | TagAdded | LeadInactive
