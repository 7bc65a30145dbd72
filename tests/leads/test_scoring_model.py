"""The pure scoring model (leads/scoring.py, leads/scoring_rules.py): caps, filters, decay, the explanation,
the stored state, ability matching; and properties over random rule sets and random event sequences."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import combinations, product
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.scoring import ABILITY, MOTIVATION, MotivationState, ScoreEvent, ScoreModel
from leads.scoring_rules import AbilityRule, Decay, MotivationRule, ScoringRules

BEIJING = ZoneInfo("Asia/Shanghai")
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)  # 20:00 in Beijing
DAY = 86_400.0


def bj(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=BEIJING)


def ev(tid: int, kind: str, at: datetime, channel: str = "", scene: str = "", **detail: Any) -> ScoreEvent:
    return ScoreEvent(tid, kind, at, channel, scene, detail)


def model(*motivation: MotivationRule, ability: tuple[AbilityRule, ...] = (), decay: Decay | None = None,
          **kw: Any) -> ScoreModel:
    return ScoreModel(ScoringRules(ability=ability, motivation=motivation, decay=decay or Decay(), **kw))


def run(m: ScoreModel, events: list[ScoreEvent]) -> MotivationState:
    """Step every event in the given order (they must be in order)."""
    state = MotivationState()
    for e in events:
        assert m.step(state, e) is state
    return state


def hit_ids(state: MotivationState, rule_id: str | None = None) -> list[int]:
    return [h.touchpoint_id for h in state.hits if rule_id is None or h.rule_id == rule_id]


# -- caps ------------------------------------------------------------------------------------------------
def test_max_per_lead() -> None:
    m = model(MotivationRule("dl", "download", 10, max_per_lead=2))
    state = run(m, [ev(i, "download", T0 + timedelta(days=i)) for i in range(1, 6)])
    assert hit_ids(state) == [1, 2]
    assert state.counted == {"dl": 2} and state.matched == {"dl": 5}
    assert m.motivation(state, T0) == 20


def test_max_per_lead_zero_never_counts() -> None:
    m = model(MotivationRule("dl", "download", 10, max_per_lead=0))
    assert run(m, [ev(1, "download", T0)]).hits == []


def test_max_per_day_uses_beijing_days_not_utc_days() -> None:
    m = model(MotivationRule("open", "open", 1, max_per_day=1))
    late, after_midnight = bj(2024, 3, 1, 23, 30), bj(2024, 3, 2, 0, 30)
    assert late.astimezone(UTC).date() == after_midnight.astimezone(UTC).date()  # the same UTC day
    state = run(m, [ev(1, "open", late), ev(2, "open", after_midnight)])
    assert hit_ids(state) == [1, 2]  # ... but two Beijing days


def test_max_per_day_same_beijing_day_across_utc_midnight() -> None:
    m = model(MotivationRule("open", "open", 1, max_per_day=1))
    early, late = bj(2024, 3, 2, 1, 0), bj(2024, 3, 2, 23, 0)
    assert early.astimezone(UTC).date() != late.astimezone(UTC).date()  # two UTC days
    state = run(m, [ev(1, "open", early), ev(2, "open", late)])
    assert hit_ids(state) == [1]  # ... one Beijing day


def test_max_per_day_resets_every_day_and_counts_up_to_cap() -> None:
    m = model(MotivationRule("open", "open", 1, max_per_day=2))
    times = [bj(2024, 3, 1, 9), bj(2024, 3, 1, 10), bj(2024, 3, 1, 11), bj(2024, 3, 1, 23, 59),
             bj(2024, 3, 2, 0, 0), bj(2024, 3, 2, 8), bj(2024, 3, 2, 9), bj(2024, 3, 5, 9)]
    state = run(m, [ev(i, "open", t) for i, t in enumerate(times, 1)])
    assert hit_ids(state) == [1, 2, 5, 6, 8]


def test_max_per_day_and_max_per_lead_together() -> None:
    m = model(MotivationRule("open", "open", 1, max_per_day=1, max_per_lead=2))
    state = run(m, [ev(i, "open", bj(2024, 3, i, 12)) for i in range(1, 5)])
    assert hit_ids(state) == [1, 2]


def test_day_counts_only_for_the_rule_that_is_capped() -> None:
    m = model(MotivationRule("open", "open", 1, max_per_day=1), MotivationRule("any", "open", 2))
    state = run(m, [ev(1, "open", bj(2024, 3, 1, 9)), ev(2, "open", bj(2024, 3, 1, 10))])
    assert hit_ids(state, "open") == [1]
    assert hit_ids(state, "any") == [1, 2]


def test_other_timezone() -> None:
    m = model(MotivationRule("open", "open", 1, max_per_day=1), timezone="UTC")
    state = run(m, [ev(1, "open", bj(2024, 3, 1, 23, 30)), ev(2, "open", bj(2024, 3, 2, 0, 30))])
    assert hit_ids(state) == [1]  # the same UTC day


def test_once_per_content_id() -> None:
    m = model(MotivationRule("wp", "download", 10, once_per="content_id"))
    events = [ev(1, "download", T0, content_id="a"), ev(2, "download", T0 + timedelta(hours=1), content_id="a"),
              ev(3, "download", T0 + timedelta(hours=2), content_id="b"),
              ev(4, "download", T0 + timedelta(days=9), content_id="a"),
              ev(5, "download", T0 + timedelta(days=9, hours=1), content_id="c")]
    state = run(m, events)
    assert hit_ids(state) == [1, 3, 5]
    assert state.once == {"wp": ["a", "b", "c"]}


def test_once_per_key_rejected_by_another_cap_is_not_used_up() -> None:
    m = model(MotivationRule("wp", "download", 10, once_per="content_id", max_per_day=1))
    events = [ev(1, "download", bj(2024, 3, 1, 9), content_id="a"),
              ev(2, "download", bj(2024, 3, 1, 10), content_id="b"),  # day cap: not counted, "b" still fresh
              ev(3, "download", bj(2024, 3, 2, 10), content_id="b")]
    assert hit_ids(run(m, events)) == [1, 3]


def test_once_per_numbers_and_text_are_the_same_key() -> None:
    m = model(MotivationRule("wp", "download", 10, once_per="content_id"))
    events = [ev(1, "download", T0, content_id=7), ev(2, "download", T0 + timedelta(hours=1), content_id="7")]
    assert hit_ids(run(m, events)) == [1]


def test_min_occurrences() -> None:
    m = model(MotivationRule("pages", "visit", 10, min_occurrences=3))
    state = run(m, [ev(i, "visit", T0 + timedelta(minutes=i)) for i in range(1, 6)])
    assert hit_ids(state) == [3, 4, 5]


def test_min_occurrences_with_max_per_lead() -> None:
    m = model(MotivationRule("pages", "visit", 10, min_occurrences=3, max_per_lead=1))
    state = run(m, [ev(i, "visit", T0 + timedelta(minutes=i)) for i in range(1, 6)])
    assert hit_ids(state) == [3]
    assert m.motivation(state, T0) == 10


def test_min_occurrences_counts_only_matching_events() -> None:
    m = model(MotivationRule("pages", "visit", 10, channel=("web",), min_occurrences=2))
    events = [ev(1, "visit", T0, "web"), ev(2, "visit", T0 + timedelta(minutes=1), "email"),
              ev(3, "visit", T0 + timedelta(minutes=2), "web")]
    assert hit_ids(run(m, events)) == [3]


# -- filters ---------------------------------------------------------------------------------------------
def test_event_kind() -> None:
    m = model(MotivationRule("click", "click", 5))
    state = run(m, [ev(1, "open", T0), ev(2, "click", T0 + timedelta(minutes=1))])
    assert hit_ids(state) == [2]
    assert m.scored_kinds == frozenset({"click"})


def test_channel_and_scene_filters() -> None:
    m = model(MotivationRule("r", "attend", 20, channel=("expo", "sem"), scene=("event",)))
    events = [ev(1, "attend", T0, "expo", "event"), ev(2, "attend", T0 + timedelta(minutes=1), "sem", "event"),
              ev(3, "attend", T0 + timedelta(minutes=2), "seo", "event"),
              ev(4, "attend", T0 + timedelta(minutes=3), "expo", "ad"),
              ev(5, "attend", T0 + timedelta(minutes=4))]
    assert hit_ids(run(m, events)) == [1, 2]


def test_content_key_filter_makes_rules_exclusive() -> None:
    key = MotivationRule("key_wp", "download", 30, content_key=True)
    plain = MotivationRule("wp", "download", 10, content_key=False)
    m = model(key, plain)
    events = [ev(1, "download", T0, key=True), ev(2, "download", T0 + timedelta(minutes=1), key=False),
              ev(3, "download", T0 + timedelta(minutes=2))]
    state = run(m, events)
    assert [(h.rule_id, h.touchpoint_id, h.points) for h in state.hits] == [
        ("key_wp", 1, 30), ("wp", 2, 10), ("wp", 3, 10)]


def test_every_matching_rule_counts() -> None:
    m = model(MotivationRule("specific", "download", 30, content_id=("c1",)), MotivationRule("any", "download", 10))
    state = run(m, [ev(1, "download", T0, content_id="c1"), ev(2, "download", T0 + timedelta(1), content_id="c2")])
    assert [(h.rule_id, h.touchpoint_id) for h in state.hits] == [("specific", 1), ("any", 1), ("any", 2)]
    assert m.motivation(state, T0 + timedelta(1)) == 50


def test_content_id_and_stage_filters() -> None:
    m = model(MotivationRule("ids", "download", 1, content_id=("c1", "42")),
              MotivationRule("stage", "download", 2, content_stage=("decision",)))
    events = [ev(1, "download", T0, content_id="c1", stage="awareness"),
              ev(2, "download", T0 + timedelta(minutes=1), content_id=42, stage="decision"),
              ev(3, "download", T0 + timedelta(minutes=2), content_id="c9"),
              ev(4, "download", T0 + timedelta(minutes=3))]
    state = run(m, events)
    assert hit_ids(state, "ids") == [1, 2]
    assert hit_ids(state, "stage") == [2]


def test_tag_filter_any_tag_matches() -> None:
    m = model(MotivationRule("hr", "read", 5, tag=("hr", "payroll")))
    events = [ev(1, "read", T0, tags=["finance", "payroll"]), ev(2, "read", T0 + timedelta(minutes=1), tags=["x"]),
              ev(3, "read", T0 + timedelta(minutes=2), tags=[]), ev(4, "read", T0 + timedelta(minutes=3)),
              ev(5, "read", T0 + timedelta(minutes=4), tags=None)]
    assert hit_ids(run(m, events)) == [1]


def test_negative_points() -> None:
    m = model(MotivationRule("demo", "demo", 50), MotivationRule("careers", "visit_careers", -5),
              MotivationRule("unfollow", "unsubscribe", -1))
    events = [ev(1, "demo", T0), ev(2, "visit_careers", T0 + timedelta(minutes=1)),
              ev(3, "unsubscribe", T0 + timedelta(minutes=2))]
    state = run(m, events)
    assert m.motivation(state, T0 + timedelta(minutes=3)) == 44
    only_negative = run(m, events[1:])
    assert m.motivation(only_negative, T0 + timedelta(minutes=3)) == -6


# -- decay -----------------------------------------------------------------------------------------------
def test_half_life() -> None:
    d = Decay(half_life_days=30)
    assert d.factor(0) == 1.0
    assert d.factor(-DAY) == 1.0  # an event after the read time has not faded
    assert d.factor(30 * DAY) == pytest.approx(0.5)
    assert d.factor(60 * DAY) == pytest.approx(0.25)
    assert d.factor(15 * DAY) == pytest.approx(math.sqrt(0.5))
    m = model(MotivationRule("demo", "demo", 50), decay=d)
    state = run(m, [ev(1, "demo", T0)])
    assert m.motivation(state, T0) == 50
    assert m.motivation(state, T0 + timedelta(days=30)) == pytest.approx(25)
    assert m.motivation(state, T0 + timedelta(days=90)) == pytest.approx(6.25)


def test_no_decay() -> None:
    assert Decay().factor(10_000 * DAY) == 1.0


def test_step_schedule() -> None:
    d = Decay(steps=((7, 0.5), (30, 0.25), (90, 0.0)))
    assert d.factor(0) == 1.0
    assert d.factor(6.99 * DAY) == 1.0
    assert d.factor(7 * DAY) == 0.5
    assert d.factor(29 * DAY) == 0.5
    assert d.factor(30 * DAY) == 0.25
    assert d.factor(90 * DAY) == 0.0
    assert d.factor(900 * DAY) == 0.0


def test_step_schedule_wins_over_half_life() -> None:
    assert Decay(half_life_days=1, steps=((10, 0.5),)).factor(5 * DAY) == 1.0


def test_decay_applies_per_hit_age() -> None:
    m = model(MotivationRule("dl", "download", 10), decay=Decay(half_life_days=30))
    state = run(m, [ev(1, "download", T0), ev(2, "download", T0 + timedelta(days=30))])
    assert m.motivation(state, T0 + timedelta(days=30)) == pytest.approx(5 + 10)


# -- the explanation -------------------------------------------------------------------------------------
def test_scorecard_explains_every_point() -> None:
    ability = (AbilityRule("vp", "level", 10, values=("vp",)), AbilityRule("hr", "department", 15, values=("hr",)))
    m = model(MotivationRule("demo", "demo", 50), MotivationRule("careers", "visit_careers", -5), ability=ability,
              decay=Decay(half_life_days=30))
    t1, t2 = bj(2024, 3, 1, 10), bj(2024, 3, 16, 10)
    state = run(m, [ev(11, "demo", t1), ev(12, "visit_careers", t2)])
    at = t2 + timedelta(days=15)
    card = m.scorecard({"level": "VP", "department": "HR", "size": 3}, state, at)
    assert card.at == at
    assert card.ability == 25 == sum(c.current for c in card.contributions if c.score == ABILITY)
    assert card.motivation == pytest.approx(sum(c.current for c in card.contributions if c.score == MOTIVATION))
    assert card.motivation == pytest.approx(m.motivation(state, at))
    assert card.quadrant == m.rules.quadrant(card.ability, card.motivation)
    ability_lines = [c for c in card.contributions if c.score == ABILITY]
    assert [(c.rule_id, c.attribute, c.value, c.points, c.current) for c in ability_lines] == [
        ("vp", "level", "VP", 10, 10.0), ("hr", "department", "HR", 15, 15.0)]
    demo, careers = [c for c in card.contributions if c.score == MOTIVATION]
    assert (demo.rule_id, demo.touchpoint_id, demo.occurred_at, demo.points) == ("demo", 11, t1, 50)
    assert demo.current == pytest.approx(25)  # 30 days old
    assert (careers.rule_id, careers.touchpoint_id, careers.occurred_at, careers.points) == (
        "careers", 12, t2, -5)
    assert careers.current == pytest.approx(-5 * math.sqrt(0.5))  # 15 days old
    assert card.motivation == pytest.approx(25 - 5 * math.sqrt(0.5))


def test_scorecard_empty() -> None:
    card = model().scorecard({}, MotivationState(), T0)
    assert (card.ability, card.motivation, card.quadrant, card.contributions) == (0, 0, "public_pool", ())


@pytest.mark.parametrize(("ability", "motivation", "quadrant"), [
    (25, 50, "sales_ready"), (100, 100, "sales_ready"), (25, 49.9, "nurture"), (24.9, 50, "other_solution"),
    (0, 0, "public_pool"), (-5, -10, "public_pool"),
])
def test_quadrant_thresholds(ability: float, motivation: float, quadrant: str) -> None:
    assert ScoringRules().quadrant(ability, motivation) == quadrant


# -- the stored state ------------------------------------------------------------------------------------
def test_state_json_round_trip() -> None:
    m = model(MotivationRule("wp", "download", 10, once_per="content_id", max_per_day=2),
              MotivationRule("pages", "visit", 5, min_occurrences=2, max_per_lead=3))
    events = [ev(1, "download", bj(2024, 3, 1, 9), content_id="a"), ev(2, "visit", bj(2024, 3, 1, 9, 5)),
              ev(3, "visit", bj(2024, 3, 1, 9, 6)), ev(4, "download", bj(2024, 3, 2, 9), content_id="b")]
    state = run(m, events)
    restored = MotivationState.from_json(json.loads(json.dumps(state.to_json())))
    assert restored == state
    # ... and it goes on exactly like the original.
    more = [ev(5, "download", bj(2024, 3, 2, 10), content_id="b"), ev(6, "download", bj(2024, 3, 2, 11),
                                                                      content_id="c"),
            ev(7, "download", bj(2024, 3, 2, 12), content_id="d"), ev(8, "visit", bj(2024, 3, 3, 1))]
    for e in more:
        m.step(state, e)
        m.step(restored, e)
    assert restored == state == m.replay(events + more)


def test_empty_state_json_round_trip() -> None:
    assert MotivationState.from_json(json.loads(json.dumps(MotivationState().to_json()))) == MotivationState()
    assert MotivationState.from_json({}) == MotivationState()


def test_copy_is_independent() -> None:
    m = model(MotivationRule("wp", "download", 10, once_per="content_id", max_per_day=1))
    state = run(m, [ev(1, "download", T0, content_id="a")])
    before = MotivationState.from_json(state.to_json())
    copy = state.copy()
    m.step(copy, ev(2, "download", T0 + timedelta(days=1), content_id="b"))
    assert state == before and copy != state


# -- order and retries -----------------------------------------------------------------------------------
def test_out_of_order_event_returns_none_and_changes_nothing() -> None:
    m = model(MotivationRule("open", "open", 1))
    state = run(m, [ev(1, "open", T0), ev(3, "open", T0 + timedelta(hours=1))])
    before = state.copy()
    assert m.step(state, ev(2, "open", T0 + timedelta(minutes=30))) is None
    assert state == before


def test_same_time_lower_touchpoint_id_is_out_of_order() -> None:
    m = model(MotivationRule("open", "open", 1))
    state = run(m, [ev(5, "open", T0)])
    assert m.step(state, ev(4, "open", T0)) is None
    assert m.step(state, ev(6, "open", T0)) is state


def test_out_of_order_event_of_unscored_kind_is_ignored() -> None:
    m = model(MotivationRule("open", "open", 1))
    state = run(m, [ev(3, "open", T0 + timedelta(hours=1))])
    assert m.step(state, ev(2, "unscored", T0)) is state
    assert state.last == (T0.timestamp() + 3600, 3)


def test_retry_of_the_last_event_counts_once() -> None:
    m = model(MotivationRule("open", "open", 1))
    state = run(m, [ev(1, "open", T0)])
    before = state.copy()
    assert m.step(state, ev(1, "open", T0)) is state
    assert state == before and len(state.hits) == 1


def test_replay_sorts_and_deduplicates() -> None:
    m = model(MotivationRule("open", "open", 1, max_per_lead=2))
    a, b, c = ev(1, "open", T0), ev(2, "open", T0 + timedelta(1)), ev(3, "open", T0 + timedelta(2))
    assert m.replay([c, a, b, a, c, b]) == run(m, [a, b, c])
    assert hit_ids(m.replay([c, b, a])) == [1, 2]


# -- ability ---------------------------------------------------------------------------------------------
SIZE = (AbilityRule("s500", "size", 5, min=500, max=999), AbilityRule("s1000", "size", 4, min=1000, max=50000),
        AbilityRule("s250", "size", 3, min=250, max=499))


@pytest.mark.parametrize(("value", "points"), [
    (600, 5), (600.0, 5), ("600", 5), (" 600 ", 5), ("1,000", 4), ("1000", 4), (499, 3), (499.5, 0), ("250", 3),
    (50000, 4), (50001, 0), (100, 0), ("lots", 0), ("", 0), (None, 0), (True, 0),
    ("500_999", 0),  # a company-size code, not the number 500999
    ("1e3", 0),
])
def test_ability_numeric_ranges(value: Any, points: int) -> None:
    assert model(ability=SIZE).ability({"size": value}) == points


def test_size_code_is_not_a_number() -> None:
    big = AbilityRule("big", "size", 4, min=1000)  # float("500_999") would be 500999: inside this range
    assert not big.matches("500_999")
    assert AbilityRule("code", "size", 5, values=("500_999",)).matches("500_999")


def test_open_ranges() -> None:
    assert AbilityRule("r", "a", 1, min=10).matches("1e9") is False
    assert AbilityRule("r", "a", 1, min=10).matches(10)
    assert AbilityRule("r", "a", 1, max=10).matches("-3")
    assert not AbilityRule("r", "a", 1, max=10).matches("10.5")
    assert not AbilityRule("r", "a", 1).matches(10)  # neither values nor a range: never


@pytest.mark.parametrize("value", ["VP", "vp", "Vp", " vp ", "vp\n"])
def test_ability_values_are_case_insensitive(value: str) -> None:
    # Rule values are lower-case: bot/config/scoring.py normalises them (AbilityRule itself does not).
    assert AbilityRule("vp", "level", 10, values=("vp", "svp")).matches(value)


def test_ability_values_do_not_match_numbers_by_range_or_other_text() -> None:
    rule = AbilityRule("t", "type", 10, values=("b2b",))
    assert not rule.matches("b2c") and not rule.matches("b2b2c") and not rule.matches(None)
    assert AbilityRule("n", "employees", 1, values=("500",)).matches(500)


def test_first_matching_rule_per_attribute_counts() -> None:
    rules = (AbilityRule("vp", "level", 10, values=("vp",)), AbilityRule("dir", "level", 8, values=("director",)),
             AbilityRule("any_level", "level", 1, values=("vp", "director", "manager")),
             AbilityRule("hr", "department", 15, values=("hr",)), AbilityRule("b2b", "type", 10, values=("b2b",)),
             AbilityRule("npo", "type", -5, values=("non-profit",)))
    m = model(ability=rules)
    assert m.ability({"level": "VP", "department": "HR"}) == 25
    assert m.ability({"level": "Manager"}) == 1
    assert m.ability({"level": "intern", "type": "Non-Profit"}) == -5
    assert [c.rule_id for c in m.ability_contributions({"level": "director", "type": "b2b", "x": 1})] == ["dir", "b2b"]


# -- fingerprint -----------------------------------------------------------------------------------------
def test_fingerprint_changes_with_any_rule() -> None:
    base = ScoringRules(ability=(AbilityRule("vp", "level", 10, values=("vp",)),),
                        motivation=(MotivationRule("dl", "download", 10, max_per_lead=3),),
                        decay=Decay(half_life_days=30), actions={"sales_ready": ("stage:mql",)})
    same = ScoringRules(ability=(AbilityRule("vp", "level", 10, values=("vp",)),),
                        motivation=(MotivationRule("dl", "download", 10, max_per_lead=3),),
                        decay=Decay(half_life_days=30), actions={"sales_ready": ("stage:mql",)})
    assert base.fingerprint == same.fingerprint
    assert len(base.fingerprint) == 16
    changed = [
        replace(base, motivation=(MotivationRule("dl", "download", 11, max_per_lead=3),)),
        replace(base, motivation=(MotivationRule("dl", "download", 10, max_per_lead=4),)),
        replace(base, motivation=(MotivationRule("dl", "download", 10, max_per_lead=3, once_per="content_id"),)),
        replace(base, motivation=(MotivationRule("dl", "download", 10, max_per_lead=3, tag=("hr",)),)),
        replace(base, motivation=()),
        replace(base, ability=(AbilityRule("vp", "level", 9, values=("vp",)),)),
        replace(base, ability=(AbilityRule("vp", "level", 10, values=("vp", "svp")),)),
        replace(base, ability=(AbilityRule("vp", "level", 10, values=("vp",), min=1),)),
        replace(base, decay=Decay(half_life_days=31)),
        replace(base, decay=Decay(steps=((7, 0.5),))),
        replace(base, ability_threshold=26),
        replace(base, motivation_threshold=40),
        replace(base, timezone="UTC"),
    ]
    prints = [r.fingerprint for r in changed]
    assert base.fingerprint not in prints
    assert len(set(prints)) == len(prints)


# =========================================================================================================
# Properties
# =========================================================================================================
KINDS = ("open", "click", "download")
EVENT_KINDS = (*KINDS, "noise")  # "noise": no rule looks at it
CHANNELS = ("email", "web", "wechat")
SCENES = ("content", "event", "ad")
CONTENT_IDS = ("c1", "c2", "c3")
CONTENT_STAGES = ("awareness", "decision")
TAGS = ("hr", "finance", "x")
SLOT = 15 * 60  # event times are on a quarter-hour grid over several days: collisions and day boundaries


def _subset(items: tuple[str, ...]) -> st.SearchStrategy[tuple[str, ...]]:
    """No filter most of the time (so rules do match), else a non-empty subset; one choice keeps generation fast."""
    subsets = [c for n in range(1, len(items) + 1) for c in combinations(items, n)]
    return st.sampled_from([()] * (3 * len(subsets)) + subsets)


@st.composite
def motivation_rules(draw: st.DrawFn, nonnegative: bool = False) -> tuple[MotivationRule, ...]:
    n = draw(st.integers(0, 6))
    rules = []
    for i in range(n):
        rules.append(MotivationRule(
            id=f"r{i}", event=draw(st.sampled_from(KINDS)),
            points=draw(st.integers(0 if nonnegative else -10, 50)),
            channel=draw(_subset(CHANNELS)), scene=draw(_subset(SCENES)), content_id=draw(_subset(CONTENT_IDS)),
            content_stage=draw(_subset(CONTENT_STAGES)),
            content_key=draw(st.sampled_from((None, None, None, True, False))),
            tag=draw(_subset(TAGS)), max_per_lead=draw(st.none() | st.integers(0, 4)),
            max_per_day=draw(st.none() | st.integers(0, 3)),
            once_per=draw(st.sampled_from(("", "content_id", "stage"))),
            min_occurrences=draw(st.integers(1, 3)),
        ))
    return tuple(rules)


# Grace periods: none (the decay of old), whole days (boundaries on the event grid), or any length.
GRACE_DAYS = st.sampled_from((0.0, 0.0, 1.0, 7.0)) | st.floats(0, 10)


@st.composite
def decays(draw: st.DrawFn) -> Decay:
    kind = draw(st.sampled_from(("none", "half_life", "steps")))
    grace = draw(GRACE_DAYS)
    if kind == "half_life":
        return Decay(half_life_days=draw(st.floats(0.1, 90)), grace_days=grace)
    if kind == "steps":
        ages = sorted(draw(st.lists(st.floats(0, 120), min_size=1, max_size=4, unique=True)))
        factors = sorted(draw(st.lists(st.floats(0, 1), min_size=len(ages), max_size=len(ages))), reverse=True)
        return Decay(steps=tuple(zip(ages, factors, strict=True)), grace_days=grace)
    return Decay(grace_days=grace)


@st.composite
def ability_rules(draw: st.DrawFn) -> tuple[AbilityRule, ...]:
    out = []
    for i in range(draw(st.integers(0, 4))):
        lo = draw(st.none() | st.integers(0, 1000))
        out.append(AbilityRule(f"a{i}", draw(st.sampled_from(("level", "size"))), draw(st.integers(-5, 15)),
                               values=draw(_subset(("vp", "director", "500_999"))),
                               min=lo, max=draw(st.none() | st.integers(lo or 0, 2000))))
    return tuple(out)


PROFILE_VALUES = st.sampled_from((None, "", "VP", "director", "600", "500_999", 600, 1500, "1,200", "x"))


@st.composite
def rule_sets(draw: st.DrawFn, nonnegative: bool = False) -> ScoringRules:
    return ScoringRules(ability=draw(ability_rules()), motivation=draw(motivation_rules(nonnegative)),
                        decay=draw(decays()), ability_threshold=draw(st.integers(0, 30)),
                        motivation_threshold=draw(st.integers(0, 60)))


def _details() -> list[dict[str, Any]]:
    out = []
    for content_id, stage, key, tags in product((None, *CONTENT_IDS), (None, *CONTENT_STAGES), (None, True, False),
                                                (None, [], ["hr"], ["finance", "x"], ["x", "hr"])):
        d: dict[str, Any] = {"content_id": content_id, "stage": stage, "key": key, "tags": tags}
        out.append({k: v for k, v in d.items() if v is not None})
    return out


DETAILS = st.sampled_from(_details())


# Quarter-hours from T0 (20:00 Beijing) over three days; half of them within an hour of a Beijing midnight
# (T0 + 4 h) or a UTC midnight (T0 + 12 h): the boundaries a per-day cap must get right.
SLOTS = st.integers(0, 3 * 96) | st.builds(lambda day, midnight, off: 96 * day + midnight + off,
                                           st.integers(0, 2), st.sampled_from((16, 48)), st.integers(-4, 3))


@st.composite
def histories(draw: st.DrawFn) -> list[ScoreEvent]:
    """Distinct touchpoints (unique ids), in no particular order."""
    n = draw(st.integers(0, 20))  # (a plain st.lists stays very short)
    ids = draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n, unique=True))
    return [ScoreEvent(tid, draw(st.sampled_from(EVENT_KINDS)), T0 + timedelta(seconds=SLOT * draw(SLOTS)),
                       draw(st.sampled_from(("", *CHANNELS))), draw(st.sampled_from(("", *SCENES))), draw(DETAILS))
            for tid in ids]


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[ScoreEvent], list[ScoreEvent]]:
    """(distinct events, the order they arrive in): mostly in order, sometimes shuffled, with retries."""
    events = draw(histories())
    if draw(st.booleans()):
        order = sorted(events, key=lambda e: e.order)
        for _ in range(draw(st.integers(0, 3))):  # a few late arrivals
            if len(order) > 1:
                i, j = draw(st.integers(0, len(order) - 1)), draw(st.integers(0, len(order) - 1))
                order[i], order[j] = order[j], order[i]
    else:
        order = list(draw(st.permutations(events)))
    for _ in range(draw(st.integers(0, 5))):  # retries: the same event again, anywhere later
        if order:
            i = draw(st.integers(0, len(order) - 1))
            order.insert(draw(st.integers(i + 1, len(order))), order[i])
    return events, order


READ_TIMES = st.integers(-2 * 96, 200 * 96).map(lambda k: T0 + timedelta(seconds=SLOT * k))
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def incremental(m: ScoreModel, arrival: list[ScoreEvent]) -> MotivationState:
    """What the live path does: step each arriving event; replay everything seen when one is out of order."""
    state, seen = MotivationState(), []
    for e in arrival:
        seen.append(e)
        stepped = m.step(state, e)
        state = stepped if stepped is not None else m.replay(seen)
    return state


@PROPERTY
@given(rules=rule_sets(), data=arrivals(), at=READ_TIMES,
       profile=st.fixed_dictionaries({"level": PROFILE_VALUES, "size": PROFILE_VALUES}))
def test_totals_are_the_sum_of_contributions(rules: ScoringRules, data: tuple[list[ScoreEvent], list[ScoreEvent]],
                                              at: datetime, profile: dict[str, Any]) -> None:
    m = ScoreModel(rules)
    state = incremental(m, data[1])
    card = m.scorecard(profile, state, at)
    ability = [c for c in card.contributions if c.score == ABILITY]
    motivation = [c for c in card.contributions if c.score == MOTIVATION]
    assert len(ability) + len(motivation) == len(card.contributions)
    assert card.ability == pytest.approx(sum(c.current for c in ability))
    assert card.ability == m.ability(profile)
    # Totals are rounded to SCORE_DECIMALS (6), the contributions are not.
    assert card.motivation == pytest.approx(sum(c.current for c in motivation), abs=1e-6)
    assert card.motivation == m.motivation(state, at)
    assert card.quadrant == rules.quadrant(card.ability, card.motivation)
    assert len({c.attribute for c in ability}) == len(ability)  # one rule per attribute
    by_id = {e.touchpoint_id: e for e in data[0]}
    assert len(motivation) == len(state.hits)
    for c, h in zip(motivation, state.hits, strict=True):
        event = by_id[c.touchpoint_id]
        assert (c.rule_id, c.touchpoint_id, c.points, c.occurred_at) == (h.rule_id, h.touchpoint_id, h.points,
                                                                         event.occurred_at)
        assert c.current == pytest.approx(c.points * reference_factor(rules, data[0], h.touchpoint_id, at))


@PROPERTY
@given(rules=rule_sets(), data=arrivals(), at=READ_TIMES)
def test_incremental_equals_recompute(rules: ScoringRules, data: tuple[list[ScoreEvent], list[ScoreEvent]],
                                      at: datetime) -> None:
    m = ScoreModel(rules)
    events, arrival = data
    live = incremental(m, arrival)
    full = m.replay(events)
    assert live.hits == full.hits
    assert m.motivation(live, at) == m.motivation(full, at)
    assert live == full
    # The stored form gives the same state too.
    assert MotivationState.from_json(json.loads(json.dumps(live.to_json()))) == full


@PROPERTY
@given(rules=rule_sets(), data=arrivals())
def test_caps_are_never_exceeded_and_hits_match_a_reference(
        rules: ScoringRules, data: tuple[list[ScoreEvent], list[ScoreEvent]]) -> None:
    m = ScoreModel(rules)
    events, arrival = data
    state = incremental(m, arrival)
    by_id = {e.touchpoint_id: e for e in events}
    per_rule = Counter(h.rule_id for h in state.hits)
    per_day = Counter((h.rule_id, datetime.fromtimestamp(h.at, BEIJING).date()) for h in state.hits)
    assert len({(h.rule_id, h.touchpoint_id) for h in state.hits}) == len(state.hits)  # one hit per rule and event
    for rule in rules.motivation:
        hits = [h for h in state.hits if h.rule_id == rule.id]
        assert all(h.points == rule.points and by_id[h.touchpoint_id].kind == rule.event for h in hits)
        if rule.max_per_lead is not None:
            assert per_rule[rule.id] <= rule.max_per_lead
        if rule.max_per_day is not None:
            assert all(n <= rule.max_per_day for (rid, _), n in per_day.items() if rid == rule.id)
        if rule.once_per:
            keys = [str(by_id[h.touchpoint_id].detail.get(rule.once_per, "")) for h in hits]
            assert len(set(keys)) == len(keys)
        assert len(hits) <= max(0, state.matched.get(rule.id, 0) - rule.min_occurrences + 1)
        # The first min_occurrences - 1 matching events never count.
        matching = sorted((e for e in events if e.kind == rule.event and _matches(rule, e)), key=lambda e: e.order)
        early = {e.touchpoint_id for e in matching[: rule.min_occurrences - 1]}
        assert not early & {h.touchpoint_id for h in hits}
        assert state.matched.get(rule.id, 0) == len(matching)
    # Exactly the hits an independent, plain reading of the rules gives.
    assert [(h.rule_id, h.touchpoint_id, h.at, h.points) for h in state.hits] == _reference_hits(rules, events)


def _reference_hits(rules: ScoringRules, events: list[ScoreEvent]) -> list[tuple[str, int, float, int]]:
    tz = ZoneInfo(rules.timezone)
    matched: Counter[str] = Counter()
    counted: Counter[str] = Counter()
    per_day: Counter[tuple[str, Any]] = Counter()
    keys: dict[str, set[str]] = {r.id: set() for r in rules.motivation}
    out = []
    for e in sorted({e.touchpoint_id: e for e in events}.values(), key=lambda e: (e.occurred_at, e.touchpoint_id)):
        day = e.occurred_at.astimezone(tz).date()
        for rule in rules.motivation:
            if rule.event != e.kind or not _matches(rule, e):
                continue
            matched[rule.id] += 1
            if matched[rule.id] < rule.min_occurrences:
                continue
            if rule.max_per_lead is not None and counted[rule.id] >= rule.max_per_lead:
                continue
            if rule.max_per_day is not None and per_day[rule.id, day] >= rule.max_per_day:
                continue
            key = str(e.detail.get(rule.once_per, "")) if rule.once_per else None
            if key is not None:
                if key in keys[rule.id]:
                    continue
                keys[rule.id].add(key)
            counted[rule.id] += 1
            per_day[rule.id, day] += 1
            out.append((rule.id, e.touchpoint_id, e.occurred_at.timestamp(), rule.points))
    return out


def _matches(rule: MotivationRule, e: ScoreEvent) -> bool:
    """An independent reading of the filters."""
    d = e.detail
    return all((
        not rule.channel or e.channel in rule.channel,
        not rule.scene or e.scene in rule.scene,
        not rule.content_id or d.get("content_id") in rule.content_id,
        not rule.content_stage or d.get("stage") in rule.content_stage,
        rule.content_key is None or d.get("key", False) == rule.content_key,
        not rule.tag or bool(set(d.get("tags") or ()) & set(rule.tag)),
    ))


def reference_holds(rules: ScoringRules, events: list[ScoreEvent]) -> list[tuple[float, float]]:
    """An independent reading of the hold: after each event that earned points and left the lead at or above
    the motivation threshold, nothing fades for the grace period."""
    grace = rules.decay.grace_days * DAY
    hits = _reference_hits(rules, events)
    holds: list[tuple[float, float]] = []
    if grace <= 0:
        return holds
    for i, (_, tid, at, _) in enumerate(hits):
        if i + 1 < len(hits) and hits[i + 1][1] == tid:
            continue  # the event's last hit: judge the event once all its points are in
        mine = [h for h in hits if h[1] == tid]
        if not any(p > 0 for *_, p in mine):
            continue
        value = round(math.fsum(p * _factor(rules, a, at, holds) for _, _, a, p in hits[: i + 1]), 6)
        if value >= rules.motivation_threshold:
            holds.append((at, at + grace))
    return holds


def reference_factor(rules: ScoringRules, events: list[ScoreEvent], touchpoint_id: int, at: datetime) -> float:
    """The decay factor of ``touchpoint_id``'s points read at ``at``."""
    hit_at = next(a for _, tid, a, _ in _reference_hits(rules, events) if tid == touchpoint_id)
    return _factor(rules, hit_at, at.timestamp(), reference_holds(rules, events))


