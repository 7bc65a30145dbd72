"""The console's batch-message pages on both backends (sdr_console/pages/batches.py, batch_compose.py):
/console/batches lists the batches with their outcome counts; /console/batches/new previews a segment's
recipients per channel and member with every exclusion explained, then sends (a form post with the CSRF token);
/console/batches/{id} shows the member tasks and each recipient's outcome. Salespeople get the 403 page
(audited) and no link. Then a real browser previews and sends.

Screenshots: /tmp/batch_new.png, /tmp/batch_detail.png, /tmp/batches_page.png and
tests/artifacts/console/<backend>/batch*.png (look at them).
"""

from __future__ import annotations

import re
import shutil

from bot.keys import ENGINE, SESSIONS
from storage.models import Batch, BatchRecipient, OutboxMessage
from tests.bot.batches.seed import count
from tests.sdr_console.console_support import (
    PASSWORD,
    audit_rows,
    bearer,
    call,
    csrf_of,
    make_user,
    sign_in,
    user_with_token,
)
from tests.sdr_console.test_batches_api import BATCHES, CONFIG_SECTIONS, seed, segment
from tests.support.browser import desktop_browser, screenshots, signed_in_page

NEW = "/console/batches/new"
SEEDED_BATCHES = 3  # tests/sdr_console/test_batches_api.py seed: three past sends


async def world(client) -> dict[str, int]:
    engine = client.server.app[ENGINE]
    ids = await seed(client)
    ids["sdr"] = await make_user(engine, "chenjing", role="sdr", display_name="陈静")
    ids["sales"] = await make_user(engine, "wanglei", role="sales", display_name="王磊")
    ids["segment"] = await segment(client, name="华东展会潜客")
    return ids


async def form_post(client, data: dict[str, object]):  # noqa: ANN201
    start = await client.get(NEW)
    return await client.post(NEW, data={"csrf_token": csrf_of(await start.text()), **data}, allow_redirects=False)


async def test_the_list_shows_each_batch_with_outcome_counts(app_client) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    ids = await world(client)
    assert (await sign_in(client, "chenjing")).status == 303
    resp = await client.get("/console/batches")
    html = await resp.text()
    assert resp.status == 200 and 'href="/console/batches" aria-current="page"' in html and "群发消息" in html
    assert html.count("data-batch=") == SEEDED_BATCHES and 'id="batch-new"' in html
    _, token = await user_with_token(client, "api_sdr", "sdr")
    status, body = await call(client, "POST", BATCHES, bearer(token), json={"segment_id": ids["segment"],
                                                                            "text": "{name}您好"})
    assert status == 202
    html = await (await client.get("/console/batches")).text()
    row = re.search(rf'<tr data-batch="{body["id"]}">.*?</tr>', html, flags=re.S)[0]
    assert "华东展会潜客" in row and f'href="/console/batches/{body["id"]}"' in row
    assert 'data-outcome="excluded">已排除 4<' in row and 'data-outcome="sandboxed">沙箱未发出 2<' in row


async def test_a_preview_shows_recipients_and_every_exclusion_and_writes_nothing(app_client) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    ids = await world(client)
    assert (await sign_in(client, "chenjing")).status == 303
    page = await client.get(NEW)
    assert page.status == 200 and "华东展会潜客" in await page.text()
    resp = await form_post(client, {"segment_id": ids["segment"], "text": "{name}您好", "channels": ["wecom", "oa"],
                                    "action": "preview"})
    html = await resp.text()
    assert resp.status == 200 and 'id="batch-preview"' in html
    assert re.search(r'id="preview-recipients">3<', html)
    found = re.findall(r'data-reason="(\w+)">\s*<div[^>]*><span>([^<]+)</span><span[^>]*>(\d+) 位', html)
    assert {reason: n for reason, _, n in found} == {"unsubscribed": "1", "no_wecom_relationship": "1",
                                                      "receive_limit": "1", "frequency_cap": "1"}
    assert "本期已达企业微信客户群发接收上限" in html and "已退订（或取消关注），不发送营销消息" in html
    assert f'href="/console/leads/{ids["limit"]}"' in html  # the excluded leads are named, linked
    assert "alice_wx" in html and "bob_wx" in html and 'id="preview-text">客户您好<' in html
    assert 'value="{name}您好"' not in html and "{name}您好</textarea>" in html  # the text is kept in the form
    async with client.server.app[SESSIONS]() as session:
        assert await count(session, Batch) == SEEDED_BATCHES and await count(session, OutboxMessage) == 0


async def test_sending_creates_the_batch_and_its_page_shows_tasks_and_outcomes(app_client) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    ids = await world(client)
    assert (await sign_in(client, "chenjing")).status == 303
    resp = await form_post(client, {"segment_id": ids["segment"], "text": "{sender}的新资料", "content_id": "wp1",
                                    "channels": ["wecom", "oa"], "action": "send"})
    assert resp.status == 303
    location = resp.headers["Location"]
    batch_id = int(re.fullmatch(r"/console/batches/(\d+)\?sent=1", location)[1])
    async with client.server.app[SESSIONS]() as session:
        batch = await session.get(Batch, batch_id)
        assert batch is not None and batch.created_by_user_id == ids["sdr"] and batch.message["content_id"] == "wp1"
        assert await count(session, BatchRecipient, batch_id=batch_id) == 7
    (entry,) = await audit_rows(client, action="batch.send")
    assert (entry.actor_user_id, entry.target_id) == (ids["sdr"], str(batch_id))
    html = await (await client.get(location)).text()
    assert 'id="batch-sent"' in html and "华东展会潜客" in html and "陈静" in html
    assert html.count("data-task=") == 2 and "alice_wx" in html and "沙箱模式：未发出" in html
    assert html.count("data-recipient=") == 7 and f'href="/console/leads/{ids["capped"]}"' in html
    assert "近 7 天收到的营销消息已达频次上限" in html and 'data-outcome="excluded"' in html
    assert "白皮书" in html  # the content link


