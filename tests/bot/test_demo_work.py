"""The demo's worked leads: several stages with their history, owners, notes, tasks due and overdue, and open
hand-off questions inside and outside the 48-hour window — what the console's pages need to show something."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.demo import DEMO_PASSWORD, load_demo_on_startup
from bot.demo_work import DEMO_WORK
from bot.keys import SESSIONS
from leads.handoff_reply import service_window
from storage.models import Handoff, Lead, LeadNote, LeadTask, StageTransition, User, utcnow
from tests.sdr_console.console_support import sign_in


async def test_the_demo_holds_worked_leads(app_client, capsys) -> None:
    client = await app_client()
    await load_demo_on_startup(client.server.app)
    capsys.readouterr()
    now = utcnow()
    async with client.server.app[SESSIONS]() as session:
        names = [d.name for d in DEMO_WORK]
        leads = {lead.display_name: lead for lead in (await session.execute(
            select(Lead).where(Lead.display_name.in_(names)))).scalars()}
        assert {lead.stage for lead in leads.values()} >= {"lead", "mql", "sal", "sql", "opportunity"}
        owners = {u.id: u.username for u in (await session.execute(select(User))).scalars()}
        assert owners[leads["周杰"].owner_user_id] == "sales" and leads["陈思远"].owner_user_id is None
        history = (await session.execute(select(func.count()).select_from(StageTransition)
                                         .where(StageTransition.lead_id == leads["郑浩"].id))).scalar_one()
        assert history == 4  # lead -> mql -> sal -> sql -> opportunity
        assert (await session.execute(select(func.count()).select_from(LeadNote))).scalar_one() >= 3
        tasks = list((await session.execute(select(LeadTask))).scalars())
        assert any(t.due_at < now for t in tasks) and any(t.due_at > now for t in tasks)
        assert all(owners.get(t.assignee_user_id) in ("sdr", "sales", "sales2") for t in tasks)
        questions = list((await session.execute(
            select(Handoff, Lead).join(Lead, Lead.id == Handoff.lead_id).where(Handoff.status == "open"))).all())
        windows = {service_window(lead.oa_last_interaction_at, now, 48).open for _, lead in questions
                   if lead.display_name in names}
        assert windows == {True, False}
        assert leads["陈思远"].created_at > now - timedelta(days=1)  # one of today's new leads

    assert (await sign_in(client, "sdr", DEMO_PASSWORD)).status == 303
    start = await (await client.get("/console/")).text()
    for shown in ("今日新线索", "陈思远", "逾期", "发送案例资料", "刘洋"):
        assert shown in start, shown
    queue = await (await client.get("/console/handoffs")).text()
    assert "48 小时客服窗口剩余" in queue and "已超出 48 小时窗口" in queue
