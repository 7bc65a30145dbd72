"""Whether a journey message may reach the lead now: consent, the OA 48-hour window, weekly caps, quiet hours.

Decided at send time, not at enrolment: a lead who unsubscribed yesterday is skipped today. Each rule gives a
reason the caller records on the lead's timeline. Only actions that reach the prospect are judged here; tags,
stage changes and notes to our own people always go ahead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo

from leads.journeys.definition import CUSTOMER_ACTIONS, Action
from leads.journeys.machine import CHINA, LeadView

OA_WINDOW = timedelta(hours=48)  # customer-service messages after this fail with 45015
WEEK = timedelta(days=7)
ANY_CHANNEL = "*"
CHANNELS = {"oa_template": "oa", "oa_custom": "oa", "wecom_task": "wecom"}
_SPAN = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No sends from ``start`` to ``end`` local time; start > end crosses midnight; start == end: never quiet."""

    start: time = time(21, 0)
    end: time = time(8, 0)
    tz: tzinfo = CHINA


@dataclass(frozen=True, slots=True)
class SendPolicy:
    quiet: QuietHours = field(default_factory=QuietHours)
    weekly_cap: Mapping[str, int] = field(default_factory=lambda: {ANY_CHANNEL: 3})  # channel (or "*") -> sends


@dataclass(frozen=True, slots=True)
class SendDecision:
    send: bool
    defer_until: datetime | None
    channel: str  # "oa", "wecom", "internal", or "" when nothing could go out
    reason: str  # "ok", "quiet_hours", "unsubscribed", "weekly_cap:oa", "oa_window_template", ...
    action: Action | None = None  # what to send: the template fallback replaces an OA custom message


def parse_quiet_hours(span: str, tz: tzinfo = CHINA) -> QuietHours:
    """"21:00-08:00" into QuietHours; ValueError when it is not HH:MM-HH:MM."""
    m = _SPAN.fullmatch(span.strip())
    if m is None:
        raise ValueError(f"{span!r} is not HH:MM-HH:MM")
    return QuietHours(time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4])), tz)


def is_quiet(quiet: QuietHours, at: datetime) -> bool:
    local = at.astimezone(quiet.tz).time().replace(tzinfo=None)
    if quiet.start == quiet.end:
        return False
    if quiet.start < quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end


def next_allowed(quiet: QuietHours, now: datetime) -> datetime:
    """``now`` outside quiet hours, else the end of this quiet spell (the morning)."""
    if not is_quiet(quiet, now):
        return now
    local = now.astimezone(quiet.tz)
    end = datetime.combine(local.date(), quiet.end, tzinfo=quiet.tz)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), quiet.end, tzinfo=quiet.tz)
    return end


def cap_reason(policy: SendPolicy, channel: str, sends: Sequence[datetime], now: datetime) -> str:
    """"" when one more send on ``channel`` fits the weekly cap, else the reason; ``sends`` may hold older ones."""
    cap = policy.weekly_cap.get(channel, policy.weekly_cap.get(ANY_CHANNEL))
    if cap is None:
        return ""
    recent = sum(1 for t in sends if now - WEEK < t <= now)
    return f"weekly_cap:{channel}" if recent >= cap else ""


def decide_send(action: Action, lead: LeadView, now: datetime, policy: SendPolicy,
                sends: Mapping[str, Sequence[datetime]]) -> SendDecision:
    """May ``action`` go out now? ``sends`` holds the lead's sends per channel over (at least) the last 7 days.

    Order matters: consent first (nothing else matters then), then what would be sent (the 48-hour window picks
    the message), then the cap on that channel, and quiet hours last, as they only delay. A deferred send is
    decided again when it comes due: the window may have closed and consent been revoked in the meantime.
    """
    if action.kind not in CUSTOMER_ACTIONS:
        return SendDecision(True, None, "internal", "ok", action)
    if lead.unsubscribed:
        return SendDecision(False, None, "", "unsubscribed")
    send, reason = action, "ok"
    if action.kind == "oa_custom":
        send, reason = _oa_window(action, lead, now)
        if send is None:
            return SendDecision(False, None, "", reason)
    if send.kind in ("oa_template", "oa_custom") and not lead.follows_oa:
        return SendDecision(False, None, "", "not_oa_follower")
    if send.kind == "wecom_task" and not lead.wecom_contact:
        return SendDecision(False, None, "", "no_wecom_relationship")
    channel = CHANNELS[send.kind]
    capped = cap_reason(policy, channel, sends.get(channel, ()), now)
    if capped:
        return SendDecision(False, None, channel, capped)
    when = next_allowed(policy.quiet, now)
    if when != now:
        return SendDecision(False, when, channel, "quiet_hours", send)
    return SendDecision(True, None, channel, reason, send)


def _oa_window(action: Action, lead: LeadView, now: datetime) -> tuple[Action | None, str]:
    if lead.last_inbound_at is not None and now - lead.last_inbound_at <= OA_WINDOW:
        return action, "ok"
    template = action.param("template")
    if not template:
        return None, "oa_window_closed"
    params = tuple(sorted((k, v) for k, v in action.params if k != "template")) + (("template", template),)
    return Action("oa_template", tuple(sorted(params))), "oa_window_template"