def _factor(rules: ScoringRules, hit_at: float, now: float, holds: list[tuple[float, float]]) -> float:
    """The time since the hit outside its own grace window and the holds is its age."""
    if now <= hit_at:
        return 1.0
    held, end = 0.0, hit_at  # the measure of the windows' union within [hit_at, now]
    for lo, hi in sorted([(hit_at, hit_at + rules.decay.grace_days * DAY), *holds]):
        lo, hi = max(lo, end), min(hi, now)
        if hi > lo:
            held, end = held + hi - lo, hi
    return rules.decay.factor((now - hit_at) - held)


@PROPERTY
@given(rules=rule_sets(), data=arrivals(), times=st.lists(READ_TIMES, min_size=2, max_size=6))
def test_decayed_values_never_increase(rules: ScoringRules, data: tuple[list[ScoreEvent], list[ScoreEvent]],
                                       times: list[datetime]) -> None:
    m = ScoreModel(rules)
    state = m.replay(data[0])
    cards = [m.scorecard({}, state, t) for t in sorted(times)]
    for earlier, later in zip(cards, cards[1:], strict=False):
        for a, b in zip(earlier.contributions, later.contributions, strict=True):
            assert (a.rule_id, a.touchpoint_id) == (b.rule_id, b.touchpoint_id)
            assert abs(b.current) <= abs(a.current) + 1e-12
            assert abs(a.current) <= abs(a.points) + 1e-12


