"""The salesperson's phone, in a real browser (Debian's Chromium driven by Playwright, 375 px wide, WeCom's user
agent): a login link opens the inbox; the pending MQL shows its whole history and is accepted with one tap; a second
is returned with a reason from the half-screen dialog and lands in the SDRs' queue (the console's list, stage
returned); in live mode WeCom OAuth signs the salesperson in and the chat toolbar page, with a stubbed ``wx``
JS-SDK (Tencent's script URLs routed to a stub), opens the lead of the chat's external contact.

No page may log a console error (a CSP violation is one). Screenshots:
tests/artifacts/console/<backend>/mobile/NN-<page>.png (open them).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import update

from bot.keys import CONFIG, REDIS, SESSIONS
from bot.wechat.jsapi import signature, ticket_key
from storage.models import Assignment, Lead, utcnow
from tests.sdr_console.console_support import make_user, sign_in
from tests.sdr_console.lead_seed import seed_360
from tests.sdr_console.mobile.mobile_support import (
    engine_of,
    live_client,
    login_link,
    routed_lead,
    salesperson,
    sandbox_client,
)
from tests.support.browser import mobile_browser, screenshots
from tests.support.helpers import CORP_ID

QUESTION = "请问你们的招聘系统支持多少人同时在线？"
WX_STUB = """
window.wx = {
  agentConfig: function (cfg) {
    sessionStorage.setItem("agentConfig", JSON.stringify(cfg));
    setTimeout(cfg.success, 10);
  },
  invoke: function (name, args, cb) {
    sessionStorage.setItem("invoked", name);
    setTimeout(function () { cb({err_msg: name + ":ok", userId: %s}); }, 10);
  }
};
"""


class Phone:
    """The page, its numbered screenshots and every console error or unexpected error answer on the way."""

    def __init__(self, page: Any, shots: Any, expected: tuple[int, ...] = ()) -> None:
        self.page, self.shots, self.n, self.errors = page, shots, 0, []
        allowed = tuple(f"status of {code}" for code in expected)  # the browser's own note of an expected answer
        page.on("console", lambda m: self.errors.append(f"{page.url}: {m.text}")
                if m.type == "error" and not (allowed and any(a in m.text for a in allowed)) else None)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and r.status not in expected else None)

    async def shot(self, name: str, at: str | None = None) -> None:
        """The phone's screen (``at``: scrolled to that element first); fixed bars stay where a phone shows them."""
        if at is not None:
            await self.page.locator(at).first.scroll_into_view_if_needed()
            await self.page.evaluate("window.scrollBy(0, -60)")
        self.n += 1
        await self.page.screenshot(path=str(self.shots / f"{self.n:02d}-{name}.png"))


def mobile_shots(backend: Any, name: str) -> Any:
    path = screenshots(backend) / "mobile" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


async def seed_inbox(client: Any) -> dict[str, int]:
    engine = engine_of(client)
    me = await salesperson(engine, "liuyang", display_name="刘洋", wecom_userid="LiuYang")
    await make_user(engine, "chenjing", display_name="陈静", role="sdr")
    first = await seed_360(engine, owner=me, name="赵敏", text=QUESTION, replies=True)
    async with client.server.app[SESSIONS]() as session, session.begin():
        await session.execute(update(Lead).where(Lead.id == first).values(stage="mql"))
        session.add(Assignment(lead_id=first, user_id=me, rule="routing.rules[0]", reason="华东 · 互联网行业规则",
                               status="pending", assigned_at=utcnow()))
    second, _ = await routed_lead(engine, me, name="张伟", company="星河科技有限公司", score=(58, 71, "hot"),
                                  external_userid="wm_zhangwei")
    done, _ = await routed_lead(engine, me, name="陈杰", company="东方物流集团", status="accepted")
    return {"me": me, "first": first, "second": second, "done": done}


