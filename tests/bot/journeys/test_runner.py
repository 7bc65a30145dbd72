"""The journey executor on the real database, on a controllable clock: enrolment from the domain events, due steps
run in batches, messages queued in the outbox once, the send rules recorded, exits when sales accepts."""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.journeys.inactive import sweep_inactive
from bot.journeys.runner import JourneyRunner
from bot.journeys.wiring import runner_of
from bot.keys import CONFIG, ENGINE, EVENTS, SESSIONS
from leads.events import FormSubmitted, LeadReturned, QuadrantEntered
from leads.identity import OA_OPENID, WECOM_EXTERNAL
from storage.models import (
    Assignment,
    Batch,
    BatchRecipient,
    Identity,
    JourneyEnrolment,
    JourneyStep,
    Lead,
    LeadTag,
    LeadTask,
    OutboxMessage,
    Segment,
    Touchpoint,
)
from storage.repos.events import EventTx
from storage.repos.users import add_user

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = tomllib.loads((ROOT / "deploy/journeys.example.toml").read_text(encoding="utf-8"))
CN = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 2, 10, 30, tzinfo=CN)  # a Wednesday morning
NO_JOBS = {"enabled": ["inbox_sweep"]}  # the test moves the clock and runs the steps itself


def journey(id_: str, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": id_, "name": f"测试旅程 {id_}", "trigger": {"kind": "form_submitted"}, "steps": steps,
            "reentry": "never", **extra}


@pytest.fixture
async def client(app_client):
    return await app_client(journeys=EXAMPLE["journeys"], nurture=EXAMPLE["nurture"], jobs=NO_JOBS)


async def make_lead(app, *, openid: str | None = "o_j1", euid: str | None = None, owner: str | None = None,
                    last_oa: datetime | None = None, **profile: Any) -> int:
    async with app[SESSIONS]() as s, s.begin():
        lead = Lead(display_name="王芳", stage="lead", consent="granted", created_at=T0, last_activity_at=T0,
                    profile={"oa_following": bool(openid), **({"wecom_owner": owner} if owner else {}), **profile},
                    oa_last_interaction_at=last_oa)
        s.add(lead)
        await s.flush()
        if openid:
            s.add(Identity(lead_id=lead.id, kind=OA_OPENID, app="", value=openid, created_at=T0))
        if euid:
            s.add(Identity(lead_id=lead.id, kind=WECOM_EXTERNAL, app="", value=euid, created_at=T0))
        return lead.id


async def publish(app, *events: Any) -> None:
    async with app[SESSIONS]() as s, s.begin():
        await EventTx(s, app[EVENTS]).publish(events)


async def steps_of(app, lead_id: int) -> list[tuple[str, str, str, str]]:
    async with app[ENGINE].connect() as c:
        rows = await c.execute(select(JourneyStep.journey_id, JourneyStep.kind, JourneyStep.outcome, JourneyStep.reason)
                               .where(JourneyStep.lead_id == lead_id).order_by(JourneyStep.id))
        return [tuple(r) for r in rows]


async def outbox_of(app, lead_id: int) -> list[tuple[str, str, dict]]:
    async with app[ENGINE].connect() as c:
        rows = await c.execute(select(OutboxMessage.method, OutboxMessage.idempotency_key, OutboxMessage.payload)
                               .where(OutboxMessage.lead_id == lead_id).order_by(OutboxMessage.id))
        return [tuple(r) for r in rows]


async def run_at(app, at: datetime, runner: JourneyRunner | None = None) -> int:
    return await (runner or runner_of(app)).run_batch(at.astimezone(CN))


