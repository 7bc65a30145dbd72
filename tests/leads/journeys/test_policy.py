"""Send-time rules: quiet hours, weekly caps, consent and the OA 48-hour window, each with its reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.journeys.definition import Action
from leads.journeys.machine import LeadView
from leads.journeys.policy import (
    QuietHours,
    SendDecision,
    SendPolicy,
    cap_reason,
    decide_send,
    is_quiet,
    next_allowed,
    parse_quiet_hours,
)

CN = ZoneInfo("Asia/Shanghai")
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=CN)
LEAD = LeadView(stage="lead", follows_oa=True, wecom_contact=True)
TEMPLATE = Action("oa_template", (("template", "welcome"), ("text", "欢迎")))
CUSTOM = Action("oa_custom", (("template", "fallback"), ("text", "您好")))
CUSTOM_ONLY = Action("oa_custom", (("text", "您好"),))
WECOM = Action("wecom_task", (("text", "您好"),))
POLICY = SendPolicy()


def local(h: int, m: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 3, day, h, m, tzinfo=CN)


@pytest.mark.parametrize(("now", "expected"), [
    (local(20, 59), local(20, 59)),  # before quiet hours: now
    (local(21, 0), local(8, 0, day=3)),  # evening: next morning
    (local(23, 30), local(8, 0, day=3)),
    (local(2, 0), local(8, 0)),  # after midnight: this morning
    (local(8, 0), local(8, 0)),
])
def test_a_send_due_in_quiet_hours_waits_for_the_morning(now, expected):
    assert next_allowed(QuietHours(), now) == expected
    if now != expected:
        decision = decide_send(TEMPLATE, LEAD, now, POLICY, {})
        assert decision == SendDecision(False, expected, "oa", "quiet_hours", TEMPLATE)


def test_quiet_hours_within_one_day_and_none():
    lunch = parse_quiet_hours("12:00-13:30", CN)
    assert is_quiet(lunch, local(12, 0)) and not is_quiet(lunch, local(13, 30))
    assert next_allowed(lunch, local(12, 10)) == local(13, 30)
    assert not is_quiet(QuietHours(time(0), time(0), CN), local(3))
    with pytest.raises(ValueError):
        parse_quiet_hours("9-18")


def test_quiet_hours_are_local_time_whatever_the_clock_zone():
    assert is_quiet(QuietHours(), datetime(2026, 3, 2, 14, 0, tzinfo=UTC))  # 22:00 in Shanghai
    assert not is_quiet(QuietHours(), datetime(2026, 3, 2, 2, 0, tzinfo=UTC))  # 10:00


def test_weekly_cap_per_channel_counts_only_the_last_seven_days():
    policy = SendPolicy(weekly_cap={"oa": 2, "*": 5})
    two_recent = [NOON - timedelta(days=1), NOON - timedelta(days=6)]
    assert cap_reason(policy, "oa", two_recent, NOON) == "weekly_cap:oa"
    assert cap_reason(policy, "oa", [NOON - timedelta(days=1), NOON - timedelta(days=8)], NOON) == ""
    assert cap_reason(policy, "wecom", two_recent, NOON) == ""  # the "*" cap of 5
    decision = decide_send(TEMPLATE, LEAD, NOON, policy, {"oa": two_recent})
    assert (decision.send, decision.reason) == (False, "weekly_cap:oa")
    assert decide_send(WECOM, LEAD, NOON, policy, {"oa": two_recent}).send


def test_consent_is_checked_at_send_time():
    revoked = replace(LEAD, unsubscribed=True)
    for action in (TEMPLATE, CUSTOM, WECOM):
        assert decide_send(action, revoked, NOON, POLICY, {}) == SendDecision(False, None, "", "unsubscribed")
    # Internal actions still run: tagging or telling the owner is not marketing to the lead.
    assert decide_send(Action("notify_owner", (("text", "x"),)), revoked, NOON, POLICY, {}).send


def test_the_48_hour_window_allows_custom_then_falls_back_or_skips():
    inside = replace(LEAD, last_inbound_at=NOON - timedelta(hours=47))
    outside = replace(LEAD, last_inbound_at=NOON - timedelta(hours=49))
    assert decide_send(CUSTOM, inside, NOON, POLICY, {}) == SendDecision(True, None, "oa", "ok", CUSTOM)
    fallback = decide_send(CUSTOM, outside, NOON, POLICY, {})
    assert (fallback.send, fallback.reason) == (True, "oa_window_template")
    assert fallback.action == Action("oa_template", (("template", "fallback"), ("text", "您好")))
    assert decide_send(CUSTOM_ONLY, outside, NOON, POLICY, {}) == SendDecision(False, None, "", "oa_window_closed")
    assert decide_send(CUSTOM_ONLY, LEAD, NOON, POLICY, {}).reason == "oa_window_closed"  # never wrote to us


def test_channel_prerequisites():
    assert decide_send(TEMPLATE, replace(LEAD, follows_oa=False), NOON, POLICY, {}).reason == "not_oa_follower"
    assert decide_send(WECOM, replace(LEAD, wecom_contact=False), NOON, POLICY, {}).reason == "no_wecom_relationship"


times = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))
clock = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@settings(max_examples=500, deadline=None)
@given(clock, clock, times)
def test_next_allowed_is_never_quiet_never_early_and_at_most_a_day_away(start, end, now):
    quiet = QuietHours(start, end, CN)
    when = next_allowed(quiet, now)
    assert when >= now
    assert not is_quiet(quiet, when)
    assert when - now <= timedelta(days=1)
    if when != now:
        assert when.astimezone(CN).time() == end  # it waits for the end of the quiet spell, not later
