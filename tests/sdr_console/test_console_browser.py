"""A real desktop browser (Debian's Chromium driven by Playwright) signs in to the console and out again.

Screenshots of each page are written to tests/artifacts/console/ (or $LEADRELAY_ARTIFACTS/console/): open them,
they must show real Chinese text (Debian's fonts-noto-cjk) in the Bootstrap layout.
"""

from __future__ import annotations

from bot.keys import ENGINE
from tests.sdr_console.console_support import PASSWORD, make_user, seed_leads
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, screenshots


async def test_an_sdr_signs_in_sees_the_start_page_and_signs_out(app_client, backend, playwright_api) -> None:
    client = await app_client()
    engine = client.server.app[ENGINE]
    await make_user(engine, "chenjing", display_name="陈静", role="sdr")
    await seed_leads(engine, {"lead": 12, "mql": 3, "sal": 2, "disqualified": 1}, open_handoffs=2)
    base = str(client.make_url("")).rstrip("/")
    shots = screenshots(backend)
    async with playwright_api() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
            page = await context.new_page()
            errors: list[str] = []  # CSP violations and scripts' errors; sub-resources that failed to load
            page.on("console", lambda msg: errors.append(msg.text)
                    if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                    if r.status >= 400 and r.request.resource_type != "document" else None)
            await page.goto(f"{base}/")
            assert page.url.endswith("/console/login?next=/console/")
            assert await page.title() == "登录 · LeadRelay 线索工作台"
            # Bootstrap is loaded (its reboot sets the body margin to 0 and its button colours apply).
            assert await page.evaluate("getComputedStyle(document.querySelector('.btn-primary')).borderRadius") != "0px"
            await page.fill("#username", "chenjing")
            await page.fill("#password", "wrong password")
            await page.click("button[type=submit]")
            await page.wait_for_selector(".alert-danger")
            assert (await page.inner_text(".alert-danger")).strip() == "用户名或密码错误"
            await page.screenshot(path=str(shots / "login-error.png"))

            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_selector("#stages")
            assert page.url == f"{base}/console/"
            assert "您好，陈静" in await page.inner_text("main")
            assert await page.inner_text("#stat-total") == "18" and await page.inner_text("#stat-handoffs") == "2"
            assert await page.evaluate("typeof htmx") == "object"  # htmx loaded, under the CSP
            headers = await page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))")
            assert len(headers["X-CSRF-Token"]) > 20
            await page.screenshot(path=str(shots / "start.png"), full_page=True)

            await page.click("text=退出登录")
            await page.wait_for_selector("#username")
            await page.screenshot(path=str(shots / "login.png"))
            await page.goto(f"{base}/console/")
            assert "/console/login" in page.url
            assert errors == []  # no CSP violation, no missing file
        finally:
            await browser.close()