async def test_welcome_series_enrols_on_a_form_sends_branches_and_exits_when_sales_accepts(client):
    app = client.server.app
    lead_id = await make_lead(app)
    await publish(app, FormSubmitted(lead_id, "demo", T0))
    assert await run_at(app, T0) == 1
    sent = await outbox_of(app, lead_id)
    assert [(m, p["openid"], p["template_id"]) for m, _, p in sent] == [("oa.template", "o_j1", "welcome")]
    assert sent[0][1].startswith("journey:") and sent[0][2]["marketing"] is True
    assert await run_at(app, T0 + timedelta(hours=20)) == 0  # the wait is till tomorrow 10:00

    # Opened the white paper in the evening: the yes branch tags the lead.
    async with app[SESSIONS]() as s, s.begin():
        s.add(Touchpoint(lead_id=lead_id, kind="content_view", scene="content", channel="wechat_oa",
                         occurred_at=T0 + timedelta(hours=9), detail={}))
    due = datetime(2026, 12, 3, 10, 0, tzinfo=CN)
    assert await run_at(app, due) == 1
    async with app[ENGINE].connect() as c:
        assert (await c.execute(select(LeadTag.tag).where(LeadTag.lead_id == lead_id))).scalars().all() == ["engaged"]

    # Sales accepts: the next due step ends the journey instead of sending.
    async with app[SESSIONS]() as s, s.begin():
        await s.execute(update(Lead).where(Lead.id == lead_id).values(stage="sal"))
    assert await run_at(app, datetime(2026, 12, 6, 10, 0, tzinfo=CN)) == 1
    assert await steps_of(app, lead_id) == [
        ("welcome", "enrol", "entered", "form:demo"),
        ("welcome", "action", "sent", "ok"),
        ("welcome", "wait", "waiting", datetime(2026, 12, 3, 10, 0, tzinfo=CN).isoformat()),
        ("welcome", "action", "done", "ok"),
        ("welcome", "wait", "waiting", datetime(2026, 12, 6, 10, 0, tzinfo=CN).isoformat()),
        ("welcome", "exit", "exited", "stage:sal"),
    ]
    assert len(await outbox_of(app, lead_id)) == 1
    async with app[ENGINE].connect() as c:
        status, reason = (await c.execute(select(JourneyEnrolment.status, JourneyEnrolment.reason))).one()
    assert (status, reason) == ("exited", "stage:sal")
    # The same form again: "reentry = never" keeps the welcome to once.
    await publish(app, FormSubmitted(lead_id, "demo", T0 + timedelta(days=5)))
    async with app[ENGINE].connect() as c:
        assert len((await c.execute(select(JourneyEnrolment.id))).all()) == 1


async def test_not_opened_goes_to_wecom_and_without_a_contact_is_skipped_with_the_reason(client):
    app = client.server.app
    lead_id = await make_lead(app)
    await publish(app, FormSubmitted(lead_id, "demo", T0))
    await run_at(app, T0)
    await run_at(app, datetime(2026, 12, 3, 10, 0, tzinfo=CN))
    assert ("welcome", "action", "skipped", "no_wecom_relationship") in await steps_of(app, lead_id)


async def test_the_wecom_task_goes_through_the_member_who_has_the_contact(client):
    app = client.server.app
    lead_id = await make_lead(app, euid="wm_j2", owner="zhang.wei")
    await publish(app, FormSubmitted(lead_id, "demo", T0))
    await run_at(app, T0)
    await run_at(app, datetime(2026, 12, 3, 10, 0, tzinfo=CN))
    methods = [(m, p.get("sender"), p.get("external_userid")) for m, _, p in await outbox_of(app, lead_id)]
    assert methods == [("oa.template", None, None), ("wecom.add_msg_template", "zhang.wei", "wm_j2")]


async def test_a_step_due_in_quiet_hours_waits_for_the_morning_and_says_so(client):
    app = client.server.app
    lead_id = await make_lead(app)
    night = datetime(2026, 12, 2, 22, 15, tzinfo=CN)
    await publish(app, FormSubmitted(lead_id, "demo", night))
    assert await run_at(app, night) == 1
    assert await outbox_of(app, lead_id) == []
    assert await run_at(app, datetime(2026, 12, 3, 7, 59, tzinfo=CN)) == 0
    assert await run_at(app, datetime(2026, 12, 3, 8, 0, tzinfo=CN)) == 1
    steps = await steps_of(app, lead_id)
    assert steps[1] == ("welcome", "action", "deferred", "quiet_hours")
    assert steps[2] == ("welcome", "action", "sent", "ok")
    assert len(await outbox_of(app, lead_id)) == 1


