"""GET /console/: per-role widgets — today's new leads, MQLs waiting, open hand-offs, my tasks, leads by stage —
each scoped by the rule table and linking to its list."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.keys import ENGINE, SESSIONS
from storage.models import Lead, LeadTask, utcnow
from storage.repos.teams import add_team, set_member
from tests.sdr_console.console_support import make_handoff, make_lead, make_user, sign_in


def stat(html: str, name: str) -> str:
    match = re.search(rf'id="stat-{name}">([^<]*)<', html)
    assert match, f"no stat-{name}"
    return match[1]


async def seed(client, owner_ids: dict[str, int]) -> None:
    """Two MQLs (one the salesperson's), a lead of the team lead's colleague, tasks and questions."""
    now = utcnow()
    mine = await make_lead(client, "自己的客户", owner=owner_ids["zhaomin"])
    colleague = await make_lead(client, "同事的客户", owner=owner_ids["lina"])
    stranger = await make_lead(client, "外组的客户", owner=owner_ids["other"])
    async with client.server.app[SESSIONS]() as session, session.begin():
        for lead_id, stage in ((mine, "mql"), (colleague, "mql"), (stranger, "sal")):
            (await session.get(Lead, lead_id)).stage = stage
        session.add_all([
            LeadTask(lead_id=mine, title="回访自己的客户", due_at=now - timedelta(hours=3),
                     assignee_user_id=owner_ids["zhaomin"]),
            LeadTask(lead_id=mine, title="下周的事", due_at=now + timedelta(days=3),
                     assignee_user_id=owner_ids["zhaomin"]),
            LeadTask(lead_id=colleague, title="同事的任务", due_at=now, assignee_user_id=owner_ids["lina"])])
        team = await add_team(session, "华东销售组")
        for name in ("zhaomin", "lina", "boss"):
            await set_member(session, team.id, owner_ids[name])
    await make_handoff(client, mine, "自己的问题")
    await make_handoff(client, stranger, "外组的问题")


async def page_for(client, username: str) -> str:
    client.session.cookie_jar.clear()
    assert (await sign_in(client, username)).status == 303
    resp = await client.get("/console/")
    assert resp.status == 200
    return await resp.text()


async def test_each_role_sees_its_own_figures(app_client) -> None:
    client = await app_client()
    engine = client.server.app[ENGINE]
    ids = {name: await make_user(engine, name, role=role) for name, role in (
        ("chenjing", "sdr"), ("zhaomin", "sales"), ("lina", "sales"), ("other", "sales"), ("boss", "team_lead"))}
    await seed(client, ids)

    sdr = await page_for(client, "chenjing")  # the whole pool
    assert (stat(sdr, "new"), stat(sdr, "mql"), stat(sdr, "handoffs"), stat(sdr, "total")) == ("3", "2", "2", "3")
    assert stat(sdr, "tasks") == "0" and "今天没有到期或逾期的任务" in sdr
    assert 'href="/console/leads?stage=mql"' in sdr and 'href="/console/handoffs"' in sdr
    assert "统计范围：全部线索" in sdr

    sales = await page_for(client, "zhaomin")  # own leads only
    assert (stat(sales, "new"), stat(sales, "mql"), stat(sales, "handoffs"), stat(sales, "total")) == (
        "1", "1", "1", "1")
    assert stat(sales, "tasks") == "1" and "回访自己的客户" in sales and "逾期" in sales
    assert "下周的事" not in sales and "同事的任务" not in sales and "同事的客户" not in sales
    assert "统计范围：我的线索" in sales

    lead = await page_for(client, "boss")  # the team's leads
    assert (stat(lead, "mql"), stat(lead, "handoffs"), stat(lead, "total")) == ("2", "1", "2")
    assert "外组的客户" not in lead and "统计范围：我和团队的线索" in lead


async def test_names_render_as_text(app_client) -> None:
    client = await app_client()
    await make_user(client.server.app[ENGINE], "chenjing", role="sdr")
    await make_lead(client, "<script>alert(1)</script>")
    html = await page_for(client, "chenjing")
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