@PROPERTY
@given(rules=rule_sets(nonnegative=True), data=arrivals(), times=st.lists(READ_TIMES, min_size=2, max_size=6))
def test_total_motivation_never_increases_with_nonnegative_points(
        rules: ScoringRules, data: tuple[list[ScoreEvent], list[ScoreEvent]], times: list[datetime]) -> None:
    m = ScoreModel(rules)
    state = m.replay(data[0])
    totals = [m.motivation(state, t) for t in sorted(times)]
    for earlier, later in zip(totals, totals[1:], strict=False):
        assert later <= earlier + 1e-9


@PROPERTY
@given(rules=rule_sets(), data=arrivals(), retries=st.data())
def test_a_retry_counts_once(rules: ScoringRules, data: tuple[list[ScoreEvent], list[ScoreEvent]],
                             retries: st.DataObject) -> None:
    m = ScoreModel(rules)
    events, arrival = data
    once = incremental(m, arrival)
    if not arrival:
        return
    # Any arriving event, arriving again anywhere later.
    i = retries.draw(st.integers(0, len(arrival) - 1))
    again = list(arrival)
    again.insert(retries.draw(st.integers(i + 1, len(again))), arrival[i])
    twice = incremental(m, again)
    assert twice == once
    assert all(n == 1 for n in Counter((h.rule_id, h.touchpoint_id) for h in twice.hits).values())
    # ... and the retry applied straight after the whole history changes nothing either.
    state = incremental(m, arrival)
    stepped = m.step(state, arrival[i])
    after = stepped if stepped is not None else m.replay([*arrival, arrival[i]])
    assert after == once
