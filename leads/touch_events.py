"""What recording a touchpoint or a new score publishes (leads/events.py): the one rule for every path that
records them, one at a time (storage/repos/leads.py, storage/repos/scores.py) or a batch at once
(storage/repos/activity_batch.py). Events nobody listens for are not built."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from leads.events import DomainEvent, DomainEvents, FormSubmitted, QuadrantEntered, ScoreCrossed, TouchpointSeen


def touchpoint_events(events: DomainEvents[Any], lead_id: int, kind: str, at: datetime,
                      detail: Mapping[str, Any] | None) -> list[DomainEvent]:
    """Journeys that start from a touchpoint or a form hear of it."""
    heard: list[DomainEvent] = []
    if events.subscribers(TouchpointSeen):
        heard.append(TouchpointSeen(lead_id, kind, at))
    if kind == "form_submit" and events.subscribers(FormSubmitted):
        heard.append(FormSubmitted(lead_id, str((detail or {}).get("form", "")), at))
    return heard


def score_events(events: DomainEvents[Any], lead_id: int, stage: str, old_quadrant: str | None, quadrant: str,
                 old_motivation: float | None, motivation: float, at: datetime,
                 touchpoint_id: int | None) -> list[DomainEvent]:
    """A lead's scores were saved: another quadrant is always published (its actions listen), a moved
    motivation when someone listens."""
    heard: list[DomainEvent] = []
    if quadrant != old_quadrant:
        heard.append(QuadrantEntered(lead_id, old_quadrant, quadrant, stage, at, touchpoint_id))
    before = old_motivation or 0.0
    if motivation != before and events.subscribers(ScoreCrossed):
        heard.append(ScoreCrossed(lead_id, float(before), motivation, at))
    return heard
