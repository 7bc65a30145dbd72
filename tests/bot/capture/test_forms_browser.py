"""A real mobile browser (system Chromium driven by Playwright) fills an H5 form against a real server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.keys import ENGINE
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.forms import PLAIN_UA, capture_config, field_names, identities, leads, touchpoints

SCREENSHOT = Path(os.environ.get("LEADRELAY_FORM_SCREENSHOT", "/tmp/form_error.png"))


@pytest.fixture
async def server(app_client, backend):
    # Sandbox mode and a plain mobile browser: no OAuth redirect, so public_url need not be this port.
    client = await app_client(capture_config(backend))
    return str(client.make_url("")).rstrip("/"), client.server.app


async def test_a_visitor_fixes_a_bad_phone_and_submits_on_a_phone(server, playwright_api):
    base, app = server
    async with playwright_api() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                                is_mobile=True, has_touch=True, user_agent=PLAIN_UA,
                                                locale="zh-CN")
            page = await context.new_page()
            await page.goto(f"{base}/f/demo?src=expo2026&utm_source=poster")
            assert await page.title() == "预约产品演示"
            assert field_names(await page.content()) >= {"name", "phone", "company"}
            assert await page.evaluate("window.innerWidth") == 390  # the mobile viewport meta is honoured

            await page.fill("#f-name", "陈静")
            await page.fill("#f-phone", "138 0013")
            await page.fill("#f-company", "<script>alert(1)</script>")
            await page.select_option("#f-company_size", "500_999")
            await page.tap("button[type=submit]")
            await page.wait_for_selector("#e-phone")
            assert (await page.inner_text("#e-phone")).strip() == "请输入正确的手机号码"
            assert (await page.inner_text("#e-consent")).strip() == "请阅读并勾选同意隐私政策"
            # What was typed survives the round trip, the markup as text.
            assert await page.input_value("#f-company") == "<script>alert(1)</script>"
            assert await page.input_value("#f-company_size") == "500_999"
            await page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert await leads(app[ENGINE]) == []

            await page.fill("#f-phone", "138-0013-8000")
            await page.check("input[name=consent]")
            await page.tap("button[type=submit]")
            await page.wait_for_selector("text=提交成功")
            assert "预约成功" in await page.inner_text("main")
        finally:
            await browser.close()

    engine = app[ENGINE]
    (lead,) = await leads(engine)
    assert lead.display_name == "陈静" and lead.consent == "granted"
    assert lead.profile["company"] == "<script>alert(1)</script>" and lead.profile["company_size"] == "500_999"
    assert await identities(engine) == {("phone", "", "13800138000", False)}
    kinds = [(t.kind, t.channel, t.detail.get("utm_source")) for t in await touchpoints(engine)]
    assert kinds == [("form_submit", "expo", "poster"), ("request_demo", "expo", "poster")]
