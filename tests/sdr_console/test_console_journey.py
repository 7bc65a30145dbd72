"""The whole SDR day in one real browser (Debian's Chromium driven by Playwright), through the UI only: sign in
with the form, the start page, the lead list narrowed by a stage and a search, the lead's 360 (a note, a tag, a
task with a due date and an assignee, BANT, the hand-off to sales), the hand-off queue (claim and answer a question
inside the 48-hour window: an outbox row; the other question is outside it: the console explains why and offers a
template message, which is sent) and back on the 360 the reply is in the timeline.

The data is seeded in the database first; after that every step is a click or a key press. No page may log a
console error (a CSP violation is one) or get an error answer. Screenshots of each page:
tests/artifacts/console/<backend>/journey-NN-<page>.png (open them: Chinese text in the Bootstrap layout).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from bot.keys import ENGINE, SESSIONS
from storage.models import Handoff, Identity, Lead, LeadNote, LeadTag, LeadTask, OutboxMessage
from tests.sdr_console.console_support import PASSWORD, listed_lead, make_handoff, make_user
from tests.sdr_console.lead_seed import seed_360
from tests.support.browser import desktop_browser, screenshots

TEMPLATE_ID = "TPL-SERVICE-REPLY"
OTHERS = [("张伟", "星河科技有限公司", "mql"), ("李娜", "华腾智能制造", "lead"), ("刘洋", "云杉软件", "sal"),
          ("陈杰", "东方物流集团", "lead"), ("杨静", "青禾教育", "mql"), ("赵磊", "金石资本", "lead")]
INSIDE_Q = "你们支持私有化部署吗？大概多久能上线？"
OUTSIDE_Q = "能开增值税专用发票吗？"
REPLY = "支持的，标准部署两周内可上线，稍后发您方案。"
TEMPLATE_REPLY = "可以开具专票，请把开票信息发给我们。"


async def seed(client: Any) -> dict[str, int]:
    engine = client.server.app[ENGINE]
    sdr = await make_user(engine, "chenjing", display_name="陈静", role="sdr")
    await make_user(engine, "liuyang", display_name="刘洋", role="sales")
    ids = {"sdr": sdr}
    for i, (name, company, stage) in enumerate(OTHERS):
        ids[name] = await listed_lead(client, name, owner=sdr, stage=stage, company=company,
                                      phone=f"1380013{i:04d}", tags=("展会",) if i % 2 else ())
    ids["lead"] = await seed_360(engine, owner=sdr, name="赵敏", text="请问你们的招聘系统支持多少人同时在线？")
    ids["inside"] = await make_handoff(client, ids["lead"], INSIDE_Q, last_oa_hours_ago=5)
    async with client.server.app[SESSIONS]() as session, session.begin():  # 李娜 follows the OA too
        session.add(Identity(lead_id=ids["李娜"], kind="oa_openid", app="wx", value="o_lina"))
    ids["outside"] = await make_handoff(client, ids["李娜"], OUTSIDE_Q, last_oa_hours_ago=60)
    return ids


class Journey:
    """The page, its numbered screenshots and every console error / failed request seen on the way."""

    def __init__(self, page: Any, shots: Any) -> None:
        self.page, self.shots, self.n, self.errors = page, shots, 0, []
        page.on("console", lambda msg: self.errors.append(f"{page.url}: {msg.text}") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    async def shot(self, name: str, *, full: bool = True) -> None:
        self.n += 1
        await self.page.screenshot(path=str(self.shots / f"journey-{self.n:02d}-{name}.png"), full_page=full)


async def _rows(client: Any, model: Any, **where: Any) -> list:
    async with client.server.app[SESSIONS]() as session:
        stmt = select(model).filter_by(**where).order_by(*model.__table__.primary_key)
        return list((await session.execute(stmt)).scalars())


async def test_one_sdr_works_a_day_in_the_console(app_client, backend, playwright_api) -> None:  # noqa: PLR0915
    client = await app_client(outbound={"fallback_template_id": TEMPLATE_ID})
    ids = await seed(client)
    lead = ids["lead"]
    base = str(client.make_url("")).rstrip("/")
    shots = screenshots(backend)
    async with desktop_browser(playwright_api) as context:
        page = await context.new_page()
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        j = Journey(page, shots)

        # Sign in with the form.
        await page.goto(f"{base}/console/")
        await page.wait_for_selector("#username")
        await page.fill("#username", "chenjing")
        await page.fill("#password", PASSWORD)
        await j.shot("login", full=False)
        await page.click("button[type=submit]")

        # The start page.
        await page.wait_for_selector("#stages")
        assert page.url == f"{base}/console/"
        assert "您好，陈静" in await page.inner_text("main")
        assert await page.inner_text("#stat-handoffs") == "2"
        assert await page.inner_text("#stat-total") == str(len(OTHERS) + 2)  # + 赵敏 and her duplicate
        await j.shot("start")

        # The lead list, then narrowed by a stage and a search.
        await page.click("#widget-new a")
        await page.wait_for_selector("#lead-table")
        rows = page.locator("tr[data-lead-id]")
        assert await rows.count() == len(OTHERS) + 2
        await j.shot("leads")
        await page.click("label[for=f-stage-lead]")
        await page.click("#apply-filters")
        await page.wait_for_url("**stage=lead**")
        assert await rows.count() == 5  # 李娜, 陈杰, 赵磊, 赵敏 and 王芳（表单）
        await page.fill("#f-q", "赵敏")
        await page.click("#apply-filters")
        await page.wait_for_url("**q=**")
        assert await rows.count() == 1 and await page.inner_text("#lead-total") == "1"
        assert await page.get_attribute("tr[data-lead-id]", "data-lead-id") == str(lead)
        await j.shot("leads-filtered")

        # The lead's 360.
        await page.click(f"tr[data-lead-id='{lead}'] a")
        await page.wait_for_selector("#lead-360")
        assert await page.inner_text("#lead-name") == "赵敏"
        await j.shot("lead-360")

        await page.fill("#note-body", "客户关注并发人数，下周约演示。")
        await page.click("#note-form button[type=submit]")
        await page.wait_for_selector("#notes-list >> text=客户关注并发人数")
        await page.fill("#tag-input", "重点客户")
        await page.click(".lr-tag-form button[type=submit]")
        await page.wait_for_selector("#lead-tags >> text=重点客户")
        await page.click("#tab-tasks")
        await page.fill("#task-title", "周五前电话回访")
        await page.fill("#task-due", "2026-12-31T18:00")
        await page.select_option("#task-assignee", "liuyang")
        await page.click("#task-form button[type=submit]")
        await page.wait_for_selector("#tasks-list >> text=周五前电话回访")
        assert "截止 2026-12-31 18:00 · liuyang" in await page.inner_text("#tasks-list")
        await j.shot("lead-tasks")

        await page.click("#tab-bant")
        await page.select_option("#bant-budget", "100k_500k")
        await page.select_option("#bant-authority", "decision_maker")
        await page.fill("#bant-need", "统一招聘流程，500 人规模")
        await page.select_option("#bant-timeline", "1_3_months")
        await page.click("#bant-form button[type=submit]")
        await page.wait_for_selector("#bant-complete")
        await page.fill("#transfer-note", "客户下周安排演示")
        await page.click("#transfer-form button[type=submit]")
        await page.wait_for_selector("#lead-stage >> text=市场认可线索（MQL）")
        await page.wait_for_selector("#stage-history >> text=客户下周安排演示")
        await j.shot("lead-transferred")

        # The hand-off queue, through the navbar.
        await page.click("nav a[href='/console/handoffs']")
        one, two = f"#handoff-{ids['inside']}", f"#handoff-{ids['outside']}"
        await page.wait_for_selector(one)
        assert "48 小时客服窗口剩余" in await page.inner_text(one)
        await page.click(f"{one} button.lr-claim")
        await page.wait_for_selector(f"{one} .lr-claimed")
        outside_text = await page.inner_text(two)
        assert "已超出 48 小时窗口" in outside_text and "微信不再允许发送客服消息" in outside_text
        assert "可以改用模板消息发送" in outside_text
        assert await page.is_visible(f"{two} button:has-text('改用模板消息发送')")
        await page.fill(f"{one} textarea", REPLY)
        await j.shot("handoffs")
        await page.click(f"{one} button[type=submit]")
        await page.wait_for_selector("#handoff-feedback .alert-success:has-text('公众号客服消息')")
        await page.wait_for_selector(one, state="detached")

        await page.fill(f"{two} textarea", TEMPLATE_REPLY)
        await page.click(f"{two} button:has-text('改用模板消息发送')")
        await page.wait_for_selector("#handoff-feedback .alert-success:has-text('模板消息')")
        await page.wait_for_selector(two, state="detached")
        await page.wait_for_selector("#handoff-empty")
        await j.shot("handoffs-answered")
        await page.click("text=已关闭")
        await page.wait_for_selector(one)
        assert "已由 陈静" in await page.inner_text(one)
        await j.shot("handoffs-closed")

        # Back on the 360: the reply is in the timeline.
        await page.click(f"{one} a.lr-handoff-lead")
        await page.wait_for_selector("#lead-360")
        await page.wait_for_selector(f".lr-timeline .lr-msg-out >> text={REPLY}")
        meta = await page.inner_text(f".lr-msg-out:has-text('{REPLY}') .lr-meta")
        assert meta.split(" · ")[:2] == ["陈静", "客服消息"]  # who sent it (as the navbar names them), how
        await j.shot("lead-timeline")
        assert j.errors == [], j.errors

    [custom, template] = await _rows(client, OutboxMessage, author_user_id=ids["sdr"])
    assert (custom.method, custom.lead_id, custom.payload["content"]) == ("oa.custom_text", lead, REPLY)
    assert (template.method, template.lead_id) == ("oa.template", ids["李娜"])
    assert template.payload["template_id"] == TEMPLATE_ID and TEMPLATE_REPLY in str(template.payload)
    assert [(h.status, h.reply_outbox_id) for h in await _rows(client, Handoff)] == [
        ("closed", custom.id), ("closed", template.id)]
    async with client.server.app[SESSIONS]() as session:
        assert (await session.get(Lead, lead)).stage == "mql"
    assert "客户关注并发人数，下周约演示。" in [n.body for n in await _rows(client, LeadNote, lead_id=lead)]
    assert "重点客户" in {t.tag for t in await _rows(client, LeadTag, lead_id=lead)}
    task = (await _rows(client, LeadTask, lead_id=lead))[-1]
    assert task.title == "周五前电话回访" and task.due_at.isoformat() == "2026-12-31T10:00:00+00:00"
