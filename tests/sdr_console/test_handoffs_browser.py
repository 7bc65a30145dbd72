"""A real browser works the hand-off queue: claims a question and answers it inside the 48-hour window (an
outbox row appears), and sees why a question outside the window needs a template message — which it sends.

Screenshots: tests/artifacts/console/<backend>/start.png and handoffs.png (open them: they must look like a
product, Chinese text in the Bootstrap layout).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.keys import ENGINE, SESSIONS
from storage.models import Handoff, Lead, LeadTask, OutboxMessage, utcnow
from tests.sdr_console.console_support import PASSWORD, make_handoff, make_lead, make_user, seed_leads
from tests.support.browser import desktop_browser, screenshots, signed_in_page

BEIJING = ZoneInfo("Asia/Shanghai")


def later_today(now: datetime) -> datetime:
    """Half an hour on, or the last minute of the day in Beijing when that is sooner: "due today" whenever the
    test runs (at 23:45 Beijing time, half an hour on is tomorrow)."""
    local = now.astimezone(BEIJING)
    end = datetime.combine(local.date(), time(23, 59), tzinfo=BEIJING)
    return min(now + timedelta(minutes=30), max(end, now))


async def seed(client, user_id: int) -> tuple[int, int, int]:
    await seed_leads(client.server.app[ENGINE], {"lead": 9, "mql": 4, "sal": 3, "sql": 2, "opportunity": 1})
    inside_lead = await make_lead(client, "张伟", owner=user_id)
    outside_lead = await make_lead(client, "李娜", owner=user_id)
    wecom_lead = await make_lead(client, "王芳")
    now = utcnow()
    async with client.server.app[SESSIONS]() as session, session.begin():
        (await session.get(Lead, inside_lead)).stage = "mql"
        session.add_all([
            LeadTask(lead_id=inside_lead, title="电话回访：确认部署方式", due_at=now - timedelta(hours=20),
                     assignee_user_id=user_id),
            LeadTask(lead_id=outside_lead, title="发送报价单", due_at=later_today(now),
                     assignee_user_id=user_id)])
    inside = await make_handoff(client, inside_lead, "你们支持私有化部署吗？大概多久能上线？", last_oa_hours_ago=5)
    outside = await make_handoff(client, outside_lead, "能开增值税专用发票吗？", last_oa_hours_ago=60)
    await make_handoff(client, wecom_lead, "下周可以安排演示吗？", last_oa_hours_ago=None,
                       wecom=("wm-wangfang", "sales_chen"))
    return inside, outside, inside_lead


async def test_an_sdr_answers_the_queue_in_a_browser(app_client, backend, playwright_api) -> None:
    client = await app_client(outbound={"fallback_template_id": "TPL-SERVICE-REPLY"})
    user_id = await make_user(client.server.app[ENGINE], "chenjing", display_name="陈静", role="sdr")
    inside, outside, inside_lead = await seed(client, user_id)
    base = str(client.make_url("")).rstrip("/")
    shots = screenshots(backend)
    async with desktop_browser(playwright_api, viewport={"width": 1280, "height": 900}) as context:
        page, errors = await signed_in_page(context, base, "chenjing", PASSWORD)
        assert await page.inner_text("#stat-handoffs") == "3" and await page.inner_text("#stat-tasks") == "2"
        assert "电话回访：确认部署方式" in await page.inner_text("#my-tasks")
        await page.screenshot(path=str(shots / "start.png"), full_page=True)

        await page.click("#widget-handoffs a")
        await page.wait_for_selector(f"#handoff-{inside}")
        one, two = f"#handoff-{inside}", f"#handoff-{outside}"
        assert "48 小时客服窗口剩余" in await page.inner_text(one)
        await page.click(f"{one} button.lr-claim")
        await page.wait_for_selector(f"{one} .lr-claimed")
        assert "我已认领" in await page.inner_text(f"{one} .lr-claimed")
        outside_text = await page.inner_text(two)
        assert "已超出 48 小时窗口" in outside_text and "微信不再允许发送客服消息" in outside_text
        assert await page.is_visible(f"{two} button:has-text('改用模板消息发送')")
        await page.fill(f"{one} textarea", "支持的，标准部署两周内可上线，稍后发您方案。")
        await page.screenshot(path=str(shots / "handoffs.png"), full_page=True)

        await page.click(f"{one} button[type=submit]")
        await page.wait_for_selector("#handoff-feedback .alert-success:has-text('公众号客服消息')")
        await page.wait_for_selector(one, state="detached")  # answered: gone from 待处理

        await page.fill(f"{two} textarea", "可以开具专票，请把开票信息发给我们。")
        await page.click(f"{two} button:has-text('改用模板消息发送')")
        await page.wait_for_selector("#handoff-feedback .alert-success:has-text('模板消息')")
        await page.wait_for_selector(two, state="detached")
        await page.click("text=已关闭")
        await page.wait_for_selector(f"#handoff-{inside}")
        assert "已由 陈静" in await page.inner_text(f"#handoff-{inside}")
        await page.screenshot(path=str(shots / "handoffs-closed.png"), full_page=True)
        assert errors == []

    async with client.server.app[SESSIONS]() as session:
        rows = list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())
        assert [(r.method, r.author_user_id, r.lead_id) for r in rows] == [
            ("oa.custom_text", user_id, inside_lead), ("oa.template", user_id, rows[1].lead_id)]
        assert rows[0].payload["content"] == "支持的，标准部署两周内可上线，稍后发您方案。"
        assert (await session.get(Handoff, inside)).status == "closed"
