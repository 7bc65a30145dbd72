"""The step machine: positions, waits, branches, exits, edited journeys, and termination for any journey."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.journeys.definition import (
    Action,
    Check,
    Condition,
    Exit,
    Journey,
    Step,
    Trigger,
    Wait,
    count_steps,
)
from leads.journeys.machine import (
    START,
    Advance,
    Done,
    Exited,
    LeadView,
    Outcome,
    RunAction,
    reached,
    step,
    wait_until,
)
from tests.leads.journeys.sim import drive

CN = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, a Monday
SEND = Action("oa_template", (("template", "t"),))
TAG = Action("tag_add", (("tag", "x"),))
LEAD = LeadView(stage="lead", follows_oa=True)


def journey(*steps: Step, exit: Exit | None = None) -> Journey:
    return Journey("j", "j", Trigger("form_submitted"), steps, exit or Exit())


def at(j: Journey, position: tuple, lead: LeadView = LEAD, now: datetime = T0) -> Outcome:
    return step(j, position, lead, now, enrolled_at=T0)


def test_wait_then_action_then_done():
    j = journey(Wait(timedelta(days=2)), SEND)
    assert at(j, START) == Advance((1,), T0 + timedelta(days=2))
    assert at(j, (1,)) == RunAction(SEND, (2,))
    assert at(j, (2,)) == Done("completed")


def test_condition_evaluates_at_once_and_branch_end_continues_after_it():
    j = journey(Condition(Check("tag", "vip"), yes=(TAG,), no=(SEND,)), Wait(timedelta(hours=1)))
    assert at(j, START, replace(LEAD, tags=frozenset({"vip"}))) == RunAction(TAG, (0, "yes", 1))
    assert at(j, START) == RunAction(SEND, (0, "no", 1))
    assert at(j, (0, "no", 1)) == Advance((2,), T0 + timedelta(hours=1))


def test_empty_branch_and_nested_condition_at_end_of_branch():
    inner = Condition(Check("profile", "city", "上海"), yes=(SEND,))
    j = journey(Condition(Check("tag", "vip"), yes=(TAG,)), inner)
    # Not vip: the empty no branch falls through to the next condition, evaluated where it really is.
    assert at(j, START, replace(LEAD, profile={"city": "上海"})) == RunAction(SEND, (1, "yes", 1))
    assert at(j, (0, "yes", 1), replace(LEAD, profile={"city": "北京"})) == Done()


def test_behaviour_lookback_window():
    check = Check("behaviour", "opened", within=timedelta(days=3))
    j = journey(Condition(check, yes=(TAG,), no=(SEND,)))
    recent = replace(LEAD, behaviour={"opened": (T0 - timedelta(days=2),)})
    old = replace(LEAD, behaviour={"opened": (T0 - timedelta(days=4),)})
    assert at(j, START, recent).action == TAG  # type: ignore[union-attr]
    assert at(j, START, old).action == SEND  # type: ignore[union-attr]


def test_replied_counts_the_last_inbound_message():
    j = journey(Condition(Check("behaviour", "replied", within=timedelta(days=1)), yes=(TAG,), no=(SEND,)))
    assert at(j, START, replace(LEAD, last_inbound_at=T0 - timedelta(hours=3))).action == TAG  # type: ignore
    assert at(j, START, replace(LEAD, last_inbound_at=T0 - timedelta(days=2))).action == SEND  # type: ignore


def test_exit_is_checked_before_every_step():
    j = journey(SEND, SEND)
    assert at(j, (1,), replace(LEAD, stage="sal")) == Exited("stage:sal")
    assert at(j, (1,), replace(LEAD, stage="sql")) == Exited("stage:sal")  # past SAL counts as reached
    assert at(j, (1,), replace(LEAD, unsubscribed=True)) == Exited("unsubscribed")
    assert at(j, (1,), replace(LEAD, stage="returned")) == RunAction(SEND, (2,))


def test_reply_exits_only_when_asked_and_only_after_enrolment():
    replying = journey(SEND, exit=Exit(replies=True))
    assert at(replying, START, replace(LEAD, last_inbound_at=T0 + timedelta(minutes=5)),
              T0 + timedelta(hours=1)) == Exited("replied")
    assert at(replying, START, replace(LEAD, last_inbound_at=T0 - timedelta(minutes=5))) == RunAction(SEND, (1,))
    assert at(journey(SEND), START, replace(LEAD, last_inbound_at=T0 + timedelta(minutes=5))) == RunAction(
        SEND, (1,))


@pytest.mark.parametrize("position", [(), (5,), (-1,), ("yes",), (0, "yes", 0), (1, "maybe", 0), (1, "yes", 3),
                                      (1, "yes"), (1, "yes", 0, "no", 0), (True,)])
def test_positions_that_no_longer_fit_exit_as_journey_changed(position):
    j = journey(SEND, Condition(Check("tag", "x"), yes=(TAG,)))
    assert at(j, position) == Exited("journey_changed")


def test_naive_now_is_refused():
    with pytest.raises(ValueError):
        at(journey(SEND), START, now=datetime(2026, 3, 2, 9, 0))


def test_wait_until_local_time_is_the_next_one():
    nine_thirty = Wait(until=time(9, 30))
    assert wait_until(nine_thirty, T0, CN) == datetime(2026, 3, 2, 9, 30, tzinfo=CN)  # later today
    assert wait_until(nine_thirty, T0 + timedelta(hours=1), CN) == datetime(2026, 3, 3, 9, 30, tzinfo=CN)
    both = Wait(timedelta(days=2), time(10, 0))
    assert wait_until(both, T0, CN) == datetime(2026, 3, 4, 10, 0, tzinfo=CN)
    # Day 2 at 10:00 even when the wait starts in the evening: the series does not drift a day per step.
    evening = datetime(2026, 3, 2, 20, 30, tzinfo=CN)
    assert wait_until(both, evening, CN) == datetime(2026, 3, 4, 10, 0, tzinfo=CN)
    assert wait_until(Wait(timedelta(hours=1), time(21, 0)), evening, CN) == datetime(2026, 3, 2, 21, 0, tzinfo=CN)


def test_reached_follows_the_funnel():
    assert reached("customer", "sal") and reached("mql", "mql") and not reached("mql", "sal")
    assert not reached("returned", "sal") and reached("returned", "returned")


# -- properties -------------------------------------------------------------------------------------------
TAGS = ("a", "b")
checks = st.one_of(
    st.builds(Check, st.just("tag"), st.sampled_from(TAGS)),
    st.builds(Check, st.just("profile"), st.just("city"), st.sampled_from(("上海", "北京"))),
    st.builds(Check, st.just("behaviour"), st.sampled_from(("opened", "clicked", "follows_oa", "replied")),
              within=st.timedeltas(min_value=timedelta(hours=1), max_value=timedelta(days=10))),
    st.builds(Check, st.just("score"), threshold=st.floats(0, 100)),
)
leaves = st.one_of(
    st.builds(Wait, st.one_of(st.none(), st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30))),
              st.one_of(st.none(), st.times())),
    st.builds(Action, st.sampled_from(("oa_template", "wecom_task", "notify_owner")), st.just(())),
    st.builds(Action, st.sampled_from(("tag_add", "tag_remove")), st.tuples(st.tuples(st.just("tag"),
                                                                                       st.sampled_from(TAGS)))),
    st.builds(Action, st.just("stage"), st.tuples(st.tuples(st.just("stage"), st.sampled_from(("mql", "sal"))))),
)
step_lists = st.recursive(
    st.lists(leaves, max_size=4).map(tuple),
    lambda inner: st.lists(st.one_of(leaves, st.builds(Condition, checks, inner, inner)), max_size=4).map(tuple),
    max_leaves=25,
)
times = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC))
views = st.builds(
    LeadView, stage=st.sampled_from(("lead", "mql", "returned", "recycled")),
    tags=st.frozensets(st.sampled_from(TAGS)), profile=st.fixed_dictionaries({"city": st.sampled_from(("上海", ""))}),
    follows_oa=st.booleans(), wecom_contact=st.booleans(), motivation=st.floats(0, 100),
    behaviour=st.fixed_dictionaries({"opened": st.lists(times, max_size=2).map(tuple)}))


@settings(max_examples=300, deadline=None)
@given(step_lists, views, times, st.booleans())
def test_any_journey_ends_within_its_step_count(steps, lead, start, replies):
    j = journey(*steps, exit=Exit(replies=replies))
    run = drive(j, lead, start, limit=count_steps(steps) + 1)
    assert run.end is not None
    if isinstance(run.end, Exited):
        assert run.end.reason in ("stage:sal", "unsubscribed", "replied")  # a valid journey never "changed"
    # Positions only move forward: the same position is never evaluated twice.
    assert len(set(run.positions)) == len(run.positions)


position_parts = st.lists(st.one_of(st.integers(-2, 6), st.sampled_from(("yes", "no", "x"))), max_size=7)


@settings(max_examples=300, deadline=None)
@given(step_lists, views, times, position_parts)
def test_any_position_gives_an_outcome(steps, lead, now, position):
    outcome = step(journey(*steps), tuple(position), lead, now, enrolled_at=now)
    assert isinstance(outcome, Advance | RunAction | Done | Exited)
    if isinstance(outcome, Advance):
        assert outcome.due_at >= now


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30))), st.times(), times)
def test_wait_until_lands_on_the_local_time_within_a_day_of_the_duration(duration, until, now):
    due = wait_until(Wait(duration, until), now, CN)
    span = now + (duration or timedelta(0))
    assert now < due
    assert span - timedelta(days=1) < due <= span + timedelta(days=1)
    assert due.astimezone(CN).time() == until.replace(tzinfo=None)
