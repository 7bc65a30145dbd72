"""Business-time arithmetic for the hand-off SLA: how long a pushed MQL has waited, counted in working minutes.

A ``BusinessCalendar`` is built from plain values (bot/handoff/sla.py reads ``[sla]``): the working spans of a
day in local time (several: a lunch break splits the day), the ISO weekdays that work, holidays (days off on
working weekdays: 国庆, 春节) and make-up working days (调休: a Saturday that works). Time zones go through
zoneinfo; Asia/Shanghai has no DST, but a span is built per local day, so a zone with DST still gets its
wall-clock hours.

Which steps an assignment's clock has (remind, reassign, escalate) and when each is due live here too: pure
decisions the scheduler (bot/handoff/sla_scheduler.py) only carries out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Steps, in order; ``assignments.sla_step`` holds the number of the last one taken (0: none yet).
REMIND, REASSIGN, ESCALATE = "remind", "reassign", "escalate"
STEP_NUMBER = {REMIND: 1, REASSIGN: 2, ESCALATE: 3}
SLA_REASSIGN_RULE = "sla.reassign"  # the rule recorded on an assignment the SLA made
_MAX_DAYS = 3 * 366  # a calendar with no working day at all would otherwise loop for ever


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    spans: tuple[tuple[time, time], ...]  # sorted, not overlapping; an end of time.max means midnight (24:00)
    business_days: frozenset[int]  # ISO weekdays, Monday 1 .. Sunday 7
    holidays: frozenset[date]
    workdays: frozenset[date]  # 调休: working days that are not business_days; wins over holidays
    tz: ZoneInfo

    @classmethod
    def build(cls, *, spans: tuple[tuple[time, time], ...], business_days: tuple[int, ...] = (1, 2, 3, 4, 5),
              holidays: tuple[date, ...] = (), workdays: tuple[date, ...] = (),
              timezone: str = "Asia/Shanghai") -> BusinessCalendar:
        ordered = tuple(sorted(spans))
        if not ordered or any(s >= e for s, e in ordered):
            raise ValueError("a business calendar needs spans that end after they start")
        if any(a[1] > b[0] for a, b in zip(ordered, ordered[1:], strict=False)):
            raise ValueError("business hours must not overlap")
        return cls(ordered, frozenset(business_days), frozenset(holidays), frozenset(workdays), ZoneInfo(timezone))

    def is_business_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day not in self.holidays and day.isoweekday() in self.business_days

    def day_spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of ``day`` as aware local datetimes (none on a day off)."""
        if not self.is_business_day(day):
            return []
        out = []
        for start, end in self.spans:
            end_at = (datetime.combine(day + timedelta(days=1), time(0), self.tz) if end == time.max
                      else datetime.combine(day, end, self.tz))
            out.append((datetime.combine(day, start, self.tz), end_at))
        return out

    def spans_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals that end after ``at``, in order (the first may have started before it)."""
        day = at.astimezone(self.tz).date()
        for offset in range(_MAX_DAYS):
            for start, end in self.day_spans(day + timedelta(days=offset)):
                if end > at:
                    yield start, end
        raise ValueError(f"no business time within {_MAX_DAYS} days: check [sla] business_days and holidays")

    def is_business_time(self, at: datetime) -> bool:
        day = at.astimezone(self.tz).date()
        return any(start <= at < end for start, end in self.day_spans(day))


def add_business_minutes(start: datetime, minutes: int, calendar: BusinessCalendar) -> datetime:
    """``start`` (aware) plus ``minutes`` of business time, in UTC.

    Outside business time the count starts at the next span's start (Friday 17:50 + 15 min = Monday 09:05);
    a result that exhausts a span exactly is that span's end (17:50 + 10 min = 18:00), so adding in steps
    gives what adding at once does. Zero minutes is ``start`` itself.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    if minutes == 0:
        return start.astimezone(UTC)
    remaining = timedelta(minutes=minutes)
    for span_start, span_end in calendar.spans_from(start):
        begin = max(start, span_start)
        available = span_end - begin
        if remaining <= available:
            return (begin + remaining).astimezone(UTC)
        remaining -= available
    raise AssertionError("unreachable: spans_from raises when it runs out")


def business_minutes_between(a: datetime, b: datetime, calendar: BusinessCalendar) -> float:
    """Minutes of business time from ``a`` to ``b`` (negative when ``b`` is earlier)."""
    if a.tzinfo is None or b.tzinfo is None:
        raise ValueError("both times must be timezone-aware")
    if b < a:
        return -business_minutes_between(b, a, calendar)
    total = timedelta()
    for span_start, span_end in calendar.spans_from(a):
        if span_start >= b:
            break
        total += min(span_end, b) - max(span_start, a)
    return total / timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """``[sla]``'s thresholds, in business minutes from the assignment."""

    remind_after_min: int
    reassign_after_min: int
    escalate_after_min: int


def step_times(policy: SlaPolicy, calendar: BusinessCalendar, *, assigned_at: datetime, rule: str,
               origin_at: datetime | None = None) -> tuple[tuple[str, datetime], ...]:
    """When each step of an assignment's SLA is due.

    A fresh assignment (routed, reassigned by hand, re-routed from a disabled member) gets all three. One the
    SLA itself made (``rule`` sla.reassign) is not reassigned again: its holder is reminded, and the lead
    escalates when it has waited ``escalate_after_min`` since ``origin_at``, the assignment the SLA took it
    from; without that, every reassignment would restart the clock and the team lead would never hear.
    """
    remind = add_business_minutes(assigned_at, policy.remind_after_min, calendar)
    if rule != SLA_REASSIGN_RULE:
        return ((REMIND, remind),
                (REASSIGN, add_business_minutes(assigned_at, policy.reassign_after_min, calendar)),
                (ESCALATE, add_business_minutes(assigned_at, policy.escalate_after_min, calendar)))
    return (REMIND, remind), (ESCALATE, add_business_minutes(origin_at or assigned_at, policy.escalate_after_min,
                                                             calendar))
