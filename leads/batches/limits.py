"""A WeCom customer's receive limit: which period a send falls in, in China time, and whether one more fits.

WeCom counts per natural period: a day, a week (Monday to Sunday, the admin's "7 a week") or a month (as many
as the month has days). The count is what we sent the customer in that period (ours are the only mass
messages we know of; WeCom's own status 3 reports the rest).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")
PERIODS = ("day", "week", "month")


def period_start(period: str, now: datetime, tz: tzinfo = CHINA) -> datetime:
    """The UTC instant the period containing ``now`` began."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}")
    local = now.astimezone(tz).date()
    if period == "week":
        local -= timedelta(days=local.weekday())
    elif period == "month":
        local = local.replace(day=1)
    return datetime.combine(local, time(0), tzinfo=tz).astimezone(UTC)


def fits(received: int, limit: int) -> bool:
    """May a customer who received ``received`` in the period get one more? A limit below 1 lets nobody."""
    return received < limit
