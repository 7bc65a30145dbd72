"""A real browser (Debian's Chromium driven by Playwright) works one lead's 360 as an SDR: adds a note, a tag and
a task with a due date and an assignee, fills BANT and hands the lead to sales (seeing the 409's message while a
required field is missing), edits the profile and loads an older timeline page. Everything goes through the JSON
API with the session cookie and the CSRF header, under the Content-Security-Policy.

Screenshots go to tests/artifacts/console/<backend>/lead-*.png: open them.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.keys import ENGINE, SESSIONS
from storage.models import Lead, LeadNote, LeadTag, LeadTask
from tests.sdr_console.console_support import PASSWORD, make_user
from tests.sdr_console.lead_seed import seed_360
from tests.support.browser import desktop_browser, screenshots


async def _rows(client, model, lead_id: int) -> list:
    async with client.server.app[SESSIONS]() as session:
        return list((await session.execute(select(model).where(model.lead_id == lead_id))).scalars())


async def test_an_sdr_works_a_lead_in_the_360(app_client, backend, playwright_api) -> None:
    client = await app_client()
    engine = client.server.app[ENGINE]
    await make_user(engine, "chenjing", display_name="陈静", role="sdr")
    await make_user(engine, "liuyang", display_name="刘洋", role="sales")
    lead = await seed_360(engine, touches=20, text="请问你们的招聘系统支持多少人同时在线？", replies=True)
    base = str(client.make_url("")).rstrip("/")
    shots = screenshots(backend)
    async with desktop_browser(playwright_api) as context:
        page = await context.new_page()
        errors: list[str] = []
        # Expected: the refused hand-off (409), which htmx also logs.
        expected = ("Failed to load resource", "Response Status Error Code 409 from /api/leads/")
        page.on("console", lambda msg: errors.append(msg.text)
                if msg.type == "error" and not msg.text.startswith(expected) else None)
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/transfer") else None)
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await page.goto(f"{base}/console/leads/{lead}")
        await page.fill("#username", "chenjing")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_selector("#lead-360")
        assert await page.inner_text("#lead-name") == "王芳"
        await page.screenshot(path=str(shots / "lead-360.png"), full_page=True)

        # A note.
        await page.fill("#note-body", "客户关注并发人数，下周约演示。")
        await page.click("#note-form button[type=submit]")
        await page.wait_for_selector("#notes-list >> text=客户关注并发人数")
        assert await page.input_value("#note-body") == ""  # the form was cleared

        # A tag, and removing the seeded one.
        await page.fill("#tag-input", "重点客户")
        await page.click(".lr-tag-form button[type=submit]")
        await page.wait_for_selector("#lead-tags >> text=重点客户")
        await page.click(".lr-tag-remove[aria-label^='移除标签 请问']")
        await page.wait_for_selector(".lr-tag-remove[aria-label^='移除标签 请问']", state="detached")

        # A task with a due date and an assignee.
        await page.click("#tab-tasks")
        await page.fill("#task-title", "周五前电话回访")
        await page.fill("#task-due", "2026-12-31T18:00")
        await page.select_option("#task-assignee", "liuyang")
        await page.click("#task-form button[type=submit]")
        await page.wait_for_selector("#tasks-list >> text=周五前电话回访")
        assert "截止 2026-12-31 18:00 · liuyang" in await page.inner_text("#tasks-list")
        await page.screenshot(path=str(shots / "lead-tasks.png"))

        # BANT without a timeline: the hand-off is refused with the missing field named.
        await page.click("#tab-bant")
        await page.select_option("#bant-budget", "100k_500k")
        await page.select_option("#bant-authority", "decision_maker")
        await page.fill("#bant-need", "统一招聘流程，500 人规模")
        await page.click("#bant-form button[type=submit]")
        await page.wait_for_selector("#bant-missing >> text=采购时间")
        await page.click("#transfer-form button[type=submit]")
        await page.wait_for_selector("#lr-toasts .alert-danger")
        assert "BANT 信息不完整，请先填写：采购时间" in await page.inner_text("#lr-toasts")
        await page.screenshot(path=str(shots / "lead-bant-409.png"))
        await page.select_option("#bant-timeline", "1_3_months")
        await page.click("#bant-form button[type=submit]")
        await page.wait_for_selector("#bant-complete")
        await page.fill("#transfer-note", "客户下周安排演示")
        await page.click("#transfer-form button[type=submit]")
        await page.wait_for_selector("#lead-stage >> text=市场认可线索（MQL）")
        await page.wait_for_selector("#stage-history >> text=客户下周安排演示")

        # The profile.
        await page.click(".lr-edit-profile summary")
        await page.fill("#pf-city", "杭州")
        await page.select_option("#pf-job_title", "director")
        await page.click("#profile-form button[type=submit]")
        await page.wait_for_selector("#profile-history summary >> text=资料修改记录（1）")
        assert "总监" in await page.inner_text(".lr-fields")

        # An older page of the timeline.
        before = await page.locator(".lr-timeline [data-item]").count()
        assert before == 30
        await page.click(".lr-older")
        await page.wait_for_selector(".lr-timeline-end")
        assert await page.locator(".lr-timeline [data-item]").count() > before
        await page.screenshot(path=str(shots / "lead-360-after.png"), full_page=True)
        assert errors == [], errors
    async with client.server.app[SESSIONS]() as session:
        row = await session.get(Lead, lead)
        assert row is not None and row.stage == "mql" and row.profile["city"] == "杭州"
    assert [n.body for n in await _rows(client, LeadNote, lead)][-1] == "客户关注并发人数，下周约演示。"
    tags = {t.tag for t in await _rows(client, LeadTag, lead)}
    assert "重点客户" in tags and not any(t.startswith("请问") for t in tags)
    [_, task] = await _rows(client, LeadTask, lead)
    assert task.due_at is not None and task.due_at.isoformat() == "2026-12-31T10:00:00+00:00"
