"""The four journeys of deploy/journeys.example.toml, each driven end to end on a controllable clock:
enrol from its event, wait, branch, act, and exit when the lead reaches SAL; a returned lead enters re-nurture."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config.journeys import build_journeys, build_nurture
from leads.events import LeadReturned, QuadrantEntered
from leads.journeys.definition import Journey
from leads.journeys.enrolment import PastEnrolment, should_enrol
from leads.journeys.machine import Done, Exited, LeadView
from leads.journeys.triggers import FormSubmitted, LeadInactive
from tests.leads.journeys.sim import drive

ROOT = Path(__file__).resolve().parents[3]
CN = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 20, 30, tzinfo=CN)  # a Monday evening, half an hour before quiet hours
RAW = tomllib.loads((ROOT / "deploy/journeys.example.toml").read_text(encoding="utf-8"))
JOURNEYS = {j.id: j for j in build_journeys(RAW["journeys"])}
POLICY = build_nurture(RAW["nurture"]).send_policy()
LEAD = LeadView(stage="lead", follows_oa=True, wecom_contact=True)


def run(journey: Journey, lead: LeadView = LEAD, world=None, start: datetime = T0):
    return drive(journey, lead, start, world=world, policy=POLICY)


def at_day(day: float, **changes):
    """The world: from ``day`` days after enrolment on, the lead's facts change."""
    return lambda now, lead: replace(lead, **changes) if now >= T0 + timedelta(days=day) else lead


def test_the_example_file_has_the_four_journeys():
    assert list(JOURNEYS) == ["welcome", "accelerate", "wake_up", "renurture"]


# -- welcome: 22 days ---------------------------------------------------------------------------------------
def test_welcome_series_runs_22_days_and_reminds_on_the_other_channel():
    journey = JOURNEYS["welcome"]
    assert should_enrol(journey, FormSubmitted(1, "demo", T0), [], T0)
    result = run(journey, replace(LEAD, profile={"city": "上海"}))
    assert result.end == Done()
    assert result.kinds() == ["oa_template", "wecom_task", "oa_template", "oa_template", "oa_template", "tag_add"]
    assert result.sent[2][1].param("template") == "content_digest"
    assert result.sent[3][1].param("template") == "event_invite"  # the 上海 branch
    last_send = result.sent[-2][0]
    assert timedelta(days=21) < last_send - T0 < timedelta(days=23)
    assert all(not (21 <= t.astimezone(CN).hour or t.astimezone(CN).hour < 8) for t, _, _ in result.sent)
    assert "welcome_done" in result.lead.tags  # type: ignore[union-attr]


def test_welcome_opened_branch_and_other_city():
    opened = replace(LEAD, behaviour={"opened": (T0 + timedelta(hours=2),)}, profile={"city": "北京"})
    result = run(JOURNEYS["welcome"], opened)
    assert result.kinds()[:2] == ["oa_template", "tag_add"]
    assert result.sent[3][1].param("template") == "case_study"


def test_welcome_exits_when_sales_accepts_the_lead():
    result = run(JOURNEYS["welcome"], world=at_day(5, stage="sal"))
    assert result.end == Exited("stage:sal")
    assert all(t < T0 + timedelta(days=5) for t, _, _ in result.sent)
    assert len(result.sent) == 3


def test_welcome_never_reenters():
    past = [PastEnrolment(T0 - timedelta(days=40), T0 - timedelta(days=18))]
    assert should_enrol(JOURNEYS["welcome"], FormSubmitted(1, "demo", T0), past, T0).reason == "reentry_never"


# -- accelerate: hands to sales on crossing the threshold ------------------------------------------------------
def test_accelerate_hands_to_sales_when_the_score_crosses():
    journey = JOURNEYS["accelerate"]
    assert should_enrol(journey, QuadrantEntered(1, "public_pool", "nurture", "lead", T0), [], T0)
    clicked = replace(LEAD, behaviour={"clicked": (T0 + timedelta(days=1),)})
    result = run(journey, clicked, world=at_day(4, motivation=65.0))
    assert result.kinds() == ["oa_template", "wecom_task", "stage"]
    assert result.sent[-1][1].param("stage") == "mql"
    assert result.end == Exited("stage:mql")


def test_accelerate_without_intent_ends_with_an_sdr_task():
    result = run(JOURNEYS["accelerate"], replace(LEAD, motivation=20.0))
    assert result.kinds() == ["oa_template", "oa_template", "sdr_task"]
    assert result.end == Done()