async def test_a_salesperson_accepts_one_mql_and_returns_another(app_client, backend, playwright_api) -> None:
    client = await sandbox_client(app_client)
    ids = await seed_inbox(client)
    config = client.server.app[CONFIG]
    _, link = await login_link(config, "liuyang")
    base = config.server.public_url
    async with mobile_browser(playwright_api) as context:
        page = await context.new_page()
        phone = Phone(page, mobile_shots(backend, "inbox"))

        await page.goto(link)
        await page.wait_for_selector(".weui-navbar")
        assert page.url == f"{base}/m/"  # the token left the address bar
        assert await page.locator(".lr-m-row").count() == 2
        assert "2" in await page.inner_text(".weui-badge")
        await phone.shot("inbox-pending")

        # The first MQL: its history, then 接受.
        await page.click(f"[data-lead='{ids['first']}']")
        await page.wait_for_selector("[data-accept]")
        body = await page.inner_text("body")
        for seen in ("赵敏", "杭州某某网络", f"{QUESTION} 0", "感谢咨询！第 0 个问题的资料已发送。",
                     "华东 · 互联网行业规则", "BANT 资格", "评分依据", "内容工具箱"):
            assert seen in body, seen
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the page is {width} px wide: it scrolls sideways on a phone"
        await phone.shot("lead")
        await phone.shot("lead-bant-score", at=".lr-m-bant")
        await phone.shot("lead-conversation", at=".lr-m-chat")
        await page.click("[data-share='case-sh']")
        await page.wait_for_selector("[data-link-for='case-sh'] input")
        shared = await page.input_value("[data-link-for='case-sh'] input")
        assert shared.startswith(f"{base}/c/2.")
        await phone.shot("lead-shared", at="[data-kind='case_study']")
        await page.click("[data-accept]")
        await page.wait_for_selector("#lr-toast:not([hidden]) >> text=已接受")
        await phone.shot("accepted-toast")
        await page.wait_for_selector(".lr-m-chip_status[data-status='accepted']")
        assert await page.locator("[data-accept]").count() == 0

        # The second: 退回 with a reason and a note.
        await page.goto(f"{base}/m/")
        await page.click(f"[data-lead='{ids['second']}']")
        await page.click("[data-return-open]")
        await page.wait_for_selector("#lr-return .weui-half-screen-dialog")
        await page.click("[data-return-confirm]")  # no reason chosen yet: said so, nothing sent
        await page.wait_for_selector("#lr-toast:not([hidden]) >> text=请选择退回原因")
        await page.click("label:has-text('预算不足')")
        await page.fill("#lr-return textarea", "明年才有预算，三月再联系")
        await phone.shot("return-dialog")
        await page.click("[data-return-confirm]")
        await page.wait_for_url("**/m/?tab=returned")
        returned = await page.inner_text(".weui-panel")
        assert "张伟" in returned and "预算不足" in returned
        await phone.shot("inbox-returned")
        await page.goto(f"{base}/m/?tab=accepted")
        assert await page.locator(".lr-m-row").count() == 2  # 赵敏 and the earlier 陈杰
        await phone.shot("inbox-accepted")
        assert phone.errors == []

    # The returned lead is back in the SDRs' queue: the console's list, stage "returned".
    assert (await sign_in(client, "chenjing")).status == 303
    queue = await (await client.get("/console/leads?stage=returned")).text()
    assert f'data-lead-id="{ids["second"]}"' in queue and f'data-lead-id="{ids["first"]}"' not in queue


