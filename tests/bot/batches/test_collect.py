"""Collecting a batch's WeCom results on the schedule, against the fake WeCom (live mode): one member's API error
does not stop the others, results come by the job, reminders stay within 3 per 24 hours and then one SDR task
takes over, a customer over WeCom's receive limit is reported so, and is excluded from the next batch."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.batches.collect import collect
from bot.batches.job import JOB_NAME, run_batches
from bot.jobs.builtin import builtin_jobs
from bot.jobs.registry import CLUSTER
from bot.keys import CONFIG, CONVERSATION, ENQUEUE, SERVICES, SESSIONS
from storage.models import BatchRecipient, BatchTask, LeadTask, OutboxMessage, utcnow
from tests.bot.batches.seed import lead, member
from tests.sdr_console.console_support import bearer, call, user_with_token
from tests.support.calls import AUTH
from tests.support.fakes.wechat_groupmsg import confirm, fail_member, groupmsgs_of
from tests.support.fakes.wechat_state import FakeWeChatState
from tests.support.forms import fake_state

REMIND = "/cgi-bin/externalcontact/remind_groupmsg_send"


@pytest.fixture
def wechat_state() -> FakeWeChatState:
    state = fake_state()
    for userid in ("alice_wx", "bob_wx", "carol_wx"):
        state.register_employee(userid)
    return state


async def live_app(app_client, fake):  # noqa: ANN001, ANN201
    # No scheduled jobs: the test drives the job's passes with its own clock.
    return await app_client(api_base_url=fake.base_url, jobs={"enabled": []}, batch={"customer_limit_period": "day"})


async def seed(client, state: FakeWeChatState) -> dict[str, list[int]]:
    async with client.server.app[SESSIONS]() as session, session.begin():
        for name in ("alice", "bob", "carol"):
            await member(session, name, f"{name}_wx")
        leads = {name: [await lead(session, f"{name}客户{i}", wecom=f"wm-{name}-{i}", follow=f"{name}_wx",
                                   state=state) for i in range(n)]
                 for name, n in (("alice", 3), ("bob", 2), ("carol", 2))}
    return leads


async def send(client, headers: dict[str, str] = AUTH, text: str = "新品发布，欢迎了解") -> tuple[int, dict]:
    """A segment of every lead and a batch to it: (segment id, the batch as answered)."""
    status, segment = await call(client, "POST", "/api/segments", headers, json={"name": "全部", "query": ""})
    assert status == 201
    status, body = await call(client, "POST", "/api/batches", headers, json={"segment_id": segment["id"], "text": text})
    assert status == 202, body
    return segment["id"], body


async def calls_made(client, batch_id: int, timeout_s: float = 10.0) -> None:
    """Until the app's outbox sender has made (or given up) every task's call."""
    started = time.monotonic()
    while True:
        async with client.server.app[SESSIONS]() as session:
            ids = list((await session.execute(select(BatchTask.outbox_id).where(BatchTask.batch_id == batch_id)))
                       .scalars())
            statuses = list((await session.execute(select(OutboxMessage.status)
                                                   .where(OutboxMessage.id.in_(ids)))).scalars())
        if statuses and "pending" not in statuses:
            return
        assert time.monotonic() - started < timeout_s, statuses
        await asyncio.sleep(0.05)


async def outcomes(client, batch_id: int) -> dict[int, str]:
    status, view = await call(client, "GET", f"/api/batches/{batch_id}?limit=500", AUTH)
    assert status == 200
    return {r["lead_id"]: r["code"] for r in view["recipients"]}


async def tasks(client, batch_id: int) -> dict[str, BatchTask]:
    async with client.server.app[SESSIONS]() as session:
        rows = (await session.execute(select(BatchTask).where(BatchTask.batch_id == batch_id))).scalars()
        return {t.member_userid: t for t in rows}


async def test_one_members_error_does_not_stop_the_others_and_results_come_by_the_job(app_client, fake) -> None:
    client = await live_app(app_client, fake)
    app = client.server.app
    (job,) = [j for j in builtin_jobs(app) if j.name == JOB_NAME]
    assert job.scope == CLUSTER  # registered, one process of the cluster runs it
    leads = await seed(client, fake.state)
    fail_member(fake.state, "carol_wx", 81013)  # WeCom refuses carol's task
    groupmsgs_of(fake.state).received["wm-alice-2"] = [time.time()]  # already had today's mass message elsewhere
    segment_id, batch = await send(client)
    await calls_made(client, batch["id"])

    now = utcnow()
    run = await run_batches(app[SESSIONS], app[SERVICES].wecom_api, app[CONFIG], app[CONVERSATION].links,
                            app[ENQUEUE], now=now)
    assert run == (0, 3)
    by_member = await tasks(client, batch["id"])
    assert (by_member["carol_wx"].status, by_member["carol_wx"].errcode) == ("failed", 81013)
    assert by_member["alice_wx"].status == by_member["bob_wx"].status == "waiting"
    assert by_member["alice_wx"].msgid and by_member["bob_wx"].msgid
    assert {outcome for lead_id, outcome in (await outcomes(client, batch["id"])).items()
            if lead_id in leads["carol"]} == {"failed"}

    assert confirm(fake.state, "alice_wx", skip=("wm-alice-1",)) == 1  # alice sends, leaving one customer out
    await run_batches(app[SESSIONS], app[SERVICES].wecom_api, app[CONFIG], app[CONVERSATION].links, app[ENQUEUE],
                      now=now + timedelta(minutes=10))
    got = await outcomes(client, batch["id"])
    assert [got[i] for i in leads["alice"]] == ["sent", "unsent", "over_limit"]
    assert [got[i] for i in leads["bob"]] == ["waiting", "waiting"]
    assert (await tasks(client, batch["id"]))["alice_wx"].status == "done"

    status, timeline = await call(client, "GET", f"/api/leads/{leads['alice'][2]}/timeline", AUTH)
    assert "发送失败：客户已达群发接收上限" in [i["status"] for i in timeline["items"]]

    # The next batch the same day: alice's customer who got it is over the day's limit, the others are not.
    status, preview = await call(client, "POST", "/api/batches/preview", AUTH,
                                 json={"segment_id": segment_id, "text": "第二条"})
    limited = {e["reason"]: [s["lead_id"] for s in e["sample"]] for e in preview["exclusions"]}
    assert leads["alice"][0] in limited["receive_limit"] and leads["alice"][1] not in limited["receive_limit"]


async def test_reminders_stay_within_three_a_day_then_one_sdr_task(app_client, fake) -> None:
    client = await live_app(app_client, fake)
    app = client.server.app
    leads = await seed(client, fake.state)
    sdr, token = await user_with_token(client, "sdr1", "sdr")
    _, batch = await send(client, bearer(token))
    await calls_made(client, batch["id"])
    start = utcnow()
    api, max_per_day = app[SERVICES].wecom_api, app[CONFIG].batch.remind_max_per_day
    for minutes in range(0, 30 * 60, 10):  # a pass every 10 minutes for 30 hours (the fake counts in real time)
        await collect(app[SESSIONS], api, now=start + timedelta(minutes=minutes), max_per_day=max_per_day)
    assert len(fake.state.requests_to(REMIND)) == 3 * 3  # 3 per member task: the fake would refuse a 4th
    assert sorted(groupmsgs_of(fake.state).reminders) == sorted(t.msgid for t in (await tasks(client, batch["id"]))
                                                                .values())
    assert all(len(times) == 3 for times in groupmsgs_of(fake.state).reminders.values())
    async with app[SESSIONS]() as session:
        fallbacks = list((await session.execute(select(LeadTask).order_by(LeadTask.id))).scalars())
        statuses = set((await session.execute(select(BatchRecipient.status).where(
            BatchRecipient.batch_id == batch["id"]))).scalars())
    # One SDR task per unconfirmed member task, on its first lead, for the batch's creator.
    assert sorted(t.lead_id for t in fallbacks) == sorted([leads["alice"][0], leads["bob"][0], leads["carol"][0]])
    assert {t.assignee_user_id for t in fallbacks} == {sdr}
    assert "3 位客户" in next(t.title for t in fallbacks if t.lead_id == leads["alice"][0])
    assert statuses == {"waiting"}
    # Confirmed late: the results still come in, the SDR task stays for the person to close.
    confirm(fake.state, "bob_wx")
    await collect(app[SESSIONS], api, now=start + timedelta(hours=31), max_per_day=max_per_day)
    got = await outcomes(client, batch["id"])
    assert [got[i] for i in leads["bob"]] == ["sent", "sent"]
