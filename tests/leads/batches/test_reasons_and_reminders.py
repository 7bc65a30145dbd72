"""Outcome mapping of WeCom's statuses, and when a member is reminded or handed to an SDR."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from leads.batches import reasons as r
from leads.batches.reminders import (
    EXPIRE,
    FALLBACK,
    REMIND,
    WAIT,
    can_remind,
    next_step,
    reminders_in_window,
)

T0 = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


def test_send_result_statuses_map_to_outcomes() -> None:
    assert [r.result_status(c, member_done=True) for c in (0, 1, 2, 3, 9, "1", True)] == [
        r.UNSENT, r.SENT, r.NOT_FRIEND, r.OVER_LIMIT, r.FAILED, r.FAILED, r.FAILED]
    assert r.result_status(0, member_done=False) == r.WAITING


def test_every_exclusion_and_status_reads_in_chinese() -> None:
    for reason in r.EXCLUSIONS:
        code, label = r.outcome(r.EXCLUDED, reason, None)
        assert code == r.EXCLUDED and label == r.EXCLUSIONS[reason]
    assert r.outcome(r.OA, "", "sent") == (r.SENT, "公众号模板消息已发送")
    assert r.outcome(r.OA, "", None)[0] == r.QUEUED


def test_a_day_of_one_unconfirmed_task() -> None:
    reminders: list[datetime] = []
    steps = []
    for minutes in range(0, 36 * 60, 10):  # a pass every 10 minutes for 36 hours
        now = T0 + timedelta(minutes=minutes)
        step = next_step(T0, reminders, now, 3, fallen_back=any(s == FALLBACK for s in steps))
        steps.append(step)
        if step == REMIND:
            reminders.append(now)
    assert steps.count(REMIND) == 3 and steps.count(FALLBACK) == 1
    assert reminders == [T0 + timedelta(hours=1), T0 + timedelta(hours=3), T0 + timedelta(hours=5)]
    assert steps.index(FALLBACK) > steps.index(REMIND)
    assert next_step(T0, reminders, T0 + timedelta(days=7), 3, fallen_back=True) == EXPIRE
    assert next_step(T0, [], T0 + timedelta(minutes=30), 3, fallen_back=False) == WAIT


@given(st.lists(st.integers(0, 7 * 24 * 60), max_size=60), st.integers(0, 3))
def test_no_sequence_of_passes_reminds_more_than_the_limit_in_any_24_hours(passes, max_per_day) -> None:
    reminders: list[datetime] = []
    fallen = False
    for minutes in sorted(passes):
        now = T0 + timedelta(minutes=minutes)
        step = next_step(T0, reminders, now, max_per_day, fallen_back=fallen)
        if step == REMIND:
            assert can_remind(reminders, now, max_per_day)
            reminders.append(now)
        fallen = fallen or step == FALLBACK
    for at in reminders:
        assert reminders_in_window(reminders, at) <= max_per_day
