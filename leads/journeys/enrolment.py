"""Whether an event enrols a lead in a journey: the trigger matches, and the re-entry policy lets it in.

A lead never has two active enrolments in one journey: a re-entering lead is scheduled once, not twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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
from leads.journeys.definition import Journey, Trigger


@dataclass(frozen=True, slots=True)
class PastEnrolment:
    """One of the lead's enrolments in the journey; ``ended_at`` None while it is active."""

    started_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EnrolDecision:
    enrol: bool
    reason: str  # "ok", "no_match", "already_enrolled", "reentry_never", "reentry_wait"

    def __bool__(self) -> bool:
        return self.enrol


def matches_trigger(trigger: Trigger, event: Any) -> bool:
    """Does ``event`` (a leads.events domain event or a leads.journeys.triggers event) fire ``trigger``?"""
    kind = trigger.kind
    if kind == "event" and isinstance(event, TouchpointSeen):
        return event.kind == trigger.value
    if kind == "score_crossed" and isinstance(event, ScoreCrossed):
        return trigger.threshold is not None and event.old < trigger.threshold <= event.new
    if kind == "quadrant_entered" and isinstance(event, QuadrantEntered):
        return event.new == trigger.value and event.old != event.new
    if kind == "stage_entered" and isinstance(event, StageChanged):  # not BecameMQL: it repeats StageChanged
        return event.to_stage == trigger.value and event.from_stage != event.to_stage
    if kind == "form_submitted" and isinstance(event, FormSubmitted):
        return trigger.value in ("", event.form_id)
    if kind == "tag_added" and isinstance(event, TagAdded):
        return event.tag == trigger.value
    if kind == "inactive_days" and isinstance(event, LeadInactive):
        return trigger.days is not None and event.days >= trigger.days
    if kind == "returned_by_sales" and isinstance(event, LeadReturned):
        return not trigger.reasons or event.reason in trigger.reasons
    return False


def should_enrol(journey: Journey, event: Any, previous: Sequence[PastEnrolment], now: datetime) -> EnrolDecision:
    """Enrol the event's lead in ``journey`` now? ``previous``: the lead's enrolments in this journey."""
    if not matches_trigger(journey.trigger, event):
        return EnrolDecision(False, "no_match")
    return may_enter(journey, previous, now)


def may_enter(journey: Journey, previous: Sequence[PastEnrolment], now: datetime) -> EnrolDecision:
    """The re-entry policy alone: for an enrolment the trigger does not decide (the quadrant action
    ``journey:<id>`` names the journey itself)."""
    if any(p.ended_at is None for p in previous):
        return EnrolDecision(False, "already_enrolled")
    if not previous:
        return EnrolDecision(True, "ok")
    policy = journey.reentry
    if policy.kind == "never":
        return EnrolDecision(False, "reentry_never")
    if policy.kind == "after_days":
        last_end = max(p.ended_at for p in previous if p.ended_at is not None)
        if now - last_end < timedelta(days=policy.days):
            return EnrolDecision(False, "reentry_wait")
    return EnrolDecision(True, "ok")