async def test_the_chat_toolbar_opens_the_lead_of_the_chat(app_client, backend, playwright_api, fake) -> None:
    client = await live_client(app_client, fake, content={"items": []})
    ids = await seed_inbox(client)
    other = await salesperson(engine_of(client), "wangli", display_name="王丽")
    await routed_lead(engine_of(client), other, name="赵磊", external_userid="wm_zhaolei")
    config = client.server.app[CONFIG]
    base = config.server.public_url
    fake.state.oauth_openid = "LiuYang"  # whom WeCom's authorize page says the visitor is
    contact = ["wm_zhangwei"]

    async def stub_wx(route: Any) -> None:
        await route.fulfill(status=200, content_type="application/javascript", body=WX_STUB % json.dumps(contact[0]))

    async def stub_empty(route: Any) -> None:
        await route.fulfill(status=200, content_type="application/javascript", body="/* jwxwork stub */")

    async with mobile_browser(playwright_api) as context:
        page = await context.new_page()
        await page.route("https://res.wx.qq.com/**", stub_wx)
        await page.route("https://open.work.weixin.qq.com/**", stub_empty)
        phone = Phone(page, mobile_shots(backend, "chat"), expected=(403,))

        # Signed out: WeCom OAuth (the fake's authorize page) and back to the chat toolbar page.
        await page.goto(f"{base}/m/chat")
        await page.wait_for_url(f"**/m/leads/{ids['second']}")
        await page.wait_for_selector(".lr-m-hd__name")
        assert await page.inner_text(".lr-m-hd__name") == "张伟"
        assert "星河科技有限公司" in await page.inner_text(".lr-m-hd")
        await phone.shot("chat-lead")
        signed = json.loads(await page.evaluate("sessionStorage.getItem('agentConfig')"))
        ticket = (await client.server.app[REDIS].get(ticket_key(config.redis.key_prefix, CORP_ID, 1000002))).decode()
        assert signed["corpid"] == CORP_ID and signed["agentid"] == 1000002
        assert signed["jsApiList"] == ["getCurExternalContact"]
        assert signed["signature"] == signature(ticket, signed["nonceStr"], signed["timestamp"], f"{base}/m/chat")
        assert await page.evaluate("sessionStorage.getItem('invoked')") == "getCurExternalContact"

        # A chat with someone else's customer: refused.
        contact[0] = "wm_zhaolei"
        await page.goto(f"{base}/m/chat")
        await page.wait_for_selector(".weui-msg__title >> text=无权查看")
        await phone.shot("chat-not-mine")
        assert phone.errors == []
    assert fake.state.count("/cgi-bin/auth/getuserinfo") == 1 and fake.state.count("/cgi-bin/ticket/get") == 1


async def test_the_cards_return_button_opens_the_return_dialog(app_client, backend, playwright_api) -> None:
    """The card's 退回 is a jump button to /m/leads/{id}?return=1 (bot/handoff/cards.py): the dialog is open when
    the page loads, for a lead still to be decided; a decided lead shows its page without buttons or dialog."""
    client = await sandbox_client(app_client)
    ids = await seed_inbox(client)
    config = client.server.app[CONFIG]
    _, link = await login_link(config, "liuyang")
    base = config.server.public_url
    async with mobile_browser(playwright_api) as context:
        page = await context.new_page()
        phone = Phone(page, mobile_shots(backend, "card-return"))
        await page.goto(link)
        await page.wait_for_selector(".weui-navbar")

        await page.goto(f"{base}/m/leads/{ids['second']}?return=1")
        await page.wait_for_selector("#lr-return .weui-half-screen-dialog", state="visible")
        assert await page.is_visible("#lr-return-title")
        assert page.url == f"{base}/m/leads/{ids['second']}"  # the flag left: a reload shows the page itself
        await phone.shot("return-dialog-from-card")
        await page.click("#lr-return .weui-icon-btn[data-return-close]")
        await page.wait_for_selector("#lr-return", state="hidden")
        await page.reload()
        await page.wait_for_selector("[data-accept]")
        assert not await page.is_visible("#lr-return")

        await page.goto(f"{base}/m/leads/{ids['done']}?return=1")  # accepted already: nothing to return
        await page.wait_for_selector(".lr-m-chip_status[data-status='accepted']")
        assert await page.locator("#lr-return").count() == 0 and await page.locator("[data-accept]").count() == 0
        await phone.shot("return-link-decided-lead")
        assert phone.errors == []