async def test_consent_revoked_after_enrolment_stops_the_send(client):
    app = client.server.app
    lead_id = await make_lead(app)
    await publish(app, FormSubmitted(lead_id, "demo", T0))
    async with app[SESSIONS]() as s, s.begin():
        await s.execute(update(Lead).where(Lead.id == lead_id).values(consent="revoked"))
    await run_at(app, T0)
    assert await outbox_of(app, lead_id) == []
    assert (await steps_of(app, lead_id))[-1] == ("welcome", "exit", "exited", "unsubscribed")


async def test_weekly_cap_and_the_48_hour_window_are_recorded(app_client):
    steps = [{"action": "oa_template", "template": "a", "text": "一"},
             {"action": "oa_template", "template": "b", "text": "二"},
             {"action": "oa_custom", "text": "三", "template": "c"},
             {"action": "oa_custom", "text": "四"}]
    client = await app_client(journeys=[journey("caps", steps)], jobs=NO_JOBS,
                              nurture={"weekly_cap": {"oa": 2}, "quiet_hours": ""})
    app = client.server.app
    stale = await make_lead(app, openid="o_stale", last_oa=T0 - timedelta(days=3))
    await publish(app, FormSubmitted(stale, "demo", T0))
    await run_at(app, T0)
    assert [s[2:] for s in await steps_of(app, stale)][1:5] == [
        ("sent", "ok"), ("sent", "ok"), ("skipped", "weekly_cap:oa"), ("skipped", "oa_window_closed")]

    fresh = await make_lead(app, openid="o_fresh", last_oa=T0 - timedelta(days=3))
    client2 = await app_client(journeys=[journey("window", steps[2:])], jobs=NO_JOBS, nurture={"quiet_hours": ""})
    app2 = client2.server.app
    await publish(app2, FormSubmitted(fresh, "demo", T0))
    await run_at(app2, T0)
    assert [s[2:] for s in await steps_of(app2, fresh)][1:3] == [("sent", "oa_window_template"),
                                                                 ("skipped", "oa_window_closed")]
    assert [(m, p.get("template_id")) for m, _, p in await outbox_of(app2, fresh)] == [("oa.template", "c")]


async def test_a_returned_lead_enters_renurture_by_its_reason(client):
    app = client.server.app
    lead_id = await make_lead(app)
    async with app[SESSIONS]() as s, s.begin():  # what sales' 退回 left behind (the hand-off's own tests make it)
        user = await add_user(s, username="li", role="sales", password_hash="x")
        returned = Assignment(lead_id=lead_id, user_id=user.id, rule="manual", reason="", status="returned",
                              assigned_at=T0 - timedelta(days=1), decided_at=T0, return_reason="非决策人")
        s.add(returned)
        await s.flush()
        ids = (returned.id, user.id)
    await publish(app, LeadReturned(lead_id, *ids, "非决策人", "", T0))
    await run_at(app, T0)
    steps = await steps_of(app, lead_id)
    assert steps[0] == ("renurture", "enrol", "entered", "returned:非决策人")
    async with app[ENGINE].connect() as c:
        tasks = (await c.execute(select(LeadTask.title, LeadTask.due_at).where(LeadTask.lead_id == lead_id))).all()
        tags = (await c.execute(select(LeadTag.tag).where(LeadTag.lead_id == lead_id))).scalars().all()
    assert tags == ["renurture"]
    assert [t for t, _ in tasks] == ["销售反馈非决策人：请确认决策人及其联系方式。"]
    assert tasks[0][1] == T0 + timedelta(days=3)
    assert [(m, p["template_id"]) for m, _, p in await outbox_of(app, lead_id)] == [("oa.template", "decision_pack")]


async def test_the_quadrant_action_journey_id_enrols(app_client):
    client = await app_client(journeys=[journey("qa", [{"action": "tag_add", "tag": "qa"}])], jobs=NO_JOBS,
                              scoring={"actions": {"nurture": ["journey:qa"]}})
    app = client.server.app
    lead_id = await make_lead(app)
    await publish(app, QuadrantEntered(lead_id, None, "nurture", "lead", T0))
    await run_at(app, T0)
    assert [s[1:3] for s in await steps_of(app, lead_id)] == [("enrol", "entered"), ("action", "done"),
                                                              ("done", "completed")]


