"""Business-time arithmetic of the hand-off SLA (leads/sla.py): hand examples and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.sla import (
    ESCALATE,
    REASSIGN,
    REMIND,
    SLA_REASSIGN_RULE,
    BusinessCalendar,
    SlaPolicy,
    add_business_minutes,
    business_minutes_between,
    step_times,
)

CST = ZoneInfo("Asia/Shanghai")
DAY = ((time(9, 0), time(18, 0)),)
LUNCH = ((time(9, 0), time(12, 0)), (time(13, 30), time(18, 0)))
ALL_DAY = ((time(0, 0), time.max),)  # "00:00-24:00" as bot/config/handoff.py builds it


def cst(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=CST)


def cal(spans: tuple[tuple[time, time], ...] = DAY, **kw: object) -> BusinessCalendar:
    return BusinessCalendar.build(spans=spans, **kw)  # type: ignore[arg-type]


def test_friday_evening_plus_15_minutes_is_monday_0905() -> None:
    assert cst(2026, 12, 4, 0).isoweekday() == 5
    assert add_business_minutes(cst(2026, 12, 4, 17, 50), 15, cal()) == cst(2026, 12, 7, 9, 5)
    # A lead assigned Friday 17:55 is reminded Monday 09:10, reassigned 09:55, escalated 12:55.
    times = dict(step_times(SlaPolicy(15, 60, 240), cal(), assigned_at=cst(2026, 12, 4, 17, 55), rule="r"))
    assert times == {REMIND: cst(2026, 12, 7, 9, 10), REASSIGN: cst(2026, 12, 7, 9, 55),
                     ESCALATE: cst(2026, 12, 7, 12, 55)}


def test_results_are_utc_and_a_span_end_is_reachable() -> None:
    result = add_business_minutes(cst(2026, 12, 2, 17, 50), 10, cal())
    assert result.tzinfo is UTC and result == cst(2026, 12, 2, 18, 0)
    assert add_business_minutes(result, 1, cal()) == cst(2026, 12, 3, 9, 1)


def test_holidays_are_skipped() -> None:
    national_day = tuple(date(2026, 10, d) for d in range(1, 8))
    assert date(2026, 9, 30).isoweekday() == 3
    calendar = cal(holidays=national_day)
    assert add_business_minutes(cst(2026, 9, 30, 17, 55), 10, calendar) == cst(2026, 10, 8, 9, 5)
    assert add_business_minutes(cst(2026, 9, 30, 17, 55), 10, cal()) == cst(2026, 10, 1, 9, 5)


def test_a_make_up_saturday_counts() -> None:
    assert date(2026, 10, 10).isoweekday() == 6
    calendar = cal(workdays=(date(2026, 10, 10),))
    assert add_business_minutes(cst(2026, 10, 9, 17, 55), 10, calendar) == cst(2026, 10, 10, 9, 5)
    assert add_business_minutes(cst(2026, 10, 9, 17, 55), 10, cal()) == cst(2026, 10, 12, 9, 5)
    # A make-up day also listed as a holiday works: 调休 is the more specific word.
    both = cal(workdays=(date(2026, 10, 10),), holidays=(date(2026, 10, 10),))
    assert both.is_business_day(date(2026, 10, 10))


def test_the_lunch_break_is_not_counted() -> None:
    assert add_business_minutes(cst(2026, 12, 2, 11, 50), 20, cal(LUNCH)) == cst(2026, 12, 2, 13, 40)
    assert add_business_minutes(cst(2026, 12, 2, 12, 30), 5, cal(LUNCH)) == cst(2026, 12, 2, 13, 35)
    assert business_minutes_between(cst(2026, 12, 2, 11, 0), cst(2026, 12, 2, 14, 0), cal(LUNCH)) == 90


def test_a_span_to_midnight() -> None:
    assert add_business_minutes(cst(2026, 12, 2, 23, 50), 20, cal(ALL_DAY)) == cst(2026, 12, 3, 0, 10)
    # Friday 23:50 + 20 minutes on a Monday-to-Friday calendar: Monday 00:10.
    assert add_business_minutes(cst(2026, 12, 4, 23, 50), 20, cal(ALL_DAY)) == cst(2026, 12, 7, 0, 10)


def test_minutes_between() -> None:
    friday, monday = cst(2026, 12, 4, 17, 0), cst(2026, 12, 7, 10, 0)
    assert business_minutes_between(friday, monday, cal()) == 120
    assert business_minutes_between(monday, friday, cal()) == -120
    assert business_minutes_between(cst(2026, 12, 5, 10), cst(2026, 12, 6, 10), cal()) == 0


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        add_business_minutes(datetime(2026, 12, 2, 9), 5, cal())
    with pytest.raises(ValueError):
        add_business_minutes(cst(2026, 12, 2, 9), -1, cal())
    with pytest.raises(ValueError, match="no business time"):
        add_business_minutes(cst(2026, 12, 2, 9), 5, cal(business_days=()))
    with pytest.raises(ValueError):
        cal(((time(9), time(12)), (time(11), time(18))))
    assert add_business_minutes(cst(2026, 12, 5, 3), 0, cal()) == cst(2026, 12, 5, 3)


def test_an_sla_reassignment_keeps_the_original_escalation() -> None:
    policy = SlaPolicy(15, 60, 240)
    first = cst(2026, 12, 2, 9, 0)
    moved = cst(2026, 12, 2, 10, 0)
    times = step_times(policy, cal(), assigned_at=moved, rule=SLA_REASSIGN_RULE, origin_at=first)
    assert times == ((REMIND, cst(2026, 12, 2, 10, 15)), (ESCALATE, cst(2026, 12, 2, 13, 0)))


# ---- properties ----------------------------------------------------------------------------------------------

_days = st.dates(min_value=date(2026, 9, 1), max_value=date(2027, 3, 1))
calendars = st.builds(
    lambda spans, weekdays, holidays, workdays: cal(spans, business_days=tuple(weekdays), holidays=tuple(holidays),
                                                    workdays=tuple(workdays)),
    st.sampled_from([DAY, LUNCH, ALL_DAY, ((time(8, 30), time(8, 45)), (time(20, 0), time(22, 0)))]),
    st.sets(st.integers(1, 7), min_size=1),
    st.lists(_days, max_size=30),
    st.lists(_days, max_size=5),
)
instants = st.datetimes(min_value=datetime(2026, 9, 1), max_value=datetime(2027, 2, 1),
                        timezones=st.just(UTC))
minutes = st.integers(0, 3000)


def _at_span_end(at: datetime, calendar: BusinessCalendar) -> bool:
    day = at.astimezone(calendar.tz).date()
    return any(end == at for d in (day, day - timedelta(days=1)) for _, end in calendar.day_spans(d))


@settings(max_examples=150, deadline=None)
@given(calendars, instants, minutes, minutes)
def test_adding_in_steps_is_adding_at_once(calendar: BusinessCalendar, t: datetime, a: int, b: int) -> None:
    assert add_business_minutes(add_business_minutes(t, a, calendar), b, calendar) == \
        add_business_minutes(t, a + b, calendar)


@settings(max_examples=150, deadline=None)
@given(calendars, instants, minutes, minutes)
def test_monotonic(calendar: BusinessCalendar, t: datetime, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert add_business_minutes(t, low, calendar) <= add_business_minutes(t, high, calendar)
    later = t + timedelta(minutes=b)
    assert add_business_minutes(t, a, calendar) <= add_business_minutes(later, a, calendar)


@settings(max_examples=150, deadline=None)
@given(calendars, instants, st.integers(1, 3000))
def test_the_result_is_business_time_and_exactly_that_much_of_it(calendar: BusinessCalendar, t: datetime,
                                                                  m: int) -> None:
    result = add_business_minutes(t, m, calendar)
    assert calendar.is_business_time(result) or _at_span_end(result, calendar)
    assert result >= t + timedelta(minutes=m)
    assert business_minutes_between(t, result, calendar) == pytest.approx(m)
