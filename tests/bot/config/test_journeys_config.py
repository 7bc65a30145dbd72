"""[[journeys]], [nurture] and [batch]: the shipped example parses, defaults, and every bad key is named."""

from __future__ import annotations

import copy
import tomllib
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config.handoff import DEFAULT_RETURN_REASONS
from bot.config.journeys import BatchConfig, build_batch, build_journeys, build_nurture, validate_journeys
from bot.errors import ConfigError
from leads.journeys.definition import Action, Check, Condition, Exit, Reentry, Trigger, Wait

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = tomllib.loads((ROOT / "deploy/journeys.example.toml").read_text(encoding="utf-8"))
VALID: dict[str, Any] = {
    "id": "j1", "trigger": {"kind": "tag_added", "tag": "vip"}, "reentry": "after_exit",
    "steps": [
        {"action": "oa_template", "template": "welcome", "text": "欢迎"},
        {"wait": "2d 10:00"},
        {"if": {"behaviour": "opened", "within": "3d"}, "yes": [{"action": "tag_add", "tag": "engaged"}],
         "no": [{"action": "wecom_task", "text": "您好"}]},
    ],
}


def journeys(*entries: dict[str, Any]) -> list[dict[str, Any]]:
    return [copy.deepcopy(e) for e in entries]


def test_the_shipped_example_parses_and_names_real_return_reasons():
    parsed = build_journeys(EXAMPLE["journeys"])
    validate_journeys(parsed, DEFAULT_RETURN_REASONS)
    assert [j.id for j in parsed] == ["welcome", "accelerate", "wake_up", "renurture"]
    assert parsed[3].trigger == Trigger("returned_by_sales", reasons=("预算不足", "非决策人", "需求不匹配", "联系不上"))
    assert build_nurture(EXAMPLE["nurture"]).weekly_cap == {"oa": 3, "wecom": 2}
    assert build_batch(EXAMPLE["batch"]) == BatchConfig()


def test_a_valid_journey_becomes_the_dataclasses():
    (j,) = build_journeys(journeys(VALID))
    assert (j.id, j.name, j.exit, j.reentry) == ("j1", "j1", Exit(("sal",)), Reentry("after_exit"))
    assert j.steps[0] == Action("oa_template", (("template", "welcome"), ("text", "欢迎")))
    assert j.steps[1] == Wait(timedelta(days=2), time(10, 0))
    assert j.steps[2] == Condition(Check("behaviour", "opened", within=timedelta(days=3)),
                                   (Action("tag_add", (("tag", "engaged"),)),),
                                   (Action("wecom_task", (("text", "您好"),)),))
    assert build_journeys(None) == ()


