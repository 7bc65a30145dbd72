"""Decay without flicker (leads/scoring.py, ``Decay.grace_days``): points keep full value for the grace
period, a lead reaching the motivation threshold is held that long, totals are rounded in one place; and the
properties: incremental = replay at any read time (around the grace and hold boundaries too), a lead that
became high-motivation keeps its motivation until the hold ends or its next touchpoint."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leads.scoring import MotivationState, ScoreEvent, ScoreModel
from leads.scoring_decay import total
from leads.scoring_rules import Decay, MotivationRule, ScoringRules
from tests.leads.test_scoring_model import (
    PROPERTY,
    READ_TIMES,
    T0,
    _reference_hits,
    arrivals,
    ev,
    incremental,
    reference_factor,
    rule_sets,
)

MS = timedelta(milliseconds=1)
DEMO = MotivationRule("demo", "request_demo", 50, max_per_lead=1)


def rules(*motivation: MotivationRule, decay: Decay, threshold: float = 50) -> ScoringRules:
    return ScoringRules(motivation=motivation, decay=decay, motivation_threshold=threshold)


def test_a_demo_request_at_exactly_the_threshold_stays_there_for_the_grace_period() -> None:
    m = ScoreModel(rules(DEMO, decay=Decay(half_life_days=30, grace_days=7)))
    state = m.replay([ev(1, "request_demo", T0)])
    for later in (timedelta(0), MS, timedelta(seconds=1), timedelta(days=7) - MS, timedelta(days=7)):
        assert m.motivation(state, T0 + later) == 50.0
        assert m.rules.quadrant(30, m.motivation(state, T0 + later)) == "sales_ready"
    # ... then it fades from the end of the grace period, as the half-life says.
    assert m.motivation(state, T0 + timedelta(days=7, hours=1)) == pytest.approx(50 * 0.5 ** (1 / 720), abs=1e-6)
    assert m.motivation(state, T0 + timedelta(days=37)) == 25.0
    assert m.rules.quadrant(30, m.motivation(state, T0 + timedelta(days=7, hours=1))) == "nurture"


def test_without_grace_the_old_decay_reads_below_the_threshold_at_once() -> None:
    m = ScoreModel(rules(DEMO, decay=Decay(half_life_days=30)))
    state = m.replay([ev(1, "request_demo", T0)])
    assert m.motivation(state, T0) == 50.0
    assert m.motivation(state, T0 + timedelta(seconds=1)) < 50  # the flicker the grace period removes
    assert state.holds == []


def test_older_decaying_points_are_held_when_a_touchpoint_reaches_the_threshold() -> None:
    """40 points 10 days old (decaying since day 7) + 13 fresh ones = 50.3: without the hold the old points
    would take the lead below 50 within a day; held, nothing fades for 7 days."""
    m = ScoreModel(rules(MotivationRule("old", "webinar", 40), MotivationRule("new", "pricing", 13),
                         decay=Decay(half_life_days=30, grace_days=7)))
    crossing = T0 + timedelta(days=10)
    state = m.replay([ev(1, "webinar", T0), ev(2, "pricing", crossing)])
    assert state.holds == [(crossing.timestamp(), (crossing + timedelta(days=7)).timestamp())]
    at_crossing = m.motivation(state, crossing)
    assert at_crossing == pytest.approx(40 * 0.5 ** (3 / 30) + 13, abs=1e-6) and at_crossing >= 50
    for later in (MS, timedelta(days=1), timedelta(days=7) - MS, timedelta(days=7)):
        assert m.motivation(state, crossing + later) == at_crossing
    # After the hold both fade again: the old points aged 3 days before it, the new ones had their grace in it.
    after = crossing + timedelta(days=8)
    assert m.motivation(state, after) == pytest.approx(40 * 0.5 ** (4 / 30) + 13 * 0.5 ** (1 / 30), abs=1e-6)


def test_reaching_exactly_the_threshold_holds_too() -> None:
    """Step decay keeps the arithmetic exact: 60 halved after its grace + 20 = exactly 50."""
    m = ScoreModel(rules(MotivationRule("old", "webinar", 60), MotivationRule("new", "pricing", 20),
                         decay=Decay(steps=((0, 0.5), (5, 0.25)), grace_days=7)))
    crossing = T0 + timedelta(days=10)
    state = m.replay([ev(1, "webinar", T0), ev(2, "pricing", crossing)])
    assert m.motivation(state, crossing) == 50.0
    # Unheld, the old points would be 5 days past their grace at day 12 (factor 0.25: 15 + 20 = 35).
    assert m.motivation(state, crossing + timedelta(days=2)) == 50.0
    assert m.motivation(state, crossing + timedelta(days=7)) == 50.0
    assert m.motivation(state, crossing + timedelta(days=9)) == 60 * 0.25 + 20 * 0.5


def test_a_touchpoint_below_the_threshold_does_not_hold() -> None:
    m = ScoreModel(rules(MotivationRule("old", "webinar", 40), MotivationRule("new", "pricing", 5),
                         decay=Decay(half_life_days=30, grace_days=7)))
    state = m.replay([ev(1, "webinar", T0), ev(2, "pricing", T0 + timedelta(days=10))])
    assert state.holds == []
    assert m.motivation(state, T0 + timedelta(days=11)) < m.motivation(state, T0 + timedelta(days=10))


def test_negative_points_do_not_hold_and_holds_merge() -> None:
    m = ScoreModel(rules(DEMO, MotivationRule("careers", "visit_careers", -5),
                         MotivationRule("pricing", "pricing", 20), decay=Decay(half_life_days=30, grace_days=7)))
    events = [ev(1, "request_demo", T0), ev(2, "pricing", T0 + timedelta(days=3)),
              ev(3, "visit_careers", T0 + timedelta(days=9)), ev(4, "pricing", T0 + timedelta(days=20))]
    state = m.replay(events)
    # The demo (50) and the pricing visit (70) hold, merged; the careers visit (negative) does not.
    assert state.holds[0] == (T0.timestamp(), (T0 + timedelta(days=10)).timestamp())
    assert len(state.holds) == 2  # the second pricing visit, at 20 days: still above 50
    restored = MotivationState.from_json(json.loads(json.dumps(state.to_json())))
    assert restored == state


def test_a_held_lead_pushed_below_the_threshold_is_not_held_longer() -> None:
    """Inside a hold the value is kept up to date without summing again: -5 then +1 leaves 46, no extension."""
    m = ScoreModel(rules(DEMO, MotivationRule("careers", "visit_careers", -5), MotivationRule("open", "open", 1),
                         decay=Decay(half_life_days=30, grace_days=7)))
    state = m.replay([ev(1, "request_demo", T0), ev(2, "visit_careers", T0 + timedelta(days=1)),
                      ev(3, "open", T0 + timedelta(days=2))])
    assert m.motivation(state, T0 + timedelta(days=2)) == 46
    assert state.holds == [(T0.timestamp(), (T0 + timedelta(days=7)).timestamp())]
    assert state.value == 46
    # Two more opens: 48 at day 3, then the hold has ended, and the demo fades while the opens do not yet.
    state = m.replay([ev(1, "request_demo", T0), ev(2, "visit_careers", T0 + timedelta(days=1)),
                      ev(3, "open", T0 + timedelta(days=2)), ev(4, "open", T0 + timedelta(days=8))])
    assert len(state.holds) == 1
    assert m.motivation(state, T0 + timedelta(days=8)) == pytest.approx(50 * 0.5 ** (1 / 30) - 5 + 2, abs=1e-6)


def test_grace_applies_to_step_schedules_from_its_end() -> None:
    m = ScoreModel(rules(MotivationRule("dl", "download", 10), decay=Decay(steps=((7, 0.5),), grace_days=3),
                         threshold=100))
    state = m.replay([ev(1, "download", T0)])
    assert m.motivation(state, T0 + timedelta(days=10) - MS) == 10
    assert m.motivation(state, T0 + timedelta(days=10)) == 5


def test_totals_are_rounded_in_one_place() -> None:
    assert total([49.99999999997]) == 50.0
    assert total([0.1] * 10) == 1.0
    assert total([-0.0]) == 0.0 and str(total([-0.0])) == "0.0"
    assert total([0.30000049, 0.2]) == 0.5


# -- properties ------------------------------------------------------------------------------------------
@st.composite
def boundary_times(draw: st.DrawFn, events: list[ScoreEvent], rules: ScoringRules) -> datetime:
    """A read time at or around the end of an event's grace period (or of a hold, one grace period later)."""
    if not events:
        return draw(READ_TIMES)
    base = draw(st.sampled_from(events)).occurred_at
    periods = draw(st.sampled_from((0, 1, 1, 2)))
    offset = draw(st.sampled_from((timedelta(0), MS, -MS, timedelta(seconds=1), -timedelta(seconds=1),
                                   timedelta(minutes=15), -timedelta(minutes=15))))
    return base + timedelta(days=rules.decay.grace_days * periods) + offset


