"""The start page's counts: live leads by stage (merged-away and erased leads are not counted), open hand-offs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from storage.db import session_factory
from storage.models import Handoff, Lead, LeadTask, User
from storage.repos.console_stats import due_tasks, leads_by_stage, leads_in_stage, new_leads, open_handoffs
from tests.sdr_console.console_support import seed_leads


async def test_leads_by_stage_counts_live_leads_only(engine) -> None:
    async with session_factory(engine)() as session:
        assert await leads_by_stage(session) == {} and await open_handoffs(session) == 0
    ids = await seed_leads(engine, {"lead": 3, "mql": 2, "disqualified": 1}, open_handoffs=2)
    async with engine.begin() as conn:
        await conn.execute(update(Lead).where(Lead.id == ids[1]).values(merged_into_id=ids[0]))
        await conn.execute(update(Lead).where(Lead.id == ids[3]).values(erased_at=datetime.now(UTC)))
        await conn.execute(update(Handoff).where(Handoff.message == "问题 0").values(status="closed"))
    async with session_factory(engine)() as session:
        assert await leads_by_stage(session) == {"lead": 2, "mql": 1, "disqualified": 1}
        assert await open_handoffs(session) == 1


async def test_start_page_figures_are_scoped_to_owners(engine) -> None:
    now = datetime.now(UTC)
    async with session_factory(engine)() as session, session.begin():
        me = User(username="me", role="sales", password_hash="x")
        other = User(username="other", role="sales", password_hash="x")
        session.add_all([me, other])
        await session.flush()
        leads = [Lead(display_name="今天的", stage="mql", owner_user_id=me.id, created_at=now),
                 Lead(display_name="昨天的", stage="mql", owner_user_id=other.id, created_at=now - timedelta(days=1)),
                 Lead(display_name="今天别人的", stage="lead", owner_user_id=other.id, created_at=now)]
        session.add_all(leads)
        await session.flush()
        session.add_all([
            LeadTask(lead_id=leads[0].id, title="逾期", due_at=now - timedelta(hours=5), assignee_user_id=me.id),
            LeadTask(lead_id=leads[0].id, title="今天", due_at=now + timedelta(hours=1), assignee_user_id=me.id),
            LeadTask(lead_id=leads[0].id, title="明天", due_at=now + timedelta(days=2), assignee_user_id=me.id),
            LeadTask(lead_id=leads[0].id, title="做完了", due_at=now - timedelta(hours=1), assignee_user_id=me.id,
                     status="done"),
            LeadTask(lead_id=leads[1].id, title="别人的", due_at=now, assignee_user_id=other.id)])
        session.add(Handoff(lead_id=leads[1].id, reason="no_intent", message="q", status="open"))
        ids = (me.id, other.id)
    async with session_factory(engine)() as session:
        since = now - timedelta(hours=1)
        count, latest = await new_leads(session, since)
        assert count == 2 and {line.name for line in latest} == {"今天的", "今天别人的"}
        assert (await new_leads(session, since, owner_ids=[ids[0]]))[0] == 1
        assert (await leads_in_stage(session, "mql"))[0] == 2
        count, waiting = await leads_in_stage(session, "mql", owner_ids=[ids[0]])
        assert count == 1 and [line.name for line in waiting] == ["今天的"]
        count, tasks = await due_tasks(session, ids[0], now + timedelta(hours=3))
        assert count == 2 and [t.title for t in tasks] == ["逾期", "今天"] and tasks[0].lead_name == "今天的"
        assert await leads_by_stage(session, [ids[0]]) == {"mql": 1}
        assert await open_handoffs(session, [ids[0]]) == 0 and await open_handoffs(session, [ids[1]]) == 1