async def test_bad_input_is_explained_on_the_form(app_client) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    ids = await world(client)
    assert (await sign_in(client, "chenjing")).status == 303
    for data, status, says in (
            ({"segment_id": ids["segment"], "text": "", "channels": "wecom"}, 400, "请填写消息内容"),
            ({"segment_id": ids["segment"], "text": "hi"}, 400, "至少选择一个渠道"),
            ({"segment_id": ids["segment"], "text": "您好 {phone}", "channels": "oa"}, 400, "未知的个性化字段"),
            ({"segment_id": "999999", "text": "hi", "channels": "oa"}, 404, "分群 999999 不存在")):
        for action in ("preview", "send"):
            resp = await form_post(client, {**data, "action": action})
            assert resp.status == status and says in await resp.text(), (data, action)
    for path, status in (("/console/batches/abc", 400), ("/console/batches/999999", 404),
                         ("/console/batches/1?after=x", 400), ("/console/batches?before=0", 400)):
        assert (await client.get(path)).status == status, path
    async with client.server.app[SESSIONS]() as session:
        assert await count(session, Batch) == SEEDED_BATCHES


async def test_a_post_without_the_csrf_token_is_refused(app_client) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    ids = await world(client)
    assert (await sign_in(client, "chenjing")).status == 303
    data = {"segment_id": ids["segment"], "text": "hi", "channels": "wecom", "action": "send"}
    for token in (None, "forged"):
        resp = await client.post(NEW, data=data if token is None else {**data, "csrf_token": token},
                                 allow_redirects=False)
        assert resp.status == 403 and "CSRF" in await resp.text()
    assert len(await audit_rows(client, action="console.csrf_refused")) == 2
    async with client.server.app[SESSIONS]() as session:
        assert await count(session, Batch) == SEEDED_BATCHES


async def test_salespeople_get_a_403_audited_and_no_link(app_client) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    ids = await world(client)
    assert (await sign_in(client, "wanglei")).status == 303
    start = await client.get("/console/")
    start_html = await start.text()
    assert 'href="/console/batches"' not in start_html and 'href="/console/tasks"' in start_html
    for path in ("/console/batches", NEW, "/console/batches/1"):
        resp = await client.get(path)
        assert resp.status == 403 and "无权访问" in await resp.text(), path
    resp = await client.post(NEW, data={"csrf_token": csrf_of(start_html), "segment_id": ids["segment"],
                                        "text": "hi", "channels": "oa", "action": "send"}, allow_redirects=False)
    assert resp.status == 403
    denied = await audit_rows(client, outcome="denied")
    assert [(e.action, e.actor_user_id) for e in denied] == [
        (action, ids["sales"]) for action in ("batch.read", "batch.send", "batch.read", "batch.send")]
    async with client.server.app[SESSIONS]() as session:
        assert await count(session, Batch) == SEEDED_BATCHES


async def test_an_sdr_previews_and_sends_in_a_browser(app_client, backend, playwright_api) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    ids = await world(client)
    base = str(client.make_url("")).rstrip("/")
    shots = screenshots(backend)
    async with desktop_browser(playwright_api) as context:
        page, errors = await signed_in_page(context, base, "chenjing", PASSWORD)
        await page.click("nav a:has-text('群发消息')")
        await page.wait_for_selector("#batches")
        await page.click("#batch-new")
        await page.wait_for_selector("#batch-form")
        assert await page.is_disabled("#batch-send-btn")  # a preview first
        await page.select_option("#batch-segment", str(ids["segment"]))
        await page.fill("#batch-text", "{name}您好，{sender}为您准备了《2026 人力资源数字化白皮书》，欢迎查阅。")
        await page.select_option("#batch-link", "wp1")
        await page.click("#batch-preview-btn")
        await page.wait_for_selector("#batch-preview")
        assert await page.locator("#preview-exclusions li").count() == 4
        assert "本期已达企业微信客户群发接收上限" in await page.inner_text("#preview-exclusions")
        await page.screenshot(path=str(shots / "batch_new.png"), full_page=True)
        shutil.copy(shots / "batch_new.png", "/tmp/batch_new.png")
        await page.click("#batch-send-btn")
        await page.wait_for_selector("#batch-sent")
        assert await page.locator("#batch-tasks tbody tr").count() == 2
        assert await page.locator("#batch-recipients tbody tr").count() == 7
        await page.screenshot(path=str(shots / "batch_detail.png"), full_page=True)
        shutil.copy(shots / "batch_detail.png", "/tmp/batch_detail.png")
        await page.click("a:has-text('全部群发消息')")
        await page.wait_for_selector("#batches")
        assert await page.locator("#batches tbody tr").count() == SEEDED_BATCHES + 1
        await page.screenshot(path=str(shots / "batches.png"), full_page=True)
        shutil.copy(shots / "batches.png", "/tmp/batches_page.png")
        await page.click("#batches tbody tr:first-child a.fw-semibold")
        await page.wait_for_selector("#batch-recipients")
        assert errors == []