async def test_an_edited_journey_ends_old_enrolments_instead_of_guessing(app_client, backend):
    first = await app_client(journeys=[journey("edit", [{"wait": "1d"}, {"action": "tag_add", "tag": "x"}])],
                             jobs=NO_JOBS)
    app = first.server.app
    lead_id = await make_lead(app)
    await publish(app, FormSubmitted(lead_id, "demo", T0))
    await run_at(app, T0)
    second = await app_client(journeys=[journey("edit", [{"wait": "2d"}, {"action": "tag_add", "tag": "x"}])],
                              jobs=NO_JOBS)
    await run_at(second.server.app, T0 + timedelta(days=2))
    assert (await steps_of(app, lead_id))[-1] == ("edit", "exit", "exited", "journey_changed")


class FailingFor(JourneyRunner):
    """A runner whose writes fail for one lead (a broken action): the others must not wait for it."""

    bad_lead: int = 0

    async def _apply(self, session, claimed, now):  # noqa: ANN001, ANN202
        if any(c.enrolled.lead_id == self.bad_lead for c in claimed):
            raise RuntimeError("the action failed")
        await super()._apply(session, claimed, now)


async def test_a_failing_step_is_retried_with_backoff_then_recorded_and_never_blocks_the_others(client):
    app = client.server.app
    good = [await make_lead(app, openid=f"o_ok{i}") for i in range(3)]
    bad = await make_lead(app, openid="o_bad")
    await publish(app, *(FormSubmitted(i, "demo", T0) for i in [*good, bad]))
    base = runner_of(app)
    runner = FailingFor(app[SESSIONS], app[EVENTS], base.journeys, base.policy, sandbox=True, base_url="")
    runner.bad_lead = bad
    assert await run_at(app, T0, runner) == 3
    for lead_id in good:
        assert len(await outbox_of(app, lead_id)) == 1
    at = T0
    for attempt in range(1, 5):
        async with app[ENGINE].connect() as c:
            attempts, due, error = (await c.execute(select(
                JourneyEnrolment.attempts, JourneyEnrolment.due_at, JourneyEnrolment.last_error)
                .where(JourneyEnrolment.lead_id == bad))).one()
        assert attempts == attempt and error == "RuntimeError: the action failed"
        assert due == at + timedelta(seconds=30 * 2 ** (attempt - 1))
        assert await run_at(app, due - timedelta(seconds=1), runner) == 0  # not before its backoff
        at = due
        await run_at(app, at, runner)
    assert (await steps_of(app, bad))[-1] == ("welcome", "exit", "failed", "failed:RuntimeError")
    assert await outbox_of(app, bad) == []


async def test_acceleration_hands_the_lead_to_sales_when_it_crosses_the_threshold(client):
    app = client.server.app
    lead_id = await make_lead(app, euid="wm_acc", owner="li.na")
    await publish(app, QuadrantEntered(lead_id, None, "nurture", "lead", T0))
    await run_at(app, T0)
    async with app[SESSIONS]() as s, s.begin():  # clicked the comparison, and the score went up
        s.add(Touchpoint(lead_id=lead_id, kind="content_view", scene="content", channel="wechat_oa",
                         occurred_at=T0 + timedelta(hours=3), detail={}))
    await run_at(app, datetime(2026, 12, 4, 10, 0, tzinfo=CN))
    async with app[SESSIONS]() as s, s.begin():
        await s.execute(update(Lead).where(Lead.id == lead_id).values(motivation=72.0))
    await run_at(app, datetime(2026, 12, 7, 10, 0, tzinfo=CN))
    async with app[ENGINE].connect() as c:
        stage = (await c.execute(select(Lead.stage).where(Lead.id == lead_id))).scalar_one()
    assert stage == "mql"  # the journey's stage action, heard by routing like any other MQL
    assert [m for m, _, _ in await outbox_of(app, lead_id)][:2] == ["oa.template", "wecom.add_msg_template"]
    assert [s[1:3] for s in await steps_of(app, lead_id)][-2:] == [("action", "done"), ("exit", "exited")]
    assert (await steps_of(app, lead_id))[-1][3] == "stage:mql"


