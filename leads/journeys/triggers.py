"""The events journeys start from besides stage, quadrant and return events: they live with the other domain
events in leads/events.py and are re-exported here for the journeys' readers."""

from __future__ import annotations

from leads.events import FormSubmitted, LeadInactive, ScoreCrossed, TagAdded, TouchpointSeen

TriggerEvent = TouchpointSeen | ScoreCrossed | FormSubmitted | TagAdded | LeadInactive

__all__ = ["FormSubmitted", "LeadInactive", "ScoreCrossed", "TagAdded", "TouchpointSeen", "TriggerEvent"]
