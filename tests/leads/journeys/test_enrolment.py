"""Triggers against the domain events, and the re-entry policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leads.events import BecameMQL, LeadReturned, QuadrantEntered, StageChanged
from leads.journeys.definition import Action, Journey, Reentry, Trigger
from leads.journeys.enrolment import PastEnrolment, matches_trigger, should_enrol
from leads.journeys.triggers import FormSubmitted, LeadInactive, ScoreCrossed, TagAdded, TouchpointSeen

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(("trigger", "event", "expected"), [
    (Trigger("event", "form_submit"), TouchpointSeen(1, "form_submit", T0), True),
    (Trigger("event", "form_submit"), TouchpointSeen(1, "subscribe", T0), False),
    (Trigger("score_crossed", threshold=60), ScoreCrossed(1, 55, 60, T0), True),
    (Trigger("score_crossed", threshold=60), ScoreCrossed(1, 60, 70, T0), False),  # already above
    (Trigger("score_crossed", threshold=60), ScoreCrossed(1, 70, 50, T0), False),  # downwards
    (Trigger("quadrant_entered", "nurture"), QuadrantEntered(1, None, "nurture", "lead", T0), True),
    (Trigger("quadrant_entered", "nurture"), QuadrantEntered(1, None, "public_pool", "lead", T0), False),
    (Trigger("stage_entered", "mql"), StageChanged(1, "lead", "mql", "system", "r", T0), True),
    (Trigger("stage_entered", "mql"), BecameMQL(1, "lead", "system", T0), False),  # StageChanged already did
    (Trigger("form_submitted"), FormSubmitted(1, "demo", T0), True),
    (Trigger("form_submitted", "demo"), FormSubmitted(1, "contact", T0), False),
    (Trigger("tag_added", "vip"), TagAdded(1, "vip", T0), True),
    (Trigger("tag_added", "vip"), TagAdded(1, "vi", T0), False),
    (Trigger("inactive_days", days=30), LeadInactive(1, T0 - timedelta(days=30), T0), True),
    (Trigger("inactive_days", days=30), LeadInactive(1, T0 - timedelta(days=29, hours=23), T0), False),
    (Trigger("returned_by_sales"), LeadReturned(1, 7, 3, "联系不上", "", T0), True),
    (Trigger("returned_by_sales", reasons=("预算不足",)), LeadReturned(1, 7, 3, "联系不上", "", T0), False),
    (Trigger("returned_by_sales", reasons=("预算不足",)), LeadReturned(1, 7, 3, "预算不足", "", T0), True),
    (Trigger("tag_added", "vip"), TouchpointSeen(1, "vip", T0), False),  # the wrong event type
])
def test_matches_trigger(trigger, event, expected):
    assert matches_trigger(trigger, event) is expected


def journey(reentry: Reentry) -> Journey:
    return Journey("j", "j", Trigger("tag_added", "vip"), (Action("tag_add", (("tag", "x"),)),), reentry=reentry)


EVENT = TagAdded(1, "vip", T0)
ENDED = PastEnrolment(T0 - timedelta(days=20), T0 - timedelta(days=10))
ACTIVE = PastEnrolment(T0 - timedelta(days=1))


@pytest.mark.parametrize(("reentry", "previous", "reason"), [
    (Reentry("never"), [], "ok"),
    (Reentry("never"), [ENDED], "reentry_never"),
    (Reentry("after_exit"), [ENDED], "ok"),
    (Reentry("after_exit"), [ENDED, ACTIVE], "already_enrolled"),
    (Reentry("after_days", 10), [ENDED], "ok"),
    (Reentry("after_days", 11), [ENDED], "reentry_wait"),
    (Reentry("after_days", 1), [ACTIVE], "already_enrolled"),
])
def test_reentry_policy(reentry, previous, reason):
    decision = should_enrol(journey(reentry), EVENT, previous, T0)
    assert decision.reason == reason
    assert bool(decision) is (reason == "ok")


def test_no_match_no_enrolment():
    assert should_enrol(journey(Reentry("after_exit")), TagAdded(1, "other", T0), [], T0).reason == "no_match"