@PROPERTY
@given(rules=rule_sets(), data=arrivals(), choice=st.data())
def test_incremental_equals_recompute_around_the_grace_boundary(
        rules: ScoringRules, data: tuple[list[ScoreEvent], list[ScoreEvent]], choice: st.DataObject) -> None:
    m = ScoreModel(rules)
    events, arrival = data
    live, full = incremental(m, arrival), m.replay(events)
    stored = MotivationState.from_json(json.loads(json.dumps(live.to_json())))
    assert live == full == stored
    for _ in range(3):
        at = choice.draw(boundary_times(events, rules) | READ_TIMES)
        value = m.motivation(live, at)
        assert value == m.motivation(full, at) == m.motivation(stored, at)
        assert m.scorecard({}, live, at) == m.scorecard({}, full, at)
        # ... and what an independent reading of the rule gives, to the microsecond: on a step of a schedule
        # too (ages are differences of nearby timestamps, exact in floating point).
        hits = _reference_hits(rules, events)
        expected = sum(p * reference_factor(rules, events, tid, at) for _, tid, _, p in hits)
        assert value == pytest.approx(expected, abs=2e-6)


@PROPERTY
@given(rules=rule_sets(nonnegative=True), data=arrivals(), choice=st.data())
def test_a_lead_that_reaches_the_threshold_keeps_its_motivation_through_the_grace_period(
        rules: ScoringRules, data: tuple[list[ScoreEvent], list[ScoreEvent]], choice: st.DataObject) -> None:
    """After any touchpoint that earned points and left the lead at or above the threshold, decay changes
    nothing until the grace period ends or the next touchpoint comes."""
    m = ScoreModel(rules)
    events = sorted(data[0], key=lambda e: e.order)
    grace = timedelta(days=rules.decay.grace_days)
    for i, event in enumerate(events):
        before = m.replay(events[:i])
        state = m.replay(events[: i + 1])
        earned = len(state.hits) > len(before.hits)
        value = m.motivation(state, event.occurred_at)
        if not earned or grace <= timedelta(0) or value < rules.motivation_threshold:
            continue
        end = event.occurred_at + grace
        if i + 1 < len(events):
            end = min(end, events[i + 1].occurred_at)
        span = (end - event.occurred_at).total_seconds()
        for fraction in (0.0, 1.0, choice.draw(st.floats(0, 1))):
            at = event.occurred_at + timedelta(seconds=span * fraction)
            assert m.motivation(state, at) == value
            assert m.rules.quadrant(rules.ability_threshold, m.motivation(state, at)) == m.rules.quadrant(
                rules.ability_threshold, value)


@PROPERTY
@given(rules=rule_sets(), data=arrivals(), at=READ_TIMES)
def test_no_grace_is_the_plain_decay(rules: ScoringRules, data: tuple[list[ScoreEvent], list[ScoreEvent]],
                                     at: datetime) -> None:
    plain = ScoringRules(ability=rules.ability, motivation=rules.motivation,
                         decay=Decay(rules.decay.half_life_days, rules.decay.steps),
                         motivation_threshold=rules.motivation_threshold)
    m = ScoreModel(plain)
    state = m.replay(data[0])
    assert state.holds == []
    now = at.timestamp()
    assert m.motivation(state, at) == total(h.points * plain.decay.factor(now - h.at) for h in state.hits)


