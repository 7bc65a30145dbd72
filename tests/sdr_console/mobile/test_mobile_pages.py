"""The mobile inbox's pages: the tabs (own assignments only, newest first, paginated), the lead page (the 360's
sections, the decision buttons), another's lead refused (403, audited), the content links and the chat toolbar's
look-up by external_userid."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from bot.keys import CONFIG, SESSIONS
from leads.access import LEAD_READ
from storage.models import Assignment, Touchpoint, utcnow
from tests.sdr_console.console_support import audit_rows
from tests.sdr_console.lead_seed import seed_360
from tests.sdr_console.mobile.mobile_support import engine_of, routed_lead, salesperson, sandbox_client, sign_in_by_link

ROW = re.compile(r'data-lead="(\d+)"')


async def world(client):  # noqa: ANN201
    engine = engine_of(client)
    me = await salesperson(engine, "liuyang", display_name="刘洋")
    other = await salesperson(engine, "wangli", display_name="王丽")
    return me, other


async def test_tabs_list_only_my_assignments_newest_first(app_client):
    client = await sandbox_client(app_client)
    engine = engine_of(client)
    me, other = await world(client)
    t0 = utcnow() - timedelta(hours=3)
    older, _ = await routed_lead(engine, me, name="张伟", company="星河科技", at=t0, score=(72, 65, "hot"))
    newer, _ = await routed_lead(engine, me, name="李娜", company="华腾智能", at=t0 + timedelta(minutes=30))
    accepted, _ = await routed_lead(engine, me, name="陈杰", status="accepted", at=t0)
    returned, _ = await routed_lead(engine, me, name="杨静", status="returned", at=t0)
    theirs, _ = await routed_lead(engine, other, name="赵磊", at=t0 + timedelta(hours=1))
    await sign_in_by_link(client, "liuyang")
    pending = await client.get("/m/")
    html = await pending.text()
    assert pending.status == 200 and ROW.findall(html) == [str(newer), str(older)]
    assert "星河科技" in html and "weui-navbar" in html and 'class="weui-badge">2<' in html
    assert f'href="/m/leads/{older}"' in html and str(theirs) not in ROW.findall(html)
    assert ROW.findall(await (await client.get("/m/?tab=accepted")).text()) == [str(accepted)]
    returned_html = await (await client.get("/m/?tab=returned")).text()
    assert ROW.findall(returned_html) == [str(returned)] and "预算不足" in returned_html
    assert f'href="/m/leads/{returned}"' not in returned_html  # back with the SDRs: listed, not opened
    for bad in ("/m/?tab=all", "/m/?tab=pending&before=xyz", "/m/?before=1.99999999999999999999"):
        assert (await client.get(bad)).status == 400, bad


async def test_the_pending_tab_pages_with_a_keyset_cursor(app_client):
    client = await sandbox_client(app_client)
    engine = engine_of(client)
    me, _ = await world(client)
    t0 = utcnow() - timedelta(days=1)
    ids = [(await routed_lead(engine, me, name=f"潜客{i}", at=t0 + timedelta(minutes=i // 2)))[0] for i in range(45)]
    await sign_in_by_link(client, "liuyang")
    seen, url = [], "/m/?tab=pending"
    while url:
        html = await (await client.get(url)).text()
        seen += [int(i) for i in ROW.findall(html)]
        more = re.search(r'href="(/m/\?tab=pending&amp;before=[^"]+)"', html)
        url = more[1].replace("&amp;", "&") if more else None
    assert seen == sorted(ids, key=lambda i: (ids.index(i) // 2, i), reverse=True)  # newest first, ties by id


async def test_the_lead_page_shows_the_whole_history_and_the_decision(app_client):
    client = await sandbox_client(app_client)
    engine = engine_of(client)
    me, _ = await world(client)
    lead = await seed_360(engine, owner=me, name="赵敏", text="请问支持多少人同时在线？", replies=True)
    async with client.server.app[SESSIONS]() as session, session.begin():
        session.add(Assignment(lead_id=lead, user_id=me, rule="routing.rules[0]", reason="华东制造业",
                               status="pending", assigned_at=utcnow()))
    await sign_in_by_link(client, "liuyang")
    resp = await client.get(f"/m/leads/{lead}")
    html = await resp.text()
    assert resp.status == 200, html
    for expected in ("赵敏", "杭州某某网络", "BANT 资格", "评分依据", "对话记录", "请问支持多少人同时在线？ 0",
                     "感谢咨询！第 0 个问题的资料已发送。", "华东制造业", "data-accept", "data-return-open",
                     "招聘系统选型指南", "客户案例", "3 分钟产品演示", "data-share=\"case-sh\""):
        assert expected in html, expected
    for reason in client.server.app[CONFIG].handoff.return_reasons:
        assert f'value="{reason}"' in html
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'; script-src 'self';")
    assert "<script>" not in html and "style=" not in html  # CSP-safe: no inline script or style


async def test_another_salespersons_lead_is_refused_and_audited(app_client):
    client = await sandbox_client(app_client)
    engine = engine_of(client)
    _, other = await world(client)
    theirs, _ = await routed_lead(engine, other, name="赵磊", external_userid="wm_theirs")
    await sign_in_by_link(client, "liuyang")
    resp = await client.get(f"/m/leads/{theirs}")
    assert resp.status == 403 and "无权查看" in await resp.text()
    chat = await client.get("/m/chat/lead?external_userid=wm_theirs", allow_redirects=False)
    assert chat.status == 403
    denied = await audit_rows(client, action=LEAD_READ, outcome="denied")
    assert [(e.target_id, e.actor_label) for e in denied] == [(str(theirs), "liuyang")] * 2
    link = await client.post(f"/api/leads/{theirs}/content-links", json={"content_id": "case-sh"},
                             headers={"X-CSRF-Token": await csrf(client)})
    assert link.status == 403
    assert (await client.get("/m/leads/999999")).status == 404
    assert (await client.get("/m/leads/abc")).status == 404


async def csrf(client) -> str:  # noqa: ANN001
    html = await (await client.get("/m/")).text()
    return re.search(r'data-csrf="([^"]+)"', html)[1]


async def test_the_chat_toolbar_finds_the_lead_by_its_external_contact(app_client):
    client = await sandbox_client(app_client)
    engine = engine_of(client)
    me, _ = await world(client)
    mine, _ = await routed_lead(engine, me, name="张伟", external_userid="wm_zhangwei")
    await sign_in_by_link(client, "liuyang")
    resp = await client.get("/m/chat/lead?external_userid=wm_zhangwei", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/m/leads/{mine}"
    unknown = await client.get("/m/chat/lead?external_userid=wm_nobody")
    assert unknown.status == 404 and "暂无线索" in await unknown.text()
    assert (await client.get("/m/chat/lead?external_userid=")).status == 400
    page = await client.get("/m/chat")
    assert page.status == 200 and "res.wx.qq.com" in page.headers["Content-Security-Policy"]
    assert '<script src="https://res.wx.qq.com/open/js/jweixin-1.2.0.js"' in await page.text()
    sig = await client.get("/m/api/jssdk-signature?url=" + str(client.make_url("/m/chat")))
    assert sig.status == 503  # sandbox: no WeCom app to sign with


async def test_a_shared_content_link_is_attributed_to_the_lead_and_the_salesperson(app_client):
    client = await sandbox_client(app_client)
    engine = engine_of(client)
    me, _ = await world(client)
    mine, _ = await routed_lead(engine, me, name="张伟")
    await sign_in_by_link(client, "liuyang")
    token = await csrf(client)
    assert (await client.post(f"/api/leads/{mine}/content-links", json={"content_id": "case-sh"})).status == 403
    resp = await client.post(f"/api/leads/{mine}/content-links", json={"content_id": "case-sh"},
                             headers={"X-CSRF-Token": token})
    body = await resp.json()
    assert resp.status == 200 and body["title"].startswith("上海某制造企业")
    assert body["url"].startswith(client.server.app[CONFIG].server.public_url + "/c/2.")
    missing = await client.post(f"/api/leads/{mine}/content-links", json={"content_id": "nope"},
                                headers={"X-CSRF-Token": token})
    assert missing.status == 404
    opened = await client.get(body["url"].removeprefix(client.server.app[CONFIG].server.public_url),
                              allow_redirects=False)
    assert opened.status == 302 and opened.headers["Location"] == "https://example.com/case"
    async with client.server.app[SESSIONS]() as session:
        views = (await session.execute(select(Touchpoint).where(Touchpoint.lead_id == mine))).scalars().all()
    assert [(t.kind, t.source_code, t.detail["content_id"]) for t in views] == [
        ("content_view", f"sales:{me}", "case-sh")]
