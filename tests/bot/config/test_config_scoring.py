"""The [scoring] section: defaults (= config.example.toml = DOMAIN.md), validation naming the key, env overrides."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config.core import build_config, load_config
from bot.config.scoring import DEFAULT_ABILITY, DEFAULT_MOTIVATION, ScoringConfig, build_scoring
from bot.errors import ConfigError
from leads.scoring import MotivationState, ScoreEvent, ScoreModel
from leads.scoring_rules import MotivationRule

ROOT = Path(__file__).resolve().parents[3]
MINIMAL = {"wechat": {"app_id": "wx1", "token": "t"}}
T0 = datetime(2026, 3, 12, 2, 0, tzinfo=UTC)
RULE = {"id": "r", "event": "request_demo", "points": 5}


def default_model() -> ScoreModel:
    return ScoreModel(build_config(MINIMAL).scoring.rules)


def scoring(**table: Any) -> ScoringConfig:
    return build_config({**MINIMAL, "scoring": table}).scoring


# -- defaults ---------------------------------------------------------------------------------------------
def test_defaults_equal_the_example_config():
    example = load_config(ROOT / "config.example.toml").scoring
    default = build_config(MINIMAL).scoring
    assert example == default
    assert example.rules.fingerprint == default.rules.fingerprint
    assert example.rules.ability == DEFAULT_ABILITY and example.rules.motivation == DEFAULT_MOTIVATION
    raw = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))["scoring"]
    assert len(raw["ability"]) == len(DEFAULT_ABILITY) and len(raw["motivation"]) == len(DEFAULT_MOTIVATION)


def test_default_values():
    cfg = build_config(MINIMAL).scoring
    rules = cfg.rules
    assert cfg.refresh_interval_s == 3600
    assert (rules.ability_threshold, rules.motivation_threshold, rules.timezone) == (25, 50, "Asia/Shanghai")
    assert rules.decay.half_life_days == 30 and rules.decay.steps == () and rules.decay.grace_days == 7
    assert rules.actions == {"sales_ready": ("stage:mql",), "nurture": ("tag:nurture",),
                             "other_solution": ("tag:other_solution",), "public_pool": ("tag:public_pool",)}


def test_missing_arrays_keep_defaults_and_empty_arrays_mean_no_rules():
    assert scoring(ability_threshold=30).rules.ability == DEFAULT_ABILITY
    assert scoring(ability_threshold=30).rules.motivation == DEFAULT_MOTIVATION
    empty = scoring(ability=[], motivation=[])
    assert empty.rules.ability == () and empty.rules.motivation == ()
    assert build_scoring(None) == build_scoring({})


def test_explicit_rules_actions_and_steps():
    cfg = scoring(ability=[{"id": "ind", "attribute": "industry", "values": ["Finance "], "points": 7}],
                  motivation=[{**RULE, "channel": ["website"], "content_stage": ["decision"], "max_per_day": 2}],
                  actions={"nurture": ["journey:slow-drip", "tag:warm"], "public_pool": []},
                  half_life_days=0, decay_steps=[[30, 0.5], [90, 0]], refresh_interval_s=0)
    assert cfg.rules.ability[0].values == ("finance",)
    assert cfg.rules.motivation == (MotivationRule("r", "request_demo", 5, channel=("website",),
                                                   content_stage=("decision",), max_per_day=2),)
    assert cfg.rules.actions["nurture"] == ("journey:slow-drip", "tag:warm")
    assert cfg.rules.actions["public_pool"] == () and cfg.rules.actions["sales_ready"] == ("stage:mql",)
    assert cfg.rules.decay.steps == ((30.0, 0.5), (90.0, 0.0)) and cfg.refresh_interval_s == 0
    # decay_steps alone replaces the default half-life
    assert scoring(decay_steps=[[7, 0.5]]).rules.decay.half_life_days == 0


# -- validation -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("table", "key"), [
    ({"ability_threshold": "25"}, "scoring.ability_threshold"),
    ({"motivation_threshold": True}, "scoring.motivation_threshold"),
    ({"actions": {"hot": ["tag:x"]}}, "scoring.actions.hot"),
    ({"actions": {"sales_ready": ["stage:won"]}}, "scoring.actions.sales_ready"),
    ({"actions": {"nurture": ["email:x"]}}, "scoring.actions.nurture"),
    ({"actions": {"nurture": ["tag: "]}}, "scoring.actions.nurture"),
    ({"actions": {"nurture": "tag:x"}}, "scoring.actions.nurture"),
    ({"ability": [{"id": "a", "attribute": "x", "values": ["1"], "points": 1},
                  {"id": "a", "attribute": "y", "values": ["2"], "points": 2}]}, "scoring.ability[1].id"),
    ({"motivation": [RULE, RULE]}, "scoring.motivation[1].id"),
    ({"ability": [{"id": "a", "attribute": "x", "min": 10, "max": 5, "points": 1}]}, "scoring.ability[0].min"),
    ({"ability": [{"id": "a", "attribute": "x", "points": 1}]}, "scoring.ability[0].values"),
    ({"ability": [{"id": "A b", "attribute": "x", "values": ["1"], "points": 1}]}, "scoring.ability[0].id"),
    ({"ability": [{"id": "a", "attribute": "x", "values": ["1"], "points": 1.5}]}, "scoring.ability[0].points"),
    ({"motivation": [RULE, RULE, RULE, {**RULE, "id": "d", "max_per_day": 0}]}, "scoring.motivation[3].max_per_day"),
    ({"motivation": [{**RULE, "min_occurrences": 0}]}, "scoring.motivation[0].min_occurrences"),
    ({"motivation": [{**RULE, "event": ""}]}, "scoring.motivation[0].event"),
    ({"motivation": [{"id": "r", "event": "x"}]}, "scoring.motivation[0].points"),
    ({"motivation": [{**RULE, "content_key": "yes"}]}, "scoring.motivation[0].content_key"),
    ({"motivation": [{**RULE, "content_stage": ["purchase"]}]}, "scoring.motivation[0].content_stage"),
    ({"motivation": [{**RULE, "points_per": 1}]}, "scoring.motivation[0].points_per"),
    ({"ability": [{"id": "a", "attribute": "x", "values": ["1"], "points": 1, "weight": 2}]},
     "scoring.ability[0].weight"),
    ({"timezone": "Asia/Shangai"}, "scoring.timezone"),
    ({"timezone": "Asia"}, "scoring.timezone"),
    ({"half_life_days": 14, "decay_steps": [[7, 0.5]]}, "scoring.decay_steps"),
    ({"half_life_days": -1}, "scoring.half_life_days"),
    ({"decay_steps": [[7, 0.5], [30, 0.8]]}, "scoring.decay_steps[1]"),
    ({"decay_steps": [[30, 0.5], [7, 0.2]]}, "scoring.decay_steps[1]"),
    ({"decay_steps": [[7, 1.5]]}, "scoring.decay_steps[0]"),
    ({"refresh_interval_s": -1}, "scoring.refresh_interval_s"),
    ({"decay_grace_days": -0.5}, "scoring.decay_grace_days"),
    ({"decay_grace_days": "7"}, "scoring.decay_grace_days"),
    ({"decay_grace_days": True}, "scoring.decay_grace_days"),
    ({"refresh_interval_s": 1.5}, "scoring.refresh_interval_s"),
    ({"threshold": 1}, "scoring.threshold"),
    ({"ability": {"id": "a"}}, "scoring.ability"),
])
def test_bad_keys_are_named(table, key):
    with pytest.raises(ConfigError) as info:
        build_config({**MINIMAL, "scoring": table})
    assert info.value.key == key
    assert repr(key) in str(info.value)


def test_section_must_be_a_table():
    with pytest.raises(ConfigError) as info:
        build_config({**MINIMAL, "scoring": 3})
    assert info.value.key == "scoring"


def test_environment_overrides_scoring(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[wechat]\napp_id = "wx1"\ntoken = "t"\n', encoding="utf-8")
    cfg = load_config(path, {"LEADRELAY_SCORING__MOTIVATION_THRESHOLD": "60",
                             "LEADRELAY_SCORING__REFRESH_INTERVAL_S": "0"})
    assert cfg.scoring.rules.motivation_threshold == 60 and cfg.scoring.refresh_interval_s == 0
    assert cfg.scoring.rules.motivation == DEFAULT_MOTIVATION
    example = load_config(ROOT / "config.example.toml", {"LEADRELAY_SCORING__MOTIVATION_THRESHOLD": "60"})
    assert example.scoring.rules.motivation_threshold == 60
    with pytest.raises(ConfigError) as info:
        load_config(path, {"LEADRELAY_SCORING__MOTIVATION_THRESHOLD": "high"})
    assert info.value.key == "scoring.motivation_threshold"


# -- the DOMAIN.md tables ---------------------------------------------------------------------------------
def test_vp_in_hr_at_a_600_person_b2b_company():
    model = default_model()
    for size in ("500_999", 600):
        profile = {"job_title": "vp_plus", "department": "hr", "company_size": size, "company_type": "b2b"}
        assert model.ability(profile) == 10 + 15 + 5 + 10 == 40


@pytest.mark.parametrize(("attribute", "value", "points"), [
    ("job_title", "vp_plus", 10), ("job_title", "director", 8), ("job_title", "manager", 6),
    ("job_title", "VP_PLUS", 10), ("job_title", "staff", 0),
    ("department", "hr", 15), ("department", "finance", 10), ("department", "legal", 5), ("department", "it", 0),
    ("company_size", "500_999", 5), ("company_size", 500, 5), ("company_size", 999, 5),
    ("company_size", "1000_50000", 4), ("company_size", 1000, 4), ("company_size", "50000", 4),
    ("company_size", "250_499", 3), ("company_size", 250, 3), ("company_size", 499, 3),
    ("company_size", "1_49", 0), ("company_size", 249, 0), ("company_size", 50001, 0),
    ("company_size", "50000_plus", 0),
    ("company_type", "b2b", 10), ("company_type", "b2c", 7), ("company_type", "nonprofit", -5),
    ("company_type", "other", 0),
])
def test_each_ability_value_alone(attribute, value, points):
    assert default_model().ability({attribute: value}) == points


def _events(rule: MotivationRule) -> list[ScoreEvent]:
    detail: dict[str, Any] = {"content_id": "hr-whitepaper-2026"}
    if rule.content_key is not None:
        detail["key"] = rule.content_key
    return [ScoreEvent(i + 1, rule.event, T0 + timedelta(minutes=i), channel="website", scene="content",
                       detail={**detail, "content_id": f"page-{i}"} if rule.min_occurrences > 1 else detail)
            for i in range(rule.min_occurrences)]


@pytest.mark.parametrize("rule", DEFAULT_MOTIVATION, ids=lambda r: r.id)
def test_each_motivation_rule_alone(rule):
    model = default_model()
    state = MotivationState()
    events = _events(rule)
    for event in events:
        assert model.step(state, event) is state
    assert model.motivation(state, at=events[-1].occurred_at) == pytest.approx(rule.points)
    assert [h.rule_id for h in state.hits] == [rule.id]


def test_repeats_do_not_inflate():
    """One whitepaper downloaded 40 times is not 400 points; the pricing page counts once a day."""
    model = default_model()
    download = [ScoreEvent(i, "content_download", T0 + timedelta(minutes=i), detail={"content_id": "w", "key": False})
                for i in range(1, 41)]
    assert sum(h.points for h in model.replay(download).hits) == 10
    pricing = [ScoreEvent(i, "visit_pricing", T0 + timedelta(hours=i)) for i in range(1, 4)]
    pricing.append(ScoreEvent(9, "visit_pricing", T0 + timedelta(days=1, hours=1)))
    assert sum(h.points for h in model.replay(pricing).hits) == 40
    demo = [ScoreEvent(i, "request_demo", T0 + timedelta(days=i)) for i in range(1, 4)]
    assert sum(h.points for h in model.replay(demo).hits) == 50


def test_decay_grace_days_is_read_and_changes_the_fingerprint():
    assert scoring(decay_grace_days=0).rules.decay.grace_days == 0
    assert scoring(decay_grace_days=2.5).rules.decay.grace_days == 2.5
    assert scoring(decay_grace_days=3).rules.fingerprint != scoring(decay_grace_days=4).rules.fingerprint
