"""The steps of a ``[[journeys]]`` entry: ``wait``, ``if`` (with ``yes`` / ``no`` steps) and ``action``, parsed
into leads.journeys dataclasses; every error names the nested key (``journeys[2].steps[1].yes[0].action``)."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Any
from urllib.parse import urlsplit

from bot.config.validate import check, known_keys, number, string, table, tables, text
from leads.journeys.definition import ACTION_KINDS, BEHAVIOURS, Action, Check, Condition, Step, Wait
from leads.lifecycle import STAGES

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
# What each action needs (first tuple) and may carry (second); all values are strings.
ACTION_PARAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "oa_template": (("template",), ("text", "url")),
    "oa_custom": (("text",), ("template", "url")),  # template: the fallback once the 48-hour window has closed
    "wecom_task": (("text",), ("url",)),
    "tag_add": (("tag",), ()), "tag_remove": (("tag",), ()),
    "stage": (("stage",), ()),
    "notify_owner": (("text",), ()),
    "sdr_task": (("text",), ("due",)),
    "webhook": (("url",), ()),
}


def parse_steps(key: str, raw: Any) -> tuple[Step, ...]:
    return tuple(_step(f"{key}[{i}]", entry) for i, entry in enumerate(tables(key, raw)))


def _step(key: str, raw: Any) -> Step:
    entry = table(key, raw)
    kinds = [k for k in ("wait", "if", "action") if k in entry]
    check(len(kinds) == 1, key, "a step is exactly one of wait = \"...\", if = {...} or action = \"...\"")
    if kinds == ["wait"]:
        known_keys(key, entry, ("wait",))
        return _wait(f"{key}.wait", entry["wait"])
    if kinds == ["if"]:
        known_keys(key, entry, ("if", "yes", "no"))
        yes, no = parse_steps(f"{key}.yes", entry.get("yes", [])), parse_steps(f"{key}.no", entry.get("no", []))
        check(bool(yes or no), key, "a condition needs steps in yes or no")
        return Condition(_check(f"{key}.if", entry["if"]), yes, no)
    return _action(key, entry)


def _wait(key: str, raw: Any) -> Wait:
    """"3d", "12h", "1d12h30m", "09:30" (the next 09:30 local) or "2d 09:30" (09:30 two days on)."""
    parts = string(key, raw).split()
    clock = _CLOCK.fullmatch(parts[-1]) if parts else None
    until = time(int(clock[1]), int(clock[2])) if clock else None
    spans = parts[:-1] if clock else parts
    duration = None
    if spans:
        m = _DURATION.fullmatch(spans[0])
        check(len(spans) == 1 and m is not None and any(m.groups()), key,
              f"{raw!r} must be a duration (\"3d\", \"12h\", \"30m\"), a time (\"09:30\") or both (\"2d 09:30\")")
        assert m is not None
        d, h, mins = (int(g or 0) for g in m.groups())
        duration = timedelta(days=d, hours=h, minutes=mins)
    check(duration is not None or until is not None, key, "must not be empty")
    check(duration is None or duration <= timedelta(days=366), key, "must be at most a year")
    return Wait(duration, until)


def _check(key: str, raw: Any) -> Check:
    entry = known_keys(key, raw, ("tag", "field", "equals", "behaviour", "within", "score_at_least", "return_reason"))
    kinds = [k for k in ("tag", "field", "behaviour", "score_at_least", "return_reason") if k in entry]
    check(len(kinds) == 1, key, "checks exactly one of tag, field (with equals), behaviour (with within), "
                                "score_at_least or return_reason")
    kind = kinds[0]
    allowed = {"field": {"field", "equals"}, "behaviour": {"behaviour", "within"}}.get(kind, {kind})
    for name in entry:
        check(name in allowed, f"{key}.{name}", f"does not go with {kind}")
    if kind == "tag":
        return Check("tag", text(f"{key}.tag", entry["tag"]))
    if kind == "field":
        return Check("profile", text(f"{key}.field", entry["field"]), text(f"{key}.equals", entry.get("equals")))
    if kind == "score_at_least":
        return Check("score", threshold=number(f"{key}.score_at_least", entry["score_at_least"]))
    if kind == "return_reason":
        return Check("return_reason", value=text(f"{key}.return_reason", entry["return_reason"]))
    behaviour = text(f"{key}.behaviour", entry["behaviour"])
    check(behaviour in BEHAVIOURS, f"{key}.behaviour", f"unknown behaviour; known: {', '.join(BEHAVIOURS)}")
    within = _wait(f"{key}.within", entry.get("within", "7d"))
    check(within.until is None, f"{key}.within", "must be a duration such as \"3d\"")
    assert within.duration is not None
    return Check("behaviour", behaviour, within=within.duration)


def _action(key: str, entry: dict[str, Any]) -> Action:
    kind = text(f"{key}.action", entry["action"])
    check(kind in ACTION_KINDS, f"{key}.action", f"unknown action {kind!r}; known: {', '.join(ACTION_KINDS)}")
    required, optional = ACTION_PARAMS[kind]
    known_keys(key, entry, ("action", *required, *optional))
    params = {name: text(f"{key}.{name}", entry.get(name)) for name in required}
    params.update({name: text(f"{key}.{name}", entry[name]) for name in optional if name in entry})
    check(kind != "stage" or params.get("stage") in STAGES, f"{key}.stage", f"unknown stage; known: {STAGES}")
    if "url" in params:  # it reaches the prospect (or carries the lead's data): https to a named host only
        url = urlsplit(params["url"])
        check(url.scheme == "https" and bool(url.hostname), f"{key}.url", "must be an https URL with a host")
    if "due" in params:
        _wait(f"{key}.due", params["due"])
    return Action(kind, tuple(sorted(params.items())))


def parse_due(text: str) -> Wait:
    """An action's ``due`` ("1d", "2d 10:00"): validated with the journeys, so a stored one always parses."""
    return _wait("due", text)
