"""The customer's receive limit: the period a send falls in (China time) and whether one more fits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leads.batches.limits import CHINA, fits, period_start


def test_periods_start_at_midnight_in_china() -> None:
    now = datetime(2026, 12, 3, 17, 30, tzinfo=UTC)  # Friday 4 December, 01:30 in China
    assert period_start("day", now) == datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
    assert period_start("week", now) == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)  # Monday 30 Nov 00:00 CST
    assert period_start("month", now) == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # 1 December 00:00 CST


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
       st.sampled_from(["day", "week", "month"]))
def test_the_period_contains_now_and_is_at_most_a_month_long(now, period) -> None:
    start = period_start(period, now)
    assert start <= now < start + timedelta(days=32)
    local = start.astimezone(CHINA)
    assert (local.hour, local.minute, local.second) == (0, 0, 0)
    assert period != "week" or local.weekday() == 0
    assert period != "month" or local.day == 1


def test_an_unknown_period_is_refused() -> None:
    with pytest.raises(ValueError):
        period_start("year", datetime(2026, 1, 1, tzinfo=UTC))


def test_one_more_fits_only_below_the_limit() -> None:
    assert fits(0, 1) and not fits(1, 1) and fits(30, 31) and not fits(31, 31) and not fits(0, 0)
