"""Plain activities (leads/activity.py) and what recording touches and scores publishes (leads/touch_events.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leads.activity import Activity, Touch
from leads.events import DomainEvents, FormSubmitted, QuadrantEntered, ScoreCrossed, TouchpointSeen
from leads.identity import OA_OPENID, PHONE, IdentityKey
from leads.sources import Source
from leads.touch_events import score_events, touchpoint_events

AT = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


async def _heard(tx, events) -> None:  # a subscriber that only has to exist
    return None


def test_an_activity_belongs_to_a_sender_wechat_vouches_for():
    touch = Touch("oa_message_text", Source("wechat_oa", "conversation"))
    assert Activity(IdentityKey(OA_OPENID, "wx1", "o1"), AT, (touch,)).touches == (touch,)
    with pytest.raises(ValueError):
        Activity(IdentityKey(PHONE, "", "13800000000"), AT, (touch,))  # a typed phone decides nothing


def test_touch_events_are_built_only_for_listeners():
    nobody: DomainEvents = DomainEvents()
    assert touchpoint_events(nobody, 1, "form_submit", AT, {"form": "demo"}) == []
    journeys = nobody.subscribe(TouchpointSeen, _heard).subscribe(FormSubmitted, _heard)
    assert touchpoint_events(journeys, 1, "form_submit", AT, {"form": "demo"}) == [
        TouchpointSeen(1, "form_submit", AT), FormSubmitted(1, "demo", AT)]
    assert touchpoint_events(journeys, 1, "oa_click", AT, None) == [TouchpointSeen(1, "oa_click", AT)]


def test_another_quadrant_is_always_published_a_moved_score_only_to_listeners():
    nobody: DomainEvents = DomainEvents()
    assert score_events(nobody, 7, "lead", "nurture", "nurture", 31.0, 51.0, AT, 9) == []
    assert score_events(nobody, 7, "lead", "nurture", "sales_ready", 31.0, 51.0, AT, 9) == [
        QuadrantEntered(7, "nurture", "sales_ready", "lead", AT, 9)]
    crossing = nobody.subscribe(ScoreCrossed, _heard)
    assert score_events(crossing, 7, "lead", None, "public_pool", None, 0.0, AT, None) == [
        QuadrantEntered(7, None, "public_pool", "lead", AT, None)]  # a new lead: 0 -> 0 is no move
    assert score_events(crossing, 7, "lead", "nurture", "nurture", 31.0, 51.0, AT, 9) == [
        ScoreCrossed(7, 31.0, 51.0, AT)]
