"""What to do about a WeCom task its member has not confirmed: wait, remind, or hand it to an SDR.

WeCom allows ``remind_groupmsg_send`` at most 3 times per message per 24 hours (``[batch] remind_max_per_day``);
the decision counts our own reminders in the trailing 24 hours, so no sequence of passes can exceed it. Once
the first day's reminders are spent and the member still has not sent, one SDR task is the fallback (people
follow up where the tool cannot); the task keeps being collected until it is confirmed or gives up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

DAY = timedelta(hours=24)
FIRST_REMINDER_AFTER = timedelta(hours=1)  # a member often confirms within the hour: no nagging before
REMINDER_GAP = timedelta(hours=2)  # spread the day's reminders over the working day
GIVE_UP_AFTER = timedelta(days=7)  # unconfirmed for a week: the customers are recorded as expired

WAIT, REMIND, FALLBACK, EXPIRE = "wait", "remind", "fallback", "expire"


def reminders_in_window(reminders: Sequence[datetime], now: datetime) -> int:
    return sum(1 for at in reminders if now - DAY < at <= now)


def can_remind(reminders: Sequence[datetime], now: datetime, max_per_day: int) -> bool:
    """The hard rule: fewer than ``max_per_day`` reminders in the 24 hours before ``now``."""
    return reminders_in_window(reminders, now) < max_per_day


def next_step(created_at: datetime, reminders: Sequence[datetime], now: datetime, max_per_day: int,
              *, fallen_back: bool) -> str:
    """WAIT, REMIND, FALLBACK (once) or EXPIRE for an unconfirmed task."""
    if now - created_at >= GIVE_UP_AFTER:
        return EXPIRE
    last = max(reminders, default=None)
    if last is not None and now - last < REMINDER_GAP:
        return WAIT
    if len(reminders) < max_per_day and now - created_at >= FIRST_REMINDER_AFTER:
        return REMIND if can_remind(reminders, now, max_per_day) else WAIT
    if not fallen_back and (len(reminders) >= max_per_day or (max_per_day == 0 and now - created_at >= DAY)):
        return FALLBACK
    return WAIT
