"""Nurture configuration: ``[[journeys]]`` (trigger, steps, exit, re-entry), ``[nurture]`` (quiet hours, time
zone, weekly caps per channel) and ``[batch]`` (how many mass messages WeCom lets a customer receive, reminders).

Parsed into the pure leads.journeys dataclasses; every error names the full key, down to the nested step
(``journeys[2].steps[1].yes[0].action``). Example journeys: deploy/journeys.example.toml.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config.journey_steps import parse_steps
from bot.config.validate import check, integer, known_keys, number, str_list, string, table, tables, text
from bot.errors import ConfigError
from leads.journeys.definition import (
    TRIGGER_KINDS,
    Action,
    Check,
    Condition,
    Exit,
    Journey,
    Reentry,
    Step,
    Trigger,
)
from leads.journeys.policy import ANY_CHANNEL, QuietHours, SendPolicy, parse_quiet_hours
from leads.lifecycle import STAGES
from leads.scoring_rules import QUADRANTS

_ID = re.compile(r"^[a-z0-9_\-]{1,64}$")  # as scoring.actions checks journey:<id>
JOURNEY_KEYS = ("id", "name", "trigger", "steps", "exit", "reentry")
TRIGGER_VALUE_KEY = {"event": "event", "quadrant_entered": "quadrant", "stage_entered": "stage",
                     "form_submitted": "form", "tag_added": "tag"}
CHANNELS = ("oa", "wecom")


@dataclass(frozen=True, slots=True)
class NurtureConfig:
    quiet_hours: str = "21:00-08:00"  # "" for none
    timezone: str = "Asia/Shanghai"
    weekly_cap: dict[str, int] = field(default_factory=lambda: {ANY_CHANNEL: 3})  # channel or "*" -> sends
    step_interval_s: float = 5.0  # how often each process looks for due journey steps
    batch_size: int = 500  # due enrolments per transaction

    def send_policy(self) -> SendPolicy:
        tz = ZoneInfo(self.timezone)
        quiet = parse_quiet_hours(self.quiet_hours, tz) if self.quiet_hours else QuietHours(time(0), time(0), tz)
        return SendPolicy(quiet, dict(self.weekly_cap))


@dataclass(frozen=True, slots=True)
class BatchConfig:
    customer_limit_period: str = "month"  # day | week | month
    customer_limit: int = 0  # mass messages per customer per period; month: 0, as many as the month has days
    remind_max_per_day: int = 3  # remind_groupmsg_send: WeCom allows 3 per message per 24 hours

    def limit_on(self, day: date) -> int:
        """How many mass messages a customer may receive in the period that contains ``day``."""
        if self.customer_limit_period == "month":
            return calendar.monthrange(day.year, day.month)[1]
        return self.customer_limit


def build_journeys(raw: Any) -> tuple[Journey, ...]:
    """``[[journeys]]`` (absent: none) into Journey definitions, ids unique."""
    entries = tables("journeys", raw if raw is not None else [])
    out = tuple(_journey(f"journeys[{i}]", entry) for i, entry in enumerate(entries))
    for i, journey in enumerate(out):
        check(all(j.id != journey.id for j in out[:i]), f"journeys[{i}].id", f"duplicate id {journey.id!r}")
    return out


def validate_journeys(journeys: tuple[Journey, ...], return_reasons: tuple[str, ...], *,
                      webhook_secret: str | None = None) -> None:
    """Cross-section checks once [handoff] and [crm] are known: a re-nurture journey names only real return
    reasons; a webhook step is signed with crm.webhook_secret and sent by the CRM client, so both must exist
    (``webhook_secret`` None: not checked)."""
    for i, journey in enumerate(journeys):
        if webhook_secret is not None and _has_webhook(journey.steps):
            check(bool(webhook_secret), f"journeys[{i}].steps",
                  "a webhook step needs crm.webhook_url and crm.webhook_secret (its requests are signed with it)")
        for reason in journey.trigger.reasons:
            check(reason in return_reasons, f"journeys[{i}].trigger.reasons",
                  f"{reason!r} is not one of handoff.return_reasons")
        for where, check_ in _checks(f"journeys[{i}].steps", journey.steps):
            check(check_.kind != "return_reason" or check_.value in return_reasons, f"{where}.if.return_reason",
                  f"{check_.value!r} is not one of handoff.return_reasons")


def _has_webhook(steps: tuple[Step, ...]) -> bool:
    return any(isinstance(s, Action) and s.kind == "webhook" or
               isinstance(s, Condition) and (_has_webhook(s.yes) or _has_webhook(s.no)) for s in steps)


def _checks(key: str, steps: tuple[Step, ...]) -> list[tuple[str, Check]]:
    out: list[tuple[str, Check]] = []
    for i, step in enumerate(steps):
        if isinstance(step, Condition):
            out += [(f"{key}[{i}]", step.check), *_checks(f"{key}[{i}].yes", step.yes),
                    *_checks(f"{key}[{i}].no", step.no)]
    return out


def build_nurture(raw: Any) -> NurtureConfig:
    """``[nurture]``: quiet_hours "21:00-08:00" (may cross midnight), timezone, weekly_cap = 3 or {oa = 3, ...}."""
    entry = known_keys("nurture", raw if raw is not None else {},
                       ("quiet_hours", "timezone", "weekly_cap", "step_interval_s", "batch_size", "journeys_file"))
    zone = text("nurture.timezone", entry.get("timezone", "Asia/Shanghai"))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError("nurture.timezone", f"unknown time zone {zone!r}") from exc
    quiet = string("nurture.quiet_hours", entry.get("quiet_hours", "21:00-08:00")).strip()
    if quiet:
        try:
            parse_quiet_hours(quiet)
        except ValueError as exc:
            raise ConfigError("nurture.quiet_hours", f"{quiet!r} must be HH:MM-HH:MM, e.g. \"21:00-08:00\"") from exc
    raw_cap = entry.get("weekly_cap", 3)
    if isinstance(raw_cap, dict):
        cap = {}
        for channel, value in raw_cap.items():
            key = f"nurture.weekly_cap.{channel}"
            check(channel in (*CHANNELS, ANY_CHANNEL), key, f"unknown channel; known: {', '.join(CHANNELS)}")
            cap[channel] = integer(key, value, minimum=1)
    else:
        cap = {ANY_CHANNEL: integer("nurture.weekly_cap", raw_cap, minimum=1)}
    interval = entry.get("step_interval_s", 5.0)
    check(isinstance(interval, int | float) and not isinstance(interval, bool) and 0.1 <= interval <= 3600,
          "nurture.step_interval_s", "must be a number of seconds from 0.1 to 3600")
    batch = integer("nurture.batch_size", entry.get("batch_size", 500), minimum=1)
    check(batch <= 5000, "nurture.batch_size", "must be at most 5000")
    return NurtureConfig(quiet_hours=quiet, timezone=zone, weekly_cap=cap, step_interval_s=float(interval),
                         batch_size=batch)


def build_batch(raw: Any) -> BatchConfig:
    """``[batch]``: customer_limit_period = "day" | "week:N" | "month"; remind_max_per_day 1..3 (default 3)."""
    entry = known_keys("batch", raw if raw is not None else {}, ("customer_limit_period", "remind_max_per_day"))
    period = string("batch.customer_limit_period", entry.get("customer_limit_period", "month")).strip()
    kind, sep, count = period.partition(":")
    if kind == "day" and not sep:
        limit = 1
    elif kind == "month" and not sep:
        limit = 0
    elif kind == "week" and sep and count.isdigit() and 1 <= int(count) <= 7:
        limit = int(count)
    else:
        raise ConfigError("batch.customer_limit_period", f"{period!r} must be \"day\", \"week:N\" (N 1..7) or "
                                                         "\"month\"")
    remind = integer("batch.remind_max_per_day", entry.get("remind_max_per_day", 3), minimum=0)
    check(remind <= 3, "batch.remind_max_per_day", "WeCom allows at most 3 reminders per message per 24 hours")
    return BatchConfig(customer_limit_period=kind, customer_limit=limit, remind_max_per_day=remind)


def _journey(key: str, raw: Any) -> Journey:
    entry = known_keys(key, raw, JOURNEY_KEYS)
    ident = text(f"{key}.id", entry.get("id"))
    check(bool(_ID.match(ident)), f"{key}.id", f"{ident!r}: a journey id is a-z, 0-9, _ and -")
    check("steps" in entry, f"{key}.steps", "is required")
    steps = parse_steps(f"{key}.steps", entry["steps"])
    check(bool(steps), f"{key}.steps", "must have at least one step")
    check("reentry" in entry, f"{key}.reentry", "is required: \"never\", \"after_exit\" or \"after_days:N\"")
    return Journey(id=ident, name=string(f"{key}.name", entry.get("name", ident)).strip() or ident,
                   trigger=_trigger(f"{key}.trigger", entry.get("trigger")), steps=steps,
                   exit=_exit(f"{key}.exit", entry.get("exit", {})), reentry=_reentry(f"{key}.reentry",
                                                                                      entry["reentry"]))


def _trigger(key: str, raw: Any) -> Trigger:
    check(raw is not None, key, "is required")
    kind = text(f"{key}.kind", table(key, raw).get("kind"))
    check(kind in TRIGGER_KINDS, f"{key}.kind", f"unknown trigger {kind!r}; known: {', '.join(TRIGGER_KINDS)}")
    value_key = TRIGGER_VALUE_KEY.get(kind)
    extra = {"score_crossed": "threshold", "inactive_days": "days", "returned_by_sales": "reasons"}.get(kind)
    entry = known_keys(key, raw, tuple(k for k in ("kind", value_key, extra) if k))
    if kind == "score_crossed":
        check("threshold" in entry, f"{key}.threshold", "is required")
        return Trigger(kind, threshold=number(f"{key}.threshold", entry["threshold"]))
    if kind == "inactive_days":
        return Trigger(kind, days=integer(f"{key}.days", entry.get("days"), minimum=1))
    if kind == "returned_by_sales":
        return Trigger(kind, reasons=tuple(str_list(f"{key}.reasons", entry.get("reasons", []))))
    assert value_key is not None
    if kind == "form_submitted":
        return Trigger(kind, string(f"{key}.form", entry.get("form", "")).strip())
    value = text(f"{key}.{value_key}", entry.get(value_key))
    check(kind != "stage_entered" or value in STAGES, f"{key}.stage", f"unknown stage; known: {', '.join(STAGES)}")
    check(kind != "quadrant_entered" or value in QUADRANTS, f"{key}.quadrant",
          f"unknown quadrant; known: {', '.join(QUADRANTS)}")
    return Trigger(kind, value)


def _exit(key: str, raw: Any) -> Exit:
    entry = known_keys(key, raw, ("stage", "unsubscribes", "replies"))
    value = entry.get("stage", ["sal"])
    stages = [value] if isinstance(value, str) else str_list(f"{key}.stage", value)
    for stage in stages:
        check(stage in STAGES, f"{key}.stage", f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
    check(entry.get("unsubscribes", True) is True, f"{key}.unsubscribes",
          "must be true: an unsubscribed lead gets no more marketing (PIPL)")
    replies = entry.get("replies", False)
    check(isinstance(replies, bool), f"{key}.replies", "must be true or false")
    return Exit(stages=tuple(stages), unsubscribes=True, replies=replies)


def _reentry(key: str, raw: Any) -> Reentry:
    value = string(key, raw).strip()
    kind, sep, days = value.partition(":")
    if kind in ("never", "after_exit") and not sep:
        return Reentry(kind)
    check(kind == "after_days" and days.isdigit() and int(days) >= 1, key,
          f"{value!r} must be \"never\", \"after_exit\" or \"after_days:N\" (N at least 1)")
    return Reentry("after_days", int(days))