def test_accelerate_exits_when_sales_accepts():
    assert run(JOURNEYS["accelerate"], world=at_day(1, stage="sal")).end == Exited("stage:mql")


# -- wake-up: 30 days inactive ---------------------------------------------------------------------------------
def test_wake_up_enrols_after_30_days_and_re_enters_after_90():
    journey = JOURNEYS["wake_up"]
    assert not should_enrol(journey, LeadInactive(1, T0 - timedelta(days=29), T0), [], T0)
    assert should_enrol(journey, LeadInactive(1, T0 - timedelta(days=30), T0), [], T0)
    recent = [PastEnrolment(T0 - timedelta(days=100), T0 - timedelta(days=60))]
    assert should_enrol(journey, LeadInactive(1, T0 - timedelta(days=30), T0), recent, T0).reason == "reentry_wait"


def test_wake_up_clicked_notifies_the_owner():
    clicked = replace(LEAD, behaviour={"clicked": (T0 + timedelta(days=2),)})
    late = T0 + timedelta(hours=2)  # the daily sweep ran at 22:30
    result = run(JOURNEYS["wake_up"], clicked, start=late)
    assert result.kinds() == ["oa_template", "tag_add", "notify_owner"]
    assert result.sent[0][0] == datetime(2026, 3, 3, 8, 0, tzinfo=CN)  # not sent into quiet hours
    assert result.end == Done()


def test_wake_up_silent_lead_not_following_goes_to_the_pool():
    result = run(JOURNEYS["wake_up"], replace(LEAD, follows_oa=False))
    assert result.kinds() == ["wecom_task", "tag_add"]
    assert "public_pool" in result.lead.tags  # type: ignore[union-attr]


def test_wake_up_ends_on_a_reply_or_acceptance():
    replied = run(JOURNEYS["wake_up"], world=at_day(1, last_inbound_at=T0 + timedelta(days=1)))
    assert replied.end == Exited("replied") and len(replied.sent) == 1
    assert run(JOURNEYS["wake_up"], world=at_day(2, stage="sal")).end == Exited("stage:sal")


# -- re-nurture: returned by sales, by reason -------------------------------------------------------------
def returned(reason: str) -> LeadView:
    return replace(LEAD, stage="returned", return_reason=reason)


def test_a_lead_returned_by_sales_enters_renurture_once():
    journey = JOURNEYS["renurture"]
    event = LeadReturned(1, 7, 3, "预算不足", "明年再说", T0)
    # The welcome run ended when sales accepted the lead; now sales returns it.
    welcome = run(JOURNEYS["welcome"], world=at_day(5, stage="sal"))
    assert welcome.end == Exited("stage:sal")
    assert should_enrol(journey, event, [], T0)
    assert should_enrol(journey, event, [PastEnrolment(T0 - timedelta(days=1))], T0).reason == "already_enrolled"
    assert not should_enrol(journey, replace(event, reason="重复"), [], T0)  # not a re-nurture reason


@pytest.mark.parametrize(("reason", "lead", "kinds"), [
    ("预算不足", {}, ["tag_add", "oa_template", "wecom_task", "oa_template"]),
    ("非决策人", {}, ["tag_add", "oa_template", "sdr_task", "oa_template"]),
    ("需求不匹配", {}, ["tag_add", "tag_add", "oa_template", "oa_template"]),
    ("联系不上", {}, ["tag_add", "oa_template", "oa_template"]),  # window closed: the template instead
    ("联系不上", {"last_inbound_at": T0 - timedelta(hours=1)}, ["tag_add", "oa_custom", "oa_template"]),
    ("联系不上", {"follows_oa": False}, ["tag_add", "sdr_task"]),
])
def test_renurture_branches_by_return_reason(reason, lead, kinds):
    result = run(JOURNEYS["renurture"], replace(returned(reason), **lead))
    assert result.kinds() == kinds
    assert result.end == Done()


def test_renurture_budget_branch_waits_for_the_next_budget_cycle_and_exits_on_acceptance():
    result = run(JOURNEYS["renurture"], returned("预算不足"))
    assert result.sent[2][0] == datetime(2026, 5, 1, 10, 0, tzinfo=CN)  # day 60 at 10:00
    accepted = run(JOURNEYS["renurture"], returned("预算不足"), world=at_day(59, stage="sal"))
    assert accepted.end == Exited("stage:sal")
    assert accepted.kinds() == ["tag_add", "oa_template"]
