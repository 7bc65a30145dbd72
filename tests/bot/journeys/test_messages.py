"""What a journey step writes: personalised texts, and the outbox row of each action for the lead's channel."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.journeys.messages import effect_of, personalise, step_key
from leads.journeys.definition import Action, Journey, Trigger
from leads.journeys.machine import LeadView
from leads.journeys.plan import Record
from storage.repos.journey_facts import LeadFacts

NOW = datetime(2026, 12, 2, 2, 30, tzinfo=UTC)
JOURNEY = Journey("j", "测试旅程", Trigger("tag_added", "vip"), ())


def facts(name: str = "", company: str = "", **kw) -> LeadFacts:
    view = LeadView(stage="lead", profile={"company": company} if company else {})
    return LeadFacts(view, name, kw.get("openid"), kw.get("euid"), kw.get("sender"), kw.get("owner"),
                     kw.get("owner_wecom"))


def effect(action: Action, f: LeadFacts):  # noqa: ANN201
    record = Record(3, "1", "action", "sent", "ok", action, "oa", action.kind)
    return effect_of(record, JOURNEY, 9, 42, f, base_url="https://lr.example", now=NOW, tz=ZoneInfo("Asia/Shanghai"))


def test_fields_become_the_leads_own_or_read_naturally_without_them():
    assert personalise("{name}您好，{company}的方案", facts("王芳", "星云科技")) == "王芳您好，星云科技的方案"
    assert personalise("{name}您好，{company}的方案", facts()) == "客户您好，贵公司的方案"


def test_each_action_writes_the_row_its_channel_needs_under_the_steps_key():
    oa = effect(Action("oa_template", (("template", "t1"), ("text", "{name}好"), ("url", "https://x.cn/a"))),
                facts("王芳", openid="o1")).message
    assert (oa["method"], oa["payload"]["openid"], oa["payload"]["url"], oa["idempotency_key"]) == (
        "oa.template", "o1", "https://x.cn/a", step_key(9, 3))
    task = effect(Action("wecom_task", (("text", "您好"),)), facts(euid="wm1", sender="li")).message
    assert (task["method"], task["payload"]["sender"], task["payload"]["external_userid"]) == (
        "wecom.add_msg_template", "li", "wm1")
    assert effect(Action("notify_owner", (("text", "跟进"),)), facts()).skipped == "no_owner_wecom"
    note = effect(Action("notify_owner", (("text", "跟进"),)), facts("王芳", owner_wecom="zhao")).message
    assert note["payload"]["userid"] == "zhao" and "https://lr.example/console/leads/42" in note["payload"]["content"]
    sdr = effect(Action("sdr_task", (("due", "3d"), ("text", "回访"))), facts(owner=5)).task
    assert (sdr["title"], sdr["assignee_user_id"], sdr["due_at"]) == ("回访", 5, datetime(2026, 12, 5, 2, 30,
                                                                                      tzinfo=UTC))
