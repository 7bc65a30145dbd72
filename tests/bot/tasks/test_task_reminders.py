"""The job task_reminders (bot/tasks/reminders.py) on both backends: a due task becomes one WeCom app message
to its member, many due together one merged message within WeCom's 2,048 bytes, nothing for tasks not due,
done, already reminded or of disabled members; two runs at once on PostgreSQL remind each task once; and the app
registers the job for one process of the cluster."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.jobs.registry import CLUSTER
from bot.keys import JOBS, SESSIONS
from bot.tasks.message import MAX_BYTES
from bot.tasks.reminders import ReminderSettings, remind_due_tasks
from storage.db import create_engine, session_factory
from storage.models import Lead, LeadTask, OutboxMessage, User, utcnow
from storage.repos.teams import add_team, set_member
from storage.repos.users import add_user
from storage.settings import DatabaseConfig

BASE = "https://leads.example.cn"
SANDBOX = ReminderSettings(BASE, sandbox=True, wecom=True)
NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)  # 14:00 in Beijing


async def member(sessions: async_sessionmaker, name: str, *, role: str = "sdr", wecom: str | None = "auto",
                 team: str | None = None) -> int:
    async with sessions() as session, session.begin():
        user = await add_user(session, username=name, role=role, password_hash="x",
                              wecom_userid=f"wx_{name}" if wecom == "auto" else wecom)
        if team:
            await set_member(session, (await add_team(session, team)).id, user.id)
        return user.id


async def lead(sessions: async_sessionmaker, name: str = "张伟", *, owner: int | None = None,
               company: str = "华东精密制造", phone: str | None = None) -> int:
    async with sessions() as session, session.begin():
        profile: dict[str, Any] = {"company": company}
        if phone:
            profile["phone"] = phone
        row = Lead(display_name=name, profile=profile, owner_user_id=owner)
        session.add(row)
        await session.flush()
        return row.id


async def task(sessions: async_sessionmaker, lead_id: int, title: str, due: datetime | None, *,
               assignee: int | None = None, creator: int | None = None, status: str = "open") -> int:
    async with sessions() as session, session.begin():
        row = LeadTask(lead_id=lead_id, title=title, due_at=due, assignee_user_id=assignee,
                       created_by_user_id=creator, status=status)
        session.add(row)
        await session.flush()
        return row.id


async def outbox(sessions: async_sessionmaker) -> list[OutboxMessage]:
    async with sessions() as session:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def reminded(sessions: async_sessionmaker) -> dict[int, datetime | None]:
    async with sessions() as session:
        return dict((await session.execute(select(LeadTask.id, LeadTask.reminded_at))).all())


async def test_a_due_task_becomes_one_app_message_to_its_member(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    sdr = await member(sessions, "chenjing")
    lead_id = await lead(sessions, owner=None)
    task_id = await task(sessions, lead_id, "电话回访：确认部署方式", NOW - timedelta(minutes=1), assignee=sdr)
    assert await remind_due_tasks(sessions, SANDBOX, now=NOW) == 1
    [row] = await outbox(sessions)
    assert (row.method, row.target, row.status) == ("wecom.app_text", "wecom", "sandboxed")
    assert row.payload["userid"] == "wx_chenjing"
    content = row.payload["content"]
    assert "您有 1 项任务已到期" in content and "电话回访：确认部署方式" in content
    assert "张伟 · 华东精密制造" in content and "12月03日 13:59" in content  # China time
    assert f"{BASE}/console/leads/{lead_id}" in content
    assert (await reminded(sessions))[task_id] == NOW
    # Run again (the job every 30 s, or a retry): nothing more.
    assert await remind_due_tasks(sessions, SANDBOX, now=NOW + timedelta(seconds=30)) == 0
    assert len(await outbox(sessions)) == 1



async def test_the_same_reminder_is_stored_once_even_if_reminded_at_was_lost(engine: AsyncEngine) -> None:
    """The outbox key names the member and the exact task set: a replay of the same claim adds no row."""
    sessions = session_factory(engine)
    sdr = await member(sessions, "chenjing")
    lead_id = await lead(sessions)
    first = await task(sessions, lead_id, "电话回访", NOW - timedelta(minutes=2), assignee=sdr)
    assert await remind_due_tasks(sessions, SANDBOX, now=NOW) == 1
    async with sessions() as session, session.begin():  # as if the marks had never been written
        await session.execute(update(LeadTask).values(reminded_at=None))
    assert await remind_due_tasks(sessions, SANDBOX, now=NOW) == 0
    assert len(await outbox(sessions)) == 1 and (await reminded(sessions))[first] == NOW
    # A different set (a new task falls due) is a new reminder, listing what is unreminded now.
    await task(sessions, lead_id, "发送报价单", NOW - timedelta(minutes=1), assignee=sdr)
    assert await remind_due_tasks(sessions, SANDBOX, now=NOW + timedelta(seconds=30)) == 1
    rows = await outbox(sessions)
    second = rows[-1].payload["content"]
    assert len(rows) == 2 and "发送报价单" in second and "电话回访" not in second


async def test_live_mode_rows_wait_for_the_sender_and_without_wecom_nothing_is_written(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    sdr = await member(sessions, "chenjing")
    await task(sessions, await lead(sessions), "发送报价单", NOW, assignee=sdr)
    assert await remind_due_tasks(sessions, ReminderSettings(BASE, sandbox=False, wecom=False), now=NOW) == 0
    assert await outbox(sessions) == []
    assert await remind_due_tasks(sessions, ReminderSettings(BASE, sandbox=False, wecom=True), now=NOW) == 1
    assert [r.status for r in await outbox(sessions)] == ["pending"]


async def test_fifty_tasks_due_together_are_one_merged_message_within_wecoms_limit(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    sdr = await member(sessions, "chenjing")
    lead_id = await lead(sessions, "欧阳娜娜" * 5, company="上海某某信息技术股份有限公司" * 3)
    ids = [await task(sessions, lead_id, f"第 {i} 项：" + "整理需求并准备方案演示材料" * 10, NOW - timedelta(minutes=i),
                      assignee=sdr) for i in range(50)]
    assert await remind_due_tasks(sessions, SANDBOX, now=NOW) == 1
    [row] = await outbox(sessions)
    content = row.payload["content"]
    assert len(content.encode()) <= MAX_BYTES
    listed = re.findall(r"^\d+\. ", content, flags=re.MULTILINE)
    rest = int(re.search(r"另有 (\d+) 项到期任务", content)[1])
    assert "您有 50 项任务已到期" in content and len(listed) + rest == 50 and len(listed) >= 3
    assert "第 49 项" in content  # the oldest due first
    assert f"{BASE}/console/tasks" in content
    assert all(at == NOW for at in (await reminded(sessions)).values()) and len(ids) == 50


async def test_not_due_done_disabled_unreachable_and_erased_get_nothing(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    sdr = await member(sessions, "chenjing")
    gone = await member(sessions, "leaver")
    no_wecom = await member(sessions, "newbie", wecom=None)
    lead_id = await lead(sessions)
    later = await task(sessions, lead_id, "下周再联系", NOW + timedelta(minutes=1), assignee=sdr)
    undated = await task(sessions, lead_id, "随时", None, assignee=sdr)
    done = await task(sessions, lead_id, "已经打过了", NOW - timedelta(hours=1), assignee=sdr, status="done")
    disabled = await task(sessions, lead_id, "离职人员的任务", NOW - timedelta(hours=1), assignee=gone)
    unreachable = await task(sessions, lead_id, "没有企业微信", NOW - timedelta(hours=1), assignee=no_wecom)
    nobody = await task(sessions, lead_id, "服务令牌创建", NOW - timedelta(hours=1))
    async with sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == gone).values(disabled_at=NOW))
    erased_lead = await lead(sessions, "")
    erased = await task(sessions, erased_lead, "", NOW - timedelta(hours=1), assignee=sdr)
    async with sessions() as session, session.begin():
        await session.execute(update(Lead).where(Lead.id == erased_lead).values(erased_at=NOW))
    assert await remind_due_tasks(sessions, SANDBOX, now=NOW) == 0
    assert await outbox(sessions) == []
    marks = await reminded(sessions)
    assert [marks[t] for t in (later, undated, done, disabled, unreachable, nobody)] == [None] * 6
    assert marks[erased] == NOW  # claimed and settled: an erased lead's task is never listed
    # The member gets a WeCom userid later: the overdue task is reminded then.
    async with sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == no_wecom).values(wecom_userid="wx_newbie"))
    assert await remind_due_tasks(sessions, SANDBOX, now=NOW) == 1
    assert [r.payload["userid"] for r in await outbox(sessions)] == ["wx_newbie"]


async def test_unassigned_tasks_go_to_their_creator_and_each_member_gets_their_own(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    sdr = await member(sessions, "chenjing")
    sales = await member(sessions, "wanglei", role="sales")
    lead_id = await lead(sessions)
    await task(sessions, lead_id, "自己的待办", NOW, creator=sdr)
    await task(sessions, lead_id, "给销售的任务", NOW, assignee=sales, creator=sdr)
    assert await remind_due_tasks(sessions, SANDBOX, now=NOW) == 2
    by_user = {r.payload["userid"]: r.payload["content"] for r in await outbox(sessions)}
    assert "自己的待办" in by_user["wx_chenjing"] and "给销售的任务" not in by_user["wx_chenjing"]
    assert "给销售的任务" in by_user["wx_wanglei"]


async def test_a_member_sees_only_the_leads_they_may_read_and_never_phone_numbers(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    sales = await member(sessions, "wanglei", role="sales")
    other = await member(sessions, "zhaomin", role="sales")
    own = await lead(sessions, "李娜", owner=sales, company="苏州光电")
    foreign = await lead(sessions, "王芳", owner=other, company="杭州云科", phone="13812345678")
    await task(sessions, own, "回电 13912345678 确认预算", NOW, assignee=sales)
    await task(sessions, foreign, "协助同事跟进", NOW, assignee=sales)
    assert await remind_due_tasks(sessions, SANDBOX, now=NOW) == 1
    content = (await outbox(sessions))[0].payload["content"]
    assert "李娜 · 苏州光电" in content and "139****5678" in content and "13912345678" not in content
    assert "王芳" not in content and "杭州云科" not in content and f"潜客：潜客 #{foreign}" in content
    assert "13812345678" not in content


async def _run_on_own_engine(url: str, limit: int) -> int:
    engine = create_engine(DatabaseConfig(url=url))
    try:
        return await remind_due_tasks(session_factory(engine), SANDBOX, now=NOW, limit=limit)
    finally:
        await engine.dispose()


async def test_concurrent_runs_on_postgres_remind_each_task_once(engine: AsyncEngine, backend: Any) -> None:
    if not backend.is_production:
        pytest.skip("PostgreSQL: SQLite has one writer at a time")
    sessions = session_factory(engine)
    people = [await member(sessions, f"sdr{i}") for i in range(8)]
    lead_id = await lead(sessions)
    async with sessions() as session, session.begin():
        session.add_all([LeadTask(lead_id=lead_id, title=f"任务 {i}", due_at=NOW - timedelta(seconds=i),
                                  assignee_user_id=people[i % 8], status="open") for i in range(240)])
    # Runs of different sizes at once (separate connection pools): their claims differ, so without the row
    # locks the same task would land in two different messages.
    await asyncio.gather(*(_run_on_own_engine(backend.database_url, limit) for limit in (500, 7, 31, 500, 90)))
    await remind_due_tasks(sessions, SANDBOX, now=NOW)  # whatever was skipped while locked
    rows = await outbox(sessions)
    counted = sum(int(re.search(r"您有 (\d+) 项任务", r.payload["content"])[1]) for r in rows)
    assert counted == 240  # every task in exactly one message
    assert all(at is not None for at in (await reminded(sessions)).values())
    assert len({r.idempotency_key for r in rows}) == len(rows)


async def test_the_app_registers_the_cluster_job_and_it_reminds_in_sandbox_mode(app_client) -> None:
    client = await app_client(server={"public_url": BASE})
    app = client.server.app
    [job] = [j for j in app[JOBS] if j.name == "task_reminders"]
    assert (job.scope, job.every_s) == (CLUSTER, 30.0)
    sessions = app[SESSIONS]
    sdr = await member(sessions, "chenjing")
    lead_id = await lead(sessions)
    await task(sessions, lead_id, "电话回访", utcnow() - timedelta(seconds=1), assignee=sdr)
    await job.run()
    [row] = await outbox(sessions)
    assert row.status == "sandboxed" and f"{BASE}/console/leads/{lead_id}" in row.payload["content"]