async def test_a_dormant_lead_is_woken_and_its_owner_told_when_it_clicks(client):
    app = client.server.app
    async with app[SESSIONS]() as s, s.begin():
        owner = await add_user(s, username="zhao", role="sales", password_hash="x")
        owner.wecom_userid = "zhao.wx"
        owner_id = owner.id
    lead_id = await make_lead(app)
    asleep_since = T0 - timedelta(days=40)
    async with app[SESSIONS]() as s, s.begin():
        await s.execute(update(Lead).where(Lead.id == lead_id).values(last_activity_at=asleep_since,
                                                                      owner_user_id=owner_id))
    assert await sweep_inactive(app[SESSIONS], app[EVENTS], app[CONFIG].journeys, T0) == 1
    assert await sweep_inactive(app[SESSIONS], app[EVENTS], app[CONFIG].journeys, T0) == 0  # tried already
    await run_at(app, T0)
    async with app[SESSIONS]() as s, s.begin():
        s.add(Touchpoint(lead_id=lead_id, kind="oa_view", scene="menu", channel="wechat_oa",
                         occurred_at=T0 + timedelta(days=1), detail={}))
    await run_at(app, datetime(2026, 12, 5, 10, 0, tzinfo=CN))
    sent = await outbox_of(app, lead_id)
    assert [(m, p.get("template_id") or p.get("userid")) for m, _, p in sent] == [
        ("oa.template", "reactivation"), ("wecom.app_text", "zhao.wx")]
    assert "沉睡线索重新活跃" in sent[1][2]["content"] and f"/console/leads/{lead_id}" in sent[1][2]["content"]
    assert (await steps_of(app, lead_id))[0][3] == "inactive:40d"


async def test_a_batch_message_this_week_counts_against_the_journeys_weekly_cap(app_client):
    client = await app_client(journeys=[journey("capped", [{"action": "oa_template", "template": "a", "text": "一"}])],
                              jobs=NO_JOBS, nurture={"weekly_cap": {"oa": 1}, "quiet_hours": ""})
    app = client.server.app
    lead_id = await make_lead(app)
    async with app[SESSIONS]() as s, s.begin():  # an SDR's batch reached the lead on the OA yesterday
        user = await add_user(s, username="sdr_b", role="sdr", password_hash="x")
        segment = Segment(name="华东", query={}, created_by_user_id=user.id, created_at=T0)
        s.add(segment)
        await s.flush()
        batch = Batch(segment_id=segment.id, created_by_user_id=user.id, message={"text": "群发"}, created_at=T0)
        s.add(batch)
        await s.flush()
        s.add(BatchRecipient(batch_id=batch.id, lead_id=lead_id, channel="oa", status="oa",
                             created_at=T0 - timedelta(days=1), updated_at=T0))
    await publish(app, FormSubmitted(lead_id, "demo", T0))
    await run_at(app, T0)
    assert (await steps_of(app, lead_id))[1][2:] == ("skipped", "weekly_cap:oa")
    assert await outbox_of(app, lead_id) == []


async def test_two_journeys_moving_one_lead_in_one_batch_move_it_once(app_client):
    to_mql = [{"action": "stage", "stage": "mql"}]
    client = await app_client(journeys=[journey("one", to_mql), journey("two", to_mql)], jobs=NO_JOBS)
    app = client.server.app
    lead_id = await make_lead(app)
    await publish(app, FormSubmitted(lead_id, "demo", T0))
    assert await run_at(app, T0) == 2
    outcomes = {s[0]: s[2:] for s in await steps_of(app, lead_id) if s[1] == "action"}
    assert sorted(outcomes.values()) == [("done", "ok"), ("skipped", "stage_unchanged")]
    async with app[ENGINE].connect() as c:
        assert (await c.execute(select(Lead.stage).where(Lead.id == lead_id))).scalar_one() == "mql"
