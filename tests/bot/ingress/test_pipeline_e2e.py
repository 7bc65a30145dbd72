"""Scenarios through the real HTTP endpoints: sources, retries, concurrency, the API."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.config.capture import WelcomeConfig
from bot.ingress.security import Envelope
from bot.ingress.simulate import decrypt_reply, oa_event, oa_text, wecom_contact_event
from bot.keys import ENGINE
from storage.models import InboxEvent, Lead, Touchpoint
from tests.support.calls import AUTH, lead_json, send_oa, send_wecom
from tests.support.helpers import API_TOKEN, CORP_ID, OA_AES_KEY, OA_APP_ID, OA_TOKEN, count, wait_processed

ENVELOPE = Envelope(OA_TOKEN, OA_AES_KEY, OA_APP_ID, work=False)


@pytest.fixture
async def client(app_client):
    return await app_client()


async def only_lead(client) -> dict:
    resp = await client.get("/api/leads", headers=AUTH)
    items = (await resp.json())["items"]
    assert len(items) == 1, items
    return await lead_json(client, items[0]["id"])


async def test_subscribe_via_qr_scene_creates_lead_with_channel(client):
    resp = await send_oa(client, oa_event("o_zhang", "subscribe", "qrscene_expo2026"))
    assert resp.status == 200
    assert WelcomeConfig().oa_default in decrypt_reply(ENVELOPE, await resp.read())
    await wait_processed(client.server.app[ENGINE], expected=1)
    lead = await only_lead(client)
    assert [(i["kind"], i["value"]) for i in lead["identities"]] == [("oa_openid", "o_zhang")]
    (tp,) = lead["touchpoints"]
    assert (tp["kind"], tp["channel"], tp["scene"], tp["source_code"]) == ("oa_subscribe", "expo", "event", "expo2026")


async def test_scan_unknown_scene_keeps_the_code(client):
    await send_oa(client, oa_event("o_li", "subscribe"))
    await send_oa(client, oa_event("o_li", "SCAN", "booth_b12"))
    await wait_processed(client.server.app[ENGINE], expected=2)
    lead = await only_lead(client)
    channels = [(t["kind"], t["channel"]) for t in lead["touchpoints"]]
    assert ("oa_scan", "unknown:booth_b12") in channels
    assert ("oa_subscribe", "wechat_oa") in channels


async def test_wecom_add_contact_with_state_creates_lead_with_channel(client):
    resp = await send_wecom(client, wecom_contact_event(CORP_ID, "add_external_contact", "sales_chen", "wm_sun",
                                                        state="sales_card", welcome_code="WC1"))
    assert resp.status == 200
    await wait_processed(client.server.app[ENGINE], expected=1)
    lead = await only_lead(client)
    assert [(i["kind"], i["value"]) for i in lead["identities"]] == [("wecom_external", "wm_sun")]
    (tp,) = lead["touchpoints"]
    assert (tp["channel"], tp["scene"], tp["detail"]["owner"]) == ("referral", "event", "sales_chen")


async def test_unsubscribe_and_del_follow_user_revoke_consent(client):
    await send_oa(client, oa_event("o_zhao", "subscribe"))
    await send_oa(client, oa_event("o_zhao", "unsubscribe"))
    await send_wecom(client, wecom_contact_event(CORP_ID, "add_external_contact", "u1", "wm_qian"))
    await send_wecom(client, wecom_contact_event(CORP_ID, "del_follow_user", "u1", "wm_qian"))
    await wait_processed(client.server.app[ENGINE], expected=4)
    resp = await client.get("/api/leads", headers=AUTH)
    items = (await resp.json())["items"]
    assert len(items) == 2 and all(i["consent"] == "revoked" for i in items)
    kinds = [sorted({t["kind"] for t in (await lead_json(client, i["id"]))["touchpoints"]}) for i in items]
    assert sorted(kinds) == [["oa_subscribe", "oa_unsubscribe"], ["wecom_add_contact", "wecom_del_follow_user"]]


async def test_same_message_three_times_is_one_touchpoint(client):
    xml = oa_text("o_wang", "你们的产品价格多少", 77001)
    answers = [decrypt_reply(ENVELOPE, await (await send_oa(client, xml)).read()) for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=1)
    assert await count(engine, InboxEvent) == 1
    assert await count(engine, Touchpoint) == 1


async def test_same_event_three_times_concurrently_is_one_touchpoint(client):
    xml = oa_event("o_wu", "subscribe", "qrscene_expo2026", at=1_760_000_000)
    responses = await asyncio.gather(*(send_oa(client, xml) for _ in range(3)))
    assert [r.status for r in responses] == [200, 200, 200]
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=1)
    assert await count(engine, InboxEvent) == 1
    assert await count(engine, Touchpoint) == 1


async def test_events_differing_only_in_event_key_are_both_kept(client):
    # The bare FromUserName + CreateTime pair collides in practice; Event and EventKey tell them apart.
    await send_oa(client, oa_event("o_k", "CLICK", "menu_a", at=1_760_000_000))
    await send_oa(client, oa_event("o_k", "CLICK", "menu_b", at=1_760_000_000))
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=2)
    assert await count(engine, Touchpoint) == 2


async def test_two_hundred_concurrent_distinct_messages(client):
    xmls = [oa_text(f"o_user_{i % 50}", f"消息 {i}", 500_000 + i) for i in range(200)]
    responses = await asyncio.gather(*(send_oa(client, x) for x in xmls))
    assert all(r.status == 200 for r in responses)
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=200, timeout=60)
    assert await count(engine, InboxEvent) == 200
    assert await count(engine, Touchpoint) == 200
    assert await count(engine, Lead) == 50  # one lead per sender, even when its messages race


async def test_api_requires_a_bearer_token(client):
    for path in ("/api/leads", "/api/leads/1"):
        assert (await client.get(path)).status == 401
        assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status == 401
        assert (await client.get(path, headers={"Authorization": API_TOKEN})).status == 401


async def test_api_search_paging_and_errors(client):
    for i in range(5):
        await send_oa(client, oa_event(f"o_page_{i}", "subscribe"))
    await wait_processed(client.server.app[ENGINE], expected=5)
    page = (await (await client.get("/api/leads?limit=2&offset=1", headers=AUTH)).json())["items"]
    assert len(page) == 2
    assert {"id", "display_name", "stage", "created_at", "last_activity_at"} <= set(page[0])
    found = (await (await client.get("/api/leads?q=o_page_3", headers=AUTH)).json())["items"]
    assert len(found) == 1
    none = (await (await client.get("/api/leads?q=%25", headers=AUTH)).json())["items"]
    assert none == []  # a literal %, not a wildcard
    assert (await client.get("/api/leads?limit=0", headers=AUTH)).status == 400
    assert (await client.get("/api/leads?limit=abc", headers=AUTH)).status == 400
    assert (await client.get("/api/leads/999999", headers=AUTH)).status == 404
    assert (await client.get("/api/leads/abc", headers=AUTH)).status == 404


async def test_healthz_reports_both_stores(client):
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_touchpoint_references_its_inbox_row(client):
    await send_oa(client, oa_text("o_ref", "hello", 88001))
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=1)
    async with engine.connect() as conn:
        inbox_id = (await conn.execute(select(InboxEvent.id))).scalar_one()
        tp_inbox = (await conn.execute(select(Touchpoint.inbox_id))).scalar_one()
    assert tp_inbox == inbox_id
