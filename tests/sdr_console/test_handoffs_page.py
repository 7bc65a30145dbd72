"""GET /console/handoffs: the queue page — tabs, the window state, the offers it makes, scoping, escaping."""

from __future__ import annotations

import re

from bot.keys import ENGINE
from tests.sdr_console.console_support import make_handoff, make_lead, make_user, sign_in


async def signed_in(app_client, username: str = "chenjing", role: str = "sdr", **sections):
    client = await app_client(**sections)
    user_id = await make_user(client.server.app[ENGINE], username, role=role, display_name="陈静")
    assert (await sign_in(client, username)).status == 303
    return client, user_id


async def page(client, query: str = "") -> str:
    resp = await client.get(f"/console/handoffs{query}")
    assert resp.status == 200
    return await resp.text()


def card(html: str, handoff_id: int) -> str:
    match = re.search(rf'<article class="card lr-handoff" id="handoff-{handoff_id}".*?</article>', html, re.S)
    assert match, f"no card for hand-off {handoff_id}"
    return match[0]


async def test_the_queue_shows_questions_with_their_window_and_offers(app_client) -> None:
    client, _ = await signed_in(app_client)
    inside = await make_handoff(client, await make_lead(client, "张伟"), "价格是多少？", last_oa_hours_ago=6)
    outside = await make_handoff(client, await make_lead(client, "李娜"), "能开发票吗？", last_oa_hours_ago=60)
    wecom = await make_handoff(client, await make_lead(client, "王芳"), "什么时候发货？", last_oa_hours_ago=None,
                               wecom=("wm-wf", "sales_chen"))
    html = await page(client)
    assert "待处理" in html and "我认领的" in html and "已关闭" in html
    one = card(html, inside)
    assert "价格是多少？" in one and "张伟" in one and "公众号" in one and "48 小时客服窗口剩余 42 小时" in one
    assert f'hx-post="/api/handoffs/{inside}/claim"' in one and f'hx-post="/api/handoffs/{inside}/reply"' in one
    assert 'value="auto"' in one and "发送客服消息" in one
    two = card(html, outside)
    assert "已超出 48 小时窗口" in two and "微信不再允许发送客服消息" in two and "改用模板消息发送" in two
    assert 'value="template"' in two and "尚未配置模板" in two and " disabled>" in two  # no template configured
    three = card(html, wecom)
    assert "企业微信" in three and "sales_chen" in three and "需其在企业微信中确认发送" in three


async def test_with_a_template_configured_the_offer_can_be_taken(app_client) -> None:
    client, _ = await signed_in(app_client, outbound={"fallback_template_id": "TPL-1"})
    outside = await make_handoff(client, await make_lead(client, "李娜"), last_oa_hours_ago=60)
    two = card(await page(client), outside)
    assert "可以改用模板消息发送" in two and " disabled>" not in two


async def test_tabs_mine_and_closed(app_client) -> None:
    client, user_id = await signed_in(app_client)
    hid = await make_handoff(client, await make_lead(client, "张伟"), "问题甲")
    assert "您目前没有认领的问题" in await page(client, "?tab=mine")
    html = await page(client)
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', html)[1]
    resp = await client.post(f"/api/handoffs/{hid}/claim", headers={"X-CSRF-Token": csrf})
    assert resp.status == 200
    assert "问题甲" in await page(client, "?tab=mine") and "我已认领" in await page(client, "?tab=mine")
    resp = await client.post(f"/api/handoffs/{hid}/reply", json={"text": "您好", "mode": ""},
                             headers={"X-CSRF-Token": csrf})
    assert resp.status == 200
    closed = await page(client, "?tab=closed")
    assert "问题甲" in closed and "已由 陈静" in closed and "回复并关闭" in closed
    assert "问题甲" not in await page(client)
    fragment = await (await client.get("/console/handoffs/list?tab=closed")).text()
    assert "问题甲" in fragment and "<html" not in fragment


async def test_questions_render_as_text(app_client) -> None:
    client, _ = await signed_in(app_client)
    lead = await make_lead(client, '<img src=x onerror=alert(1)>')
    await make_handoff(client, lead, "<script>alert(1)</script>")
    await make_handoff(client, lead, '<img src=x onerror=alert(1)>')
    html = await page(client)
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html


async def test_a_salesperson_sees_only_their_own_questions(app_client) -> None:
    client, user_id = await signed_in(app_client, "zhaomin", "sales")
    await make_handoff(client, await make_lead(client, "自己的", owner=user_id), "我的客户的问题")
    await make_handoff(client, await make_lead(client, "别人的"), "别人的客户的问题")
    html = await page(client)
    assert "我的客户的问题" in html and "别人的客户的问题" not in html


async def test_signed_out_goes_to_sign_in(app_client) -> None:
    client = await app_client()
    for path in ("/console/handoffs", "/console/handoffs/list"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303 and "/console/login" in resp.headers["Location"]
