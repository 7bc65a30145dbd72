"""plan_run: one due run of an enrolment, decided purely. The properties the executor's exactly-once rests on:
a plan is a function of its inputs (a replay after a crash numbers the same steps the same way), records are
numbered on from the enrolment's seq without gaps, and a run stops at a wait, an end or a deferred send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from leads.journeys.definition import Action, Exit, Journey, Wait
from leads.journeys.machine import LeadView
from leads.journeys.plan import Enrolled, decode, encode, fingerprint, plan_run
from leads.journeys.policy import QuietHours, SendPolicy
from tests.leads.journeys.test_machine import step_lists, times, views

T0 = datetime(2026, 12, 2, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai
POLICY = SendPolicy()


def enrolled(journey: Journey, position=(0,), seq: int = 0, version: str | None = None) -> Enrolled:
    return Enrolled(7, 42, position, seq, T0 - timedelta(days=1), version or fingerprint(journey))


def make(*steps, exit: Exit | None = None) -> Journey:
    return Journey("j", "测试", None, tuple(steps), exit or Exit())  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(step_lists, views, times, st.integers(0, 50))
def test_a_plan_is_deterministic_and_numbers_its_records_without_gaps(steps, lead, now, seq):
    journey = make(*steps)
    e = enrolled(journey, seq=seq)
    plan = plan_run(journey, e, lead, now, POLICY, {})
    assert plan == plan_run(journey, e, lead, now, POLICY, {})
    assert [r.seq for r in plan.records] == list(range(seq + 1, plan.seq + 1))
    assert plan.records, "every run records at least where it stopped"
    last = plan.records[-1]
    if plan.status == "active":
        assert plan.due_at is not None and last.kind in ("wait", "action")
        assert last.outcome in ("waiting", "deferred")
    else:
        assert plan.due_at is None and last.kind in ("done", "exit")
    assert all(r.action is None or r.outcome in ("sent", "done") for r in plan.records)


def test_positions_round_trip():
    for position in [(0,), (3, "yes", 0), (2, "no", 1, "yes", 4)]:
        assert decode(encode(position)) == position
    for bad in ["", "a", "1.maybe.0", "1.yes", "-1"]:
        try:
            decode(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_removed_or_edited_journeys_and_gone_leads_end_the_enrolment():
    journey = make(Wait(timedelta(days=1)))
    lead = LeadView(stage="lead")
    assert plan_run(None, enrolled(journey), lead, T0, POLICY, {}).reason == "journey_removed"
    assert plan_run(journey, enrolled(journey), None, T0, POLICY, {}).reason == "lead_gone"
    assert plan_run(journey, enrolled(journey, version="old"), lead, T0, POLICY, {}).reason == "journey_changed"


def test_a_run_sends_tags_and_stops_at_the_wait_with_the_template_counted_against_the_cap():
    journey = make(Action("oa_template", (("template", "a"),)), Action("oa_template", (("template", "b"),)),
                   Action("tag_add", (("tag", "t"),)), Wait(timedelta(hours=2)))
    lead = LeadView(stage="lead", follows_oa=True)
    policy = SendPolicy(QuietHours(), {"oa": 2})
    plan = plan_run(journey, enrolled(journey), lead, T0, policy, {"oa": (T0 - timedelta(days=1),)})
    assert [(r.kind, r.outcome, r.reason) for r in plan.records] == [
        ("action", "sent", "ok"), ("action", "skipped", "weekly_cap:oa"), ("action", "done", "ok"),
        ("wait", "waiting", (T0 + timedelta(hours=2)).isoformat())]
    assert (plan.position, plan.due_at, plan.status) == ((4,), T0 + timedelta(hours=2), "active")


def test_a_stage_action_the_lifecycle_refuses_is_skipped_and_a_reached_exit_ends_the_run():
    journey = make(Action("stage", (("stage", "sal"),)), Action("stage", (("stage", "mql"),)),
                   Action("tag_add", (("tag", "after"),)), exit=Exit(stages=("mql",)))
    plan = plan_run(journey, enrolled(journey), LeadView(stage="lead"), T0, POLICY, {})
    assert [(r.outcome, r.reason) for r in plan.records] == [
        ("skipped", "stage_not_allowed"), ("done", "ok"), ("exited", "stage:mql")]
