"""The ``[scoring]`` section: ability and motivation rules, thresholds, decay and quadrant actions.

Absent, or without an ``ability`` / ``motivation`` array, the DOMAIN.md defaults below apply (config.example.toml
spells out the same rules); an explicit empty array means no rules. Every error names the full key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config.capture import BUYING_STAGES
from bot.config.validate import check, integer, known_keys, number, str_list, string, text
from bot.errors import ConfigError
from leads.lifecycle import STAGES
from leads.scoring_rules import QUADRANTS, AbilityRule, Decay, MotivationRule, ScoringRules

_ID = re.compile(r"^[a-z0-9_\-]{1,64}$")
_A, _M = AbilityRule, MotivationRule
DEFAULT_ABILITY: tuple[AbilityRule, ...] = (
    _A("job_vp", "job_title", 10, ("vp_plus",)), _A("job_director", "job_title", 8, ("director",)),
    _A("job_manager", "job_title", 6, ("manager",)),
    _A("dept_hr", "department", 15, ("hr",)), _A("dept_finance", "department", 10, ("finance",)),
    _A("dept_legal", "department", 5, ("legal",)),
    # A size is a form code ("500_999") or a head count (600). Floats, as parsed, so the fingerprint matches.
    _A("size_500_999", "company_size", 5, ("500_999",), 500.0, 999.0),
    _A("size_1000_50000", "company_size", 4, ("1000_50000",), 1000.0, 50000.0),
    _A("size_250_499", "company_size", 3, ("250_499",), 250.0, 499.0),
    _A("type_b2b", "company_type", 10, ("b2b",)), _A("type_b2c", "company_type", 7, ("b2c",)),
    _A("type_nonprofit", "company_type", -5, ("nonprofit",)),
)
DEFAULT_MOTIVATION: tuple[MotivationRule, ...] = (
    _M("email_open", "email_open", 1, max_per_day=1),
    _M("email_click", "email_click", 5, max_per_day=1),
    _M("email_forward", "email_forward", 3, max_per_day=1),
    _M("email_unsubscribe", "email_unsubscribe", -5, max_per_lead=1),
    _M("request_demo", "request_demo", 50, max_per_lead=1),
    _M("visit_pricing", "visit_pricing", 20, max_per_day=1),
    _M("visit_several_pages", "content_view", 10, max_per_lead=1, min_occurrences=3),
    _M("visit_careers", "visit_careers", -5, max_per_lead=1),
    _M("webinar_register", "webinar_register", 10, once_per="content_id"),
    _M("webinar_attend", "webinar_attend", 20, once_per="content_id"),
    _M("event_attend", "event_attend", 3, max_per_day=1),
    _M("event_conversation_good", "event_conversation_good", 10, max_per_day=1),
    _M("event_conversation_excellent", "event_conversation_excellent", 30, max_per_day=1),
    _M("download_whitepaper", "content_download", 10, content_key=False, once_per="content_id"),
    _M("download_key_whitepaper", "content_download", 30, content_key=True, once_per="content_id"),
    _M("interaction_complete", "interaction_complete", 10, once_per="content_id"),
    _M("oa_unsubscribe", "oa_unsubscribe", -1, max_per_day=1),
)
DEFAULT_ACTIONS: dict[str, tuple[str, ...]] = {
    "sales_ready": ("stage:mql",), "nurture": ("tag:nurture",), "other_solution": ("tag:other_solution",),
    "public_pool": ("tag:public_pool",),
}
DEFAULT_HALF_LIFE_DAYS = 30.0
# Points keep full value a week before fading, and a lead reaching the motivation threshold is held that long:
# the hand-off to sales (DOMAIN.md: 42 hours is an average first reply) and its follow-up fit in a working
# week, and a weekly touch (newsletter, webinar reminder) keeps an active lead where it is.
DEFAULT_DECAY_GRACE_DAYS = 7.0
DEFAULT_REFRESH_INTERVAL_S = 3600
_KEYS = ("ability_threshold", "motivation_threshold", "half_life_days", "decay_steps", "decay_grace_days", "timezone",
         "refresh_interval_s", "actions", "ability", "motivation")
_ABILITY_KEYS = ("id", "attribute", "points", "values", "min", "max")
_FILTERS = ("channel", "scene", "content_id", "content_stage", "tag")
_MOTIVATION_KEYS = ("id", "event", "points", *_FILTERS, "content_key", "max_per_lead", "max_per_day", "once_per",
                    "min_occurrences")


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    rules: ScoringRules
    refresh_interval_s: int  # how often the scheduled job refreshes stored decayed scores; 0 = off


def default_scoring() -> ScoringConfig:
    return build_scoring(None)


def build_scoring(raw: Any) -> ScoringConfig:
    """The ``[scoring]`` table (``None`` when the section is absent) as rules plus the refresh interval."""
    table = {} if raw is None else raw
    check(isinstance(table, dict), "scoring", "must be a table")
    for name in table:
        check(name in _KEYS, f"scoring.{name}", "unknown key")
    defaults = ScoringRules()
    steps = _steps(table.get("decay_steps", []))
    half_life = number("scoring.half_life_days", table.get("half_life_days", 0 if steps else DEFAULT_HALF_LIFE_DAYS))
    check(half_life >= 0, "scoring.half_life_days", "must be 0 or more")
    check(not (steps and half_life), "scoring.decay_steps",
           "replaces half_life_days: set half_life_days = 0 (or leave it out) to use decay_steps")
    grace = number("scoring.decay_grace_days", table.get("decay_grace_days", DEFAULT_DECAY_GRACE_DAYS))
    check(grace >= 0, "scoring.decay_grace_days", "must be 0 or more")
    timezone = string("scoring.timezone", table.get("timezone", defaults.timezone))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ConfigError("scoring.timezone", f"unknown time zone {timezone!r}") from exc
    refresh = integer("scoring.refresh_interval_s", table.get("refresh_interval_s", DEFAULT_REFRESH_INTERVAL_S), 0)
    thresholds = {name: number(f"scoring.{name}", table.get(name, getattr(defaults, name)))
                  for name in ("ability_threshold", "motivation_threshold")}
    rules = ScoringRules(
        ability=_rules("ability", table.get("ability"), _ability, DEFAULT_ABILITY),
        motivation=_rules("motivation", table.get("motivation"), _motivation, DEFAULT_MOTIVATION),
        decay=Decay(half_life_days=half_life, steps=steps, grace_days=grace), **thresholds, timezone=timezone,
        actions=_actions(table.get("actions", {})),
    )
    return ScoringConfig(rules=rules, refresh_interval_s=refresh)


def _steps(raw: Any) -> tuple[tuple[float, float], ...]:
    check(isinstance(raw, list), "scoring.decay_steps", "must be a list of [age_days, factor] pairs")
    out: list[tuple[float, float]] = []
    for i, pair in enumerate(raw):
        key = f"scoring.decay_steps[{i}]"
        check(isinstance(pair, list) and len(pair) == 2, key, "must be an [age_days, factor] pair")
        age, factor = number(key, pair[0]), number(key, pair[1])
        check(age >= 0, key, "the age must be 0 or more days")
        check(0 <= factor <= 1, key, "the factor must be between 0 and 1")
        if out:
            check(age > out[-1][0], key, "ages must be ascending")
            check(factor <= out[-1][1], key, "factors must not increase with age")
        out.append((age, factor))
    return tuple(out)


def _actions(raw: Any) -> dict[str, tuple[str, ...]]:
    """Quadrant -> actions; a quadrant not listed keeps its default, ``[]`` means none."""
    check(isinstance(raw, dict), "scoring.actions", "must be a table of quadrant = [actions]")
    out = dict(DEFAULT_ACTIONS)
    for quadrant, actions in raw.items():
        key = f"scoring.actions.{quadrant}"
        check(quadrant in QUADRANTS, key, f"unknown quadrant; known: {', '.join(QUADRANTS)}")
        out[quadrant] = tuple(_action(key, action) for action in str_list(key, actions))
        check(sum(a.startswith("stage:") for a in out[quadrant]) <= 1, key, "at most one stage: action")
    return {q: out[q] for q in QUADRANTS}


def _action(key: str, action: str) -> str:
    kind, sep, arg = action.partition(":")
    arg = arg.strip()
    if kind == "stage" and sep:
        check(arg in STAGES, key, f"unknown stage {arg!r} in {action!r}; known: {', '.join(STAGES)}")
    elif kind == "tag" and sep:
        check(bool(arg), key, f"{action!r} names no tag")
    elif kind == "journey" and sep:
        check(bool(_ID.match(arg)), key, f"{action!r}: a journey id is a-z, 0-9, _ and -")
    else:
        raise ConfigError(key, f"{action!r} must be \"stage:<stage>\", \"tag:<tag>\" or \"journey:<id>\"")
    return f"{kind}:{arg}"


def _rules(name: str, raw: Any, parse: Any, defaults: tuple[Any, ...]) -> tuple[Any, ...]:
    if raw is None:
        return defaults
    check(isinstance(raw, list), f"scoring.{name}", "must be an array of tables")
    rules = tuple(parse(f"scoring.{name}[{i}]", entry) for i, entry in enumerate(raw))
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        check(rule.id not in seen, f"scoring.{name}[{i}].id", f"duplicate rule id {rule.id!r}")
        seen.add(rule.id)
    return rules


def _ability(key: str, entry: Any) -> AbilityRule:
    _entry(key, entry, _ABILITY_KEYS)
    rid, attribute = _rule_id(key, entry), text(f"{key}.attribute", entry.get("attribute"))
    points = integer(f"{key}.points", entry.get("points"))
    values = tuple(v.strip().lower() for v in str_list(f"{key}.values", entry.get("values", [])))
    low, high = (None if entry.get(k) is None else number(f"{key}.{k}", entry[k]) for k in ("min", "max"))
    check(bool(values) or low is not None or high is not None, f"{key}.values",
           "a rule needs values, a min / max range, or both")
    check(low is None or high is None or low <= high, f"{key}.min", "must not exceed max")
    return AbilityRule(id=rid, attribute=attribute, points=points, values=values, min=low, max=high)


def _motivation(key: str, entry: Any) -> MotivationRule:
    _entry(key, entry, _MOTIVATION_KEYS)
    rid, event = _rule_id(key, entry), text(f"{key}.event", entry.get("event"))
    points = integer(f"{key}.points", entry.get("points"))
    filters = {f: tuple(str_list(f"{key}.{f}", entry.get(f, []))) for f in _FILTERS}
    for stage in filters["content_stage"]:
        check(stage in BUYING_STAGES, f"{key}.content_stage", f"must be among {', '.join(BUYING_STAGES)}")
    caps: dict[str, int | None] = {}
    for cap in ("max_per_lead", "max_per_day", "min_occurrences"):
        caps[cap] = None if entry.get(cap) is None else integer(f"{key}.{cap}", entry[cap], 1)
    content_key = entry.get("content_key")
    check(content_key is None or isinstance(content_key, bool), f"{key}.content_key", "must be true or false")
    return MotivationRule(id=rid, event=event, points=points, **filters, content_key=content_key,
                          max_per_lead=caps["max_per_lead"], max_per_day=caps["max_per_day"],
                          once_per=string(f"{key}.once_per", entry.get("once_per", "")).strip(),
                          min_occurrences=caps["min_occurrences"] or 1)


def _entry(key: str, entry: Any, known: tuple[str, ...]) -> None:
    known_keys(key, entry, known)


def _rule_id(key: str, entry: dict[str, Any]) -> str:
    rid = text(f"{key}.id", entry.get("id"))
    check(bool(_ID.match(rid)), f"{key}.id", "must be a-z, 0-9, _ and - (at most 64)")
    return rid
