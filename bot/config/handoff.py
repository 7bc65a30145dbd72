"""The hand-off's configuration: ``[[routing.rules]]`` and ``routing.default_owner`` (who gets an MQL),
``[sla]`` (how long a pushed MQL may wait, in business hours, China time), ``[crm]`` (where accepted leads go)
and ``[handoff]`` (the reasons sales may give for returning a lead, the mobile sign-in link's lifetime).

Rules are checked here, in order, for shape; whether a team or user exists is the database's to say, at routing
time (an unknown team is logged and skipped, an unknown default owner leaves the MQL in the SDR queue).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config.validate import build_section, check, known_keys, number, str_list, string, tables, text
from bot.errors import ConfigError

# What a rule can match on: the lead's profile fields (leads/profile.py codes), its first touch's channel, its
# quadrant, and its motivation score (min_score / max_score, inclusive).
MATCH_KEYS = ("region", "industry", "product_line", "company_size", "channel", "quadrant")
RULE_KEYS = ("team", *MATCH_KEYS, "min_score", "max_score", "name")
DEFAULT_RETURN_REASONS = ("预算不足", "非决策人", "需求不匹配", "联系不上", "重复")
_HOURS = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])")


@dataclass(frozen=True, slots=True)
class RoutingRule:
    team: str
    match: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key -> accepted values (any of them)
    min_score: float | None = None
    max_score: float | None = None
    name: str = ""  # shown on the assignment ("华东制造业"); defaults to routing.rules[i]


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    rules: tuple[RoutingRule, ...] = ()
    default_owner: str = ""  # a username; empty: an MQL no rule matches stays in the SDR queue


@dataclass(frozen=True, slots=True)
class SlaConfig:
    remind_after_min: int = 15
    reassign_after_min: int = 60
    escalate_after_min: int = 240
    business_hours: tuple[tuple[time, time], ...] = ((time(9, 0), time(18, 0)),)  # "09:00-18:00", China time
    business_days: tuple[int, ...] = (1, 2, 3, 4, 5)  # ISO weekdays: Monday 1 .. Sunday 7
    holidays: tuple[date, ...] = ()  # days off on business days (国庆, 春节 ...)
    workdays: tuple[date, ...] = ()  # make-up working days on weekends (调休)
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class CrmConfig:
    webhook_url: str = ""  # empty: accepted leads are not sent anywhere (the CSV export still has them)
    webhook_secret: str = ""
    timeout_s: float = 10.0
    max_attempts: int = 10


@dataclass(frozen=True, slots=True)
class HandoffConfig:
    return_reasons: tuple[str, ...] = DEFAULT_RETURN_REASONS
    login_link_ttl_s: int = 900  # `leadrelay user login-link NAME`: valid this long, once


def build_routing(raw: Any) -> RoutingConfig:
    entry = known_keys("routing", raw if raw is not None else {}, ("rules", "default_owner"))
    raw_rules = tables("routing.rules", entry.get("rules", []))
    rules = tuple(_rule(f"routing.rules[{i}]", r) for i, r in enumerate(raw_rules))
    owner = string("routing.default_owner", entry.get("default_owner", "")).strip()
    return RoutingConfig(rules=rules, default_owner=owner)


def _rule(key: str, raw: Any) -> RoutingRule:
    entry = known_keys(key, raw, RULE_KEYS)
    match: dict[str, tuple[str, ...]] = {}
    for name in MATCH_KEYS:
        if name in entry:
            value = entry[name]
            values = [value] if isinstance(value, str) else str_list(f"{key}.{name}", value)
            check(all(v.strip() for v in values), f"{key}.{name}", "must not be empty")
            match[name] = tuple(v.strip() for v in values)
    low = number(f"{key}.min_score", entry["min_score"]) if "min_score" in entry else None
    high = number(f"{key}.max_score", entry["max_score"]) if "max_score" in entry else None
    check(low is None or high is None or low <= high, f"{key}.min_score", "must not exceed max_score")
    name = string(f"{key}.name", entry.get("name", "")).strip()
    return RoutingRule(team=text(f"{key}.team", entry.get("team")), match=match, min_score=low, max_score=high,
                       name=name)


def build_sla(raw: Any) -> SlaConfig:
    entry = known_keys("sla", raw if raw is not None else {}, (
        "remind_after_min", "reassign_after_min", "escalate_after_min", "business_hours", "business_days",
        "holidays", "workdays", "timezone"))
    flat = {k: entry[k] for k in ("remind_after_min", "reassign_after_min", "escalate_after_min", "timezone")
            if k in entry}
    base = build_section("sla", _SlaScalars, flat)
    hours = entry.get("business_hours", ["09:00-18:00"])
    spans = tuple(_span("sla.business_hours", h) for h in ([hours] if isinstance(hours, str) else
                                                            str_list("sla.business_hours", hours)))
    check(bool(spans), "sla.business_hours", "must name at least one span, e.g. \"09:00-18:00\"")
    ordered = sorted(spans)
    check(all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:], strict=False)), "sla.business_hours",
          "spans must not overlap")
    days = entry.get("business_days", [1, 2, 3, 4, 5])
    ok = isinstance(days, list) and all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 7 for d in days)
    check(ok and len(set(days)) == len(days), "sla.business_days", "must be distinct ISO weekdays, 1 (Mon) to 7 (Sun)")
    return SlaConfig(
        remind_after_min=base.remind_after_min, reassign_after_min=base.reassign_after_min,
        escalate_after_min=base.escalate_after_min, business_hours=tuple(ordered), business_days=tuple(sorted(days)),
        holidays=_dates("sla.holidays", entry.get("holidays", [])),
        workdays=_dates("sla.workdays", entry.get("workdays", [])), timezone=base.timezone)


@dataclass(frozen=True, slots=True)
class _SlaScalars:
    remind_after_min: int = 15
    reassign_after_min: int = 60
    escalate_after_min: int = 240
    timezone: str = "Asia/Shanghai"


def _span(key: str, value: str) -> tuple[time, time]:
    m = _HOURS.fullmatch(value.strip())
    check(m is not None, key, f"{value!r} must be HH:MM-HH:MM, e.g. \"09:00-18:00\"")
    assert m is not None
    start = time(int(m[1]), int(m[2]))
    end = time(23, 59, 59, 999999) if m[3] == "24" else time(int(m[3]), int(m[4]))
    check(m[3] != "24" or m[4] == "00", key, f"{value!r}: 24 only as 24:00")
    check(start < end, key, f"{value!r}: the span must end after it starts")
    return start, end


def _dates(key: str, value: Any) -> tuple[date, ...]:
    if isinstance(value, list) and all(isinstance(v, date) and not hasattr(v, "hour") for v in value):
        return tuple(sorted(set(value)))  # TOML date literals: 2026-10-01
    out = []
    for item in str_list(key, value):
        try:
            out.append(date.fromisoformat(item.strip()))
        except ValueError as exc:
            raise ConfigError(key, f"{item!r} is not a date (YYYY-MM-DD)") from exc
    return tuple(sorted(set(out)))


def validate_handoff(routing: RoutingConfig, sla: SlaConfig, crm: CrmConfig, handoff: HandoffConfig) -> None:
    check(1 <= sla.remind_after_min, "sla.remind_after_min", "must be at least 1")
    check(sla.remind_after_min < sla.reassign_after_min, "sla.reassign_after_min", "must be after remind_after_min")
    check(sla.reassign_after_min < sla.escalate_after_min, "sla.escalate_after_min",
          "must be after reassign_after_min")
    try:
        ZoneInfo(sla.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError("sla.timezone", f"unknown time zone {sla.timezone!r}") from exc
    check(not crm.webhook_url or crm.webhook_url.startswith(("http://", "https://")), "crm.webhook_url",
          "must be an http(s) URL")
    check(not crm.webhook_url or len(crm.webhook_secret) >= 16, "crm.webhook_secret",
          "must be at least 16 characters when crm.webhook_url is set (it signs every delivery)")
    check(0 < crm.timeout_s <= 60, "crm.timeout_s", "must be between 0 and 60")
    check(1 <= crm.max_attempts <= 50, "crm.max_attempts", "must be between 1 and 50")
    reasons = handoff.return_reasons
    check(bool(reasons) and all(r.strip() and len(r) <= 40 for r in reasons), "handoff.return_reasons",
          "must be a non-empty list of reasons of at most 40 characters")
    check(len(set(reasons)) == len(reasons), "handoff.return_reasons", "must not repeat a reason")
    check(60 <= handoff.login_link_ttl_s <= 7 * 24 * 3600, "handoff.login_link_ttl_s",
          "must be between 60 and 604800 (seconds)")
    del routing  # shape-checked when built
