"""A real browser on the lead list: sign in, filter by stage, save the filter, export it as CSV (the progress bar
reaches the end, the file downloads with its BOM), with no CSP violation. Screenshot: <backend>/leads.png."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from bot.keys import ENGINE
from tests.sdr_console.console_support import PASSWORD, listed_lead, make_user
from tests.support.browser import desktop_browser, screenshots

PEOPLE = [("张伟", "星河科技有限公司"), ("李娜", "华腾智能制造"), ("王芳", "蓝海医疗器械"), ("刘洋", "云杉软件"),
          ("陈杰", "东方物流集团"), ("杨静", "青禾教育"), ("赵磊", "金石资本"), ("黄敏", "远航新能源"),
          ("周强", "明德律师事务所"), ("吴霞", "若水生物科技"), ("徐涛", "北辰建筑设计"), ("孙丽", "恒信财务咨询")]
STAGES = ["mql", "lead", "sal", "mql", "sql", "lead", "opportunity", "mql", "customer", "lead", "recycled", "mql"]
SCORES = [(82, 91, "sales_ready"), (35, 20, "public_pool"), (70, 30, "nurture"), (88, 76, "sales_ready"),
          (40, 72, "other_solution"), (25, 15, "public_pool"), (90, 85, "sales_ready"), (66, 81, "sales_ready"),
          (77, 40, "nurture"), (30, 64, "other_solution"), (20, 10, "public_pool"), (73, 88, "sales_ready")]


async def seed(client) -> None:
    engine = client.server.app[ENGINE]
    await make_user(engine, "chenjing", display_name="陈静", role="sdr")
    wangli = await make_user(engine, "wangli", display_name="王丽", role="sales")
    for i, ((name, company), stage, score) in enumerate(zip(PEOPLE, STAGES, SCORES, strict=True)):
        tags = (("展会", "重点客户") if i % 3 == 0 else ("官网表单",)) if i % 2 == 0 else ()
        await listed_lead(client, name, owner=wangli if i % 4 == 1 else None, stage=stage, company=company,
                          phone=f"13{i % 10}{i:04d}{5678 + i}", tags=tags, score=score)


async def test_filter_save_and_export_in_a_browser(app_client, backend, playwright_api) -> None:
    client = await app_client()
    await seed(client)
    base = str(client.make_url("")).rstrip("/")
    shots = screenshots(backend)
    async with desktop_browser(playwright_api, accept_downloads=True) as context:
        page = await context.new_page()
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text)
                if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and r.request.resource_type != "document" else None)
        await page.goto(f"{base}/console/leads")
        await page.fill("#username", "chenjing")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_selector("#lead-table")
        assert await page.locator("tr[data-lead-id]").count() == len(PEOPLE)
        assert not re.search(r"[0-9]{11}", await page.inner_text("#lead-table"))  # phones only masked
        assert await page.inner_text("#lead-total") == str(len(PEOPLE))

        await page.click("label[for=f-stage-mql]")
        await page.click("#apply-filters")
        await page.wait_for_url("**stage=mql**")
        rows = page.locator("tr[data-lead-id]")
        assert await rows.count() == STAGES.count("mql")
        assert set(await page.locator("tr[data-lead-id] .lr-stage").all_inner_texts()) == {"市场认可线索（MQL）"}

        await page.fill("#save-filter-form input[name=name]", "本周 MQL")
        await page.click("#save-filter-form button[type=submit]")
        await page.wait_for_selector("#saved-filter-select option:text('本周 MQL')", state="attached")

        async with page.expect_download() as download_info:
            await page.click("#export-button")
        download = await download_info.value
        await page.wait_for_selector("#export-panel[data-done=true]")
        assert await page.get_attribute("#export-progress", "aria-valuenow") == "100"
        assert "导出完成" in await page.inner_text("#export-status")
        data = await asyncio.to_thread(Path(await download.path()).read_bytes)
        lines = data.decode("utf-8-sig").count("\r\n")
        assert data.startswith(b"\xef\xbb\xbf") and lines == 1 + STAGES.count("mql")  # header + the MQLs
        assert download.suggested_filename.endswith(".csv")
        await page.screenshot(path=str(shots / "leads.png"), full_page=True)
        assert errors == []