def mutate(path: str, value: Any) -> list[dict[str, Any]]:
    """VALID with one key set (value None deletes it); path like "steps.2.yes.0.tag"."""
    entry = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node: Any = entry
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is None:
        del node[int(last) if isinstance(node, list) else last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return [copy.deepcopy(VALID), entry]


@pytest.mark.parametrize(("path", "value", "key"), [
    ("id", "Bad Id", "journeys[1].id"),
    ("colour", "red", "journeys[1].colour"),
    ("trigger.kind", "whenever", "journeys[1].trigger.kind"),
    ("trigger.tag", None, "journeys[1].trigger.tag"),
    ("trigger", {"kind": "stage_entered", "stage": "won"}, "journeys[1].trigger.stage"),
    ("trigger", {"kind": "quadrant_entered", "quadrant": "hot"}, "journeys[1].trigger.quadrant"),
    ("trigger", {"kind": "inactive_days", "days": 0}, "journeys[1].trigger.days"),
    ("trigger", {"kind": "score_crossed"}, "journeys[1].trigger.threshold"),
    ("trigger", {"kind": "tag_added", "tag": "x", "days": 3}, "journeys[1].trigger.days"),
    ("steps", [], "journeys[1].steps"),
    ("steps", None, "journeys[1].steps"),
    ("steps.1.wait", "soon", "journeys[1].steps[1].wait"),
    ("steps.1.wait", "25:00", "journeys[1].steps[1].wait"),
    ("steps.1", {"wait": "1d", "action": "tag_add"}, "journeys[1].steps[1]"),
    ("steps.0.action", "email", "journeys[1].steps[0].action"),
    ("steps.0.template", None, "journeys[1].steps[0].template"),
    ("steps.0.tag", "x", "journeys[1].steps[0].tag"),
    ("steps.0", {"action": "webhook", "url": "ftp://x"}, "journeys[1].steps[0].url"),
    ("steps.0", {"action": "stage", "stage": "won"}, "journeys[1].steps[0].stage"),
    ("steps.2.if", {"behaviour": "liked"}, "journeys[1].steps[2].if.behaviour"),
    ("steps.2.if", {"tag": "a", "behaviour": "opened"}, "journeys[1].steps[2].if"),
    ("steps.2.if", {"tag": "a", "within": "3d"}, "journeys[1].steps[2].if.within"),
    ("steps.2.if.within", "09:00", "journeys[1].steps[2].if.within"),
    ("steps.2.yes.0.tag", "", "journeys[1].steps[2].yes[0].tag"),
    ("steps.2.no.0", {"wait": "1x"}, "journeys[1].steps[2].no[0].wait"),
    ("exit", {"stage": "won"}, "journeys[1].exit.stage"),
    ("exit", {"unsubscribes": False}, "journeys[1].exit.unsubscribes"),
    ("exit", {"replies": "yes"}, "journeys[1].exit.replies"),
    ("reentry", "sometimes", "journeys[1].reentry"),
    ("reentry", "after_days:0", "journeys[1].reentry"),
    ("reentry", None, "journeys[1].reentry"),
])
def test_each_bad_key_is_named(path, value, key):
    with pytest.raises(ConfigError) as err:
        build_journeys(mutate(path, value))
    assert err.value.key == key


def test_duplicate_ids_and_unknown_return_reasons():
    with pytest.raises(ConfigError) as err:
        build_journeys(journeys(VALID, VALID))
    assert err.value.key == "journeys[1].id"
    odd = {**VALID, "trigger": {"kind": "returned_by_sales", "reasons": ["太贵"]}}
    with pytest.raises(ConfigError) as err:
        validate_journeys(build_journeys(journeys(odd)), DEFAULT_RETURN_REASONS)
    assert err.value.key == "journeys[0].trigger.reasons"
    nested = {**VALID, "steps": [{"if": {"return_reason": "太贵"}, "yes": [{"wait": "1d"}]}]}
    with pytest.raises(ConfigError) as err:
        validate_journeys(build_journeys(journeys(nested)), DEFAULT_RETURN_REASONS)
    assert err.value.key == "journeys[0].steps[0].if.return_reason"


def test_nurture_defaults_and_errors():
    default = build_nurture(None)
    assert (default.quiet_hours, default.timezone, default.weekly_cap) == ("21:00-08:00", "Asia/Shanghai", {"*": 3})
    assert build_nurture({"weekly_cap": 5}).weekly_cap == {"*": 5}
    assert build_nurture({"quiet_hours": ""}).send_policy().quiet.start == time(0)
    for raw, key in [({"quiet_hours": "9pm-8am"}, "nurture.quiet_hours"),
                     ({"timezone": "Mars/Base"}, "nurture.timezone"),
                     ({"weekly_cap": 0}, "nurture.weekly_cap"), ({"weekly_cap": {"sms": 2}}, "nurture.weekly_cap.sms"),
                     ({"weekly_cap": {"oa": "2"}}, "nurture.weekly_cap.oa"), ({"caps": 1}, "nurture.caps")]:
        with pytest.raises(ConfigError) as err:
            build_nurture(raw)
        assert err.value.key == key


def test_batch_limit_periods():
    assert build_batch(None).limit_on(date(2026, 2, 10)) == 28  # as many as the month has days
    assert build_batch({"customer_limit_period": "month"}).limit_on(date(2026, 3, 10)) == 31
    assert build_batch({"customer_limit_period": "week:7"}).limit_on(date(2026, 3, 10)) == 7
    assert build_batch({"customer_limit_period": "day", "remind_max_per_day": 1}) == BatchConfig("day", 1, 1)
    for raw, key in [({"customer_limit_period": "week:8"}, "batch.customer_limit_period"),
                     ({"customer_limit_period": "year"}, "batch.customer_limit_period"),
                     ({"remind_max_per_day": 4}, "batch.remind_max_per_day"),
                     ({"remind_max_per_day": -1}, "batch.remind_max_per_day"), ({"limit": 1}, "batch.limit")]:
        with pytest.raises(ConfigError) as err:
            build_batch(raw)
        assert err.value.key == key


def test_the_main_config_takes_the_example_journeys_and_names_a_bad_one(tmp_path: Path) -> None:
    from bot.config.core import load_config

    example = load_config(ROOT / "config.example.toml")  # [nurture] journeys_file, relative to the config
    assert [j.id for j in example.journeys] == ["welcome", "accelerate", "wake_up", "renurture"]
    assert example.batch.remind_max_per_day == 3 and example.nurture.weekly_cap == {"oa": 3, "wecom": 2}
    base = (ROOT / "config.example.toml").read_text(encoding="utf-8").replace(
        'journeys_file = "deploy/journeys.example.toml"', f'journeys_file = "{ROOT / "deploy/journeys.example.toml"}"')
    path = tmp_path / "config.toml"
    own = '\n[[journeys]]\nid = "own"\nname = "自定义"\ntrigger = { kind = "tag_added", tag = "vip" }\n' \
          'reentry = "never"\n[[journeys.steps]]\naction = "tag_add"\ntag = "seen"\n'
    path.write_text(base + own, "utf-8")
    assert [j.id for j in load_config(path).journeys][-2:] == ["renurture", "own"]  # included ones first
    path.write_text(base + '\n[[journeys]]\nid = "Bad Id"\n', "utf-8")
    with pytest.raises(ConfigError, match=r"journeys\[4\]"):
        load_config(path)
    path.write_text(base.replace(str(ROOT / "deploy/journeys.example.toml"), "missing.toml"), "utf-8")
    with pytest.raises(ConfigError, match=r"nurture\.journeys_file"):
        load_config(path)


@pytest.mark.parametrize("url", ["http://example.com/x", "https:///nohost", "javascript:alert(1)", "ftp://a.b/c"])
def test_an_action_url_must_be_https_with_a_host(url: str) -> None:
    entry = copy.deepcopy(VALID)
    entry["steps"][0]["url"] = url
    with pytest.raises(ConfigError, match=r"journeys\[0\]\.steps\[0\]\.url"):
        build_journeys([entry])


def test_a_webhook_step_needs_the_crm_signing_secret() -> None:
    from bot.config.core import build_config

    hook = {"id": "hook", "name": "通知", "trigger": {"kind": "tag_added", "tag": "vip"}, "reentry": "never",
            "steps": [{"if": {"tag": "vip"}, "yes": [{"action": "webhook", "url": "https://crm.example/hook"}]}]}
    raw = {"wechat": {"app_id": "wx1", "token": "t" * 8}, "journeys": [hook]}
    with pytest.raises(ConfigError, match=r"journeys\[0\]\.steps"):
        build_config(raw)
    crm = {"webhook_url": "https://crm.example/leads", "webhook_secret": "s" * 32}
    assert build_config({**raw, "crm": crm}).journeys[0].id == "hook"
