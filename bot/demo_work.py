"""Demo work in progress: prospects already worked by the demo people, so every console page has something
to show — leads in several stages (with the stage history and touchpoints of a timeline), owners, notes,
tasks due today and overdue, and hand-off questions inside and outside the OA 48-hour window.

Written straight to storage (the callbacks in bot/demo.py show the pipeline; these show the work after it).
Their OpenIDs are their own, so they never race the pipeline's leads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from leads.identity import OA_OPENID, IdentityKey
from leads.lifecycle import LEAD, MQL, OPPORTUNITY, SAL, SQL, transition
from leads.sources import Source
from storage.models import Lead, utcnow
from storage.repos.handoffs import open_handoff
from storage.repos.lead_work import add_note, add_task
from storage.repos.leads import LeadRepository
from storage.repos.stages import apply_transition
from storage.repos.users import user_by_name

# Who moves a lead into each stage (leads.lifecycle.TRANSITIONS), in order.
_PATH = ((MQL, "system", "评分达到 MQL 阈值"), (SAL, "sales", "销售接受跟进"), (SQL, "sales", "确认预算与需求"),
         (OPPORTUNITY, "sales", "进入商务报价"))


@dataclass(frozen=True, slots=True)
class DemoLead:
    openid: str
    name: str
    stage: str
    owner: str | None  # demo username
    last_oa_hours_ago: float
    company: str
    note: str = ""
    task: tuple[str, float] | None = None  # (title, due in hours; negative: overdue)
    question: str = ""  # an open hand-off question


DEMO_WORK = (
    DemoLead("o_demo_chen", "陈思远", LEAD, None, 0.05, "远航物流", question="你们的系统能和金蝶对接吗？"),
    DemoLead("o_demo_liu", "刘洋", MQL, "sdr", 5, "云帆科技", note="下载了白皮书，对考勤模块感兴趣。",
             task=("电话回访：确认考勤需求", 3)),
    DemoLead("o_demo_huang", "黄蕾", MQL, "sdr", 80, "启明教育", task=("发送案例资料", -20),
             question="有没有教育行业的客户案例？"),
    DemoLead("o_demo_zhou", "周杰", SAL, "sales", 30, "华信制造", note="预算约 20 万，Q3 上线。",
             task=("安排产品演示", -2)),
    DemoLead("o_demo_wu", "吴婷", SQL, "sales", 50, "星河零售", task=("准备报价单", 6)),
    DemoLead("o_demo_zheng", "郑浩", OPPORTUNITY, "sales2", 100, "南粤医药", note="已发正式报价，等待采购审批。",
             task=("跟进采购审批进度", 30)),
)


async def _user_ids(session: AsyncSession) -> dict[str, int]:
    ids = {}
    for username in ("sdr", "sales", "sales2", "lead"):
        user = await user_by_name(session, username)
        if user is not None:
            ids[username] = user.id
    return ids


async def _stage_path(session: AsyncSession, lead: Lead, target: str, at: datetime, sdr_id: str) -> None:
    for step, (stage, actor, reason) in enumerate(_PATH):
        if lead.stage == target:
            return
        move = transition(lead.stage, stage, actor, reason, "" if actor == "system" else sdr_id)
        await apply_transition(session, lead, move, at=at + timedelta(hours=step), touchpoint_id=None)


async def load_demo_work(session: AsyncSession, now: datetime | None = None) -> int:
    """The demo's worked leads, in the caller's transaction; how many were written."""
    now = now or utcnow()
    users = await _user_ids(session)
    repo = LeadRepository(session)
    source = Source(channel="expo", scene="event", code="expo2026")
    for i, demo in enumerate(DEMO_WORK):
        first_seen = now - timedelta(days=len(DEMO_WORK) - i, hours=3)
        if demo.stage == LEAD:
            first_seen = now - timedelta(minutes=5)  # one of today's new leads (whatever the time zone)
        lead = await repo.resolve([IdentityKey(OA_OPENID, "demo", demo.openid)], now=first_seen, inbox_id=None,
                                  display_name=demo.name)
        lead.created_at = first_seen
        lead.profile = {**(lead.profile or {}), "company": demo.company}
        lead.oa_last_interaction_at = now - timedelta(hours=demo.last_oa_hours_ago)
        lead.owner_user_id = users.get(demo.owner or "")
        await repo.add_touchpoint(lead, kind="oa_subscribe", source=source, occurred_at=first_seen, inbox_id=None)
        await _stage_path(session, lead, demo.stage, first_seen + timedelta(hours=1), str(users.get("sdr", "")))
        author = users.get(demo.owner or "sdr")
        if demo.note:
            await add_note(session, lead.id, demo.note, author_user_id=author, author_label=demo.owner or "sdr",
                           now=first_seen + timedelta(hours=2))
        if demo.task:
            title, due_in = demo.task
            await add_task(session, lead.id, title, due_at=now + timedelta(hours=due_in), assignee_user_id=author,
                           created_by_user_id=author, now=first_seen + timedelta(hours=2))
        if demo.question:
            await open_handoff(session, lead_id=lead.id, inbox_id=None, reason="no_intent", message=demo.question,
                               at=lead.oa_last_interaction_at)  # the question was their last OA action
    return len(DEMO_WORK)
