"""Conversation transcripts through the real callback endpoint: welcome by channel, intents with tracked
content, the fallback with SDR hand-off, consent keywords, erasure, menus and the content API."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from bot.ingress.security import Envelope
from bot.ingress.simulate import decrypt_reply, oa_event, oa_text
from bot.keys import ENGINE
from storage.models import ContentItemRow, Handoff, Identity, InboxEvent, Lead, Touchpoint
from tests.support.calls import AUTH, send_oa
from tests.support.helpers import OA_AES_KEY, OA_APP_ID, OA_TOKEN, count, lead_ids, wait_processed

ENVELOPE = Envelope(OA_TOKEN, OA_AES_KEY, OA_APP_ID, work=False)
PRICING_URL = "https://example.com/pricing-guide"

SECTIONS: dict[str, Any] = {
    "intents": [
        {"name": "pricing", "keywords": ["价格", "报价", "多少钱"], "content": ["pricing-guide"],
         "score_event": "visit_pricing"},
        {"name": "cases", "keywords": ["案例"], "reply": "这是我们的客户案例合集：……"},
    ],
    "content": {"items": [
        {"id": "pricing-guide", "kind": "article", "title": "产品价格指南", "url": PRICING_URL,
         "summary": "各版本价格与功能对比", "stage": "decision"},
        {"id": "hr-whitepaper", "kind": "whitepaper", "title": "2026 HR 数字化白皮书", "key": True,
         "url": "https://example.com/hr.pdf", "stage": "awareness"},
    ]},
    "welcome": {"oa_by_channel": {"expo": "感谢您在展会上关注我们！回复“白皮书”领取资料。"}},
    "menu": {"buttons": [{"name": "白皮书", "type": "click", "key": "content:hr-whitepaper"},
                         {"name": "价格", "type": "click", "key": "intent:pricing"}]},
}


@pytest.fixture
async def client(app_client):
    return await app_client(**SECTIONS)


async def say(client, xml: str) -> str:
    resp = await send_oa(client, xml)
    assert resp.status == 200
    return decrypt_reply(ENVELOPE, await resp.read())


def link_of(reply: str) -> str:
    url = re.search(r"<Url><!\[CDATA\[(.*?)\]\]></Url>", reply).group(1)
    return url[url.index("/c/"):]


async def touch_kinds(engine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(Touchpoint.kind).order_by(Touchpoint.id))).scalars())


async def test_expo_qr_follow_gets_the_channel_welcome(client):
    reply = await say(client, oa_event("o_expo", "subscribe", "qrscene_expo2026"))
    assert "感谢您在展会上关注我们" in reply
    other = await say(client, oa_event("o_plain", "subscribe"))
    assert "欢迎关注" in other  # the default welcome for followers without a known channel


async def test_pricing_question_answers_with_tracked_content_and_a_score_event(client):
    reply = await say(client, oa_text("o_price", "你们的产品价格多少", 1001))
    assert "<MsgType><![CDATA[news]]></MsgType>" in reply and "产品价格指南" in reply
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=1)
    assert await touch_kinds(engine) == ["oa_message_text", "visit_pricing"]
    assert await count(engine, Handoff) == 0

    resp = await client.get(link_of(reply), allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == PRICING_URL
    assert await touch_kinds(engine) == ["oa_message_text", "visit_pricing", "content_view"]
    (lead_id,) = await lead_ids(engine)
    async with engine.connect() as conn:
        detail = (await conn.execute(select(Touchpoint.detail, Touchpoint.lead_id)
                                     .where(Touchpoint.kind == "content_view"))).one()
    assert detail.lead_id == lead_id and detail.detail["content_id"] == "pricing-guide"


async def test_unknown_question_gets_the_fallback_and_reaches_an_sdr(client):
    reply = await say(client, oa_text("o_q", "你们公司在哪个城市？", 1002))
    assert "已转给专属顾问" in reply
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=1)
    resp = await client.get("/api/handoffs", headers=AUTH)
    (item,) = (await resp.json())["items"]
    assert item["message"] == "你们公司在哪个城市？" and item["reason"] == "no_intent"
    # A retry of the same message opens no second hand-off.
    await say(client, oa_text("o_q", "你们公司在哪个城市？", 1002))
    assert await count(engine, Handoff) == 1


async def test_unsubscribe_keyword_revokes_consent_and_only_explicit_consent_restores_it(client):
    engine = client.server.app[ENGINE]
    assert "已退订" in await say(client, oa_text("o_td", "退订", 1003))
    await wait_processed(engine, expected=1)
    (lead_id,) = await lead_ids(engine)
    lead = await (await client.get(f"/api/leads/{lead_id}", headers=AUTH)).json()
    assert lead["consent"] == "revoked"
    await say(client, oa_event("o_td", "subscribe"))  # following again is not consent
    await wait_processed(engine, expected=2)
    assert (await (await client.get(f"/api/leads/{lead_id}", headers=AUTH)).json())["consent"] == "revoked"
    assert "恢复" in await say(client, oa_text("o_td", "订阅", 1004))
    await wait_processed(engine, expected=3)
    assert (await (await client.get(f"/api/leads/{lead_id}", headers=AUTH)).json())["consent"] == "granted"
    assert "consent_revoked" in await touch_kinds(engine) and "consent_granted" in await touch_kinds(engine)


async def test_td_inside_a_sentence_is_not_an_unsubscribe(client):
    reply = await say(client, oa_text("o_td2", "TD是什么意思", 1005))
    assert "已退订" not in reply


async def test_deletion_request_erases_personal_data_and_keeps_anonymous_counts(client):
    engine = client.server.app[ENGINE]
    await say(client, oa_event("o_del", "subscribe", "qrscene_expo2026"))
    await say(client, oa_text("o_del", "我的电话是13800001111", 1006))
    await say(client, oa_text("o_del", "删除我的数据", 1007))
    await wait_processed(engine, expected=3)
    (lead_id,) = await lead_ids(engine)
    async with engine.connect() as conn:
        lead = (await conn.execute(select(Lead).where(Lead.id == lead_id))).one()
        payloads = list((await conn.execute(select(InboxEvent.payload))).scalars())
        details = list((await conn.execute(select(Touchpoint.detail))).scalars())
    assert lead.erased_at is not None and lead.consent == "revoked" and lead.display_name is None
    assert await count(engine, Identity) == 0
    assert payloads == ["", "", ""] and all(d == {} for d in details)
    assert await count(engine, Touchpoint) >= 4  # the counts stay, anonymous
    # The same WeChat user writing again is a new, unknown person.
    await say(client, oa_text("o_del", "你好", 1008))
    await wait_processed(engine, expected=4)
    assert len(await lead_ids(engine)) == 2


async def test_erase_api(client):
    engine = client.server.app[ENGINE]
    await say(client, oa_event("o_api_del", "subscribe"))
    await wait_processed(engine, expected=1)
    (lead_id,) = await lead_ids(engine)
    assert (await client.post(f"/api/leads/{lead_id}/erase")).status == 401
    assert (await client.post("/api/leads/999999/erase", headers=AUTH)).status == 404
    resp = await client.post(f"/api/leads/{lead_id}/erase", headers=AUTH)
    assert resp.status == 200 and await count(engine, Identity) == 0


async def test_tampered_or_unknown_links_are_404_and_store_nothing(client):
    reply = await say(client, oa_text("o_link", "价格", 1009))
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=1)
    before = await count(engine, Touchpoint)
    path = link_of(reply)
    body, sig = path[3:].split(".")
    for bad in (f"/c/{body}.{sig[:-2]}AA", f"/c/{body[:-3]}xyz.{sig}", "/c/garbage", "/c/a.b", f"/c/{sig}.{body}"):
        assert (await client.get(bad, allow_redirects=False)).status == 404, bad
    assert await count(engine, Touchpoint) == before


async def test_link_to_removed_content_is_404(client):
    reply = await say(client, oa_text("o_gone", "价格", 1010))
    resp = await client.put("/api/content", headers=AUTH, json={"replace_all": True, "items": [
        {"id": "other", "kind": "video", "title": "产品视频", "url": "https://example.com/v"}]})
    assert resp.status == 200
    assert (await client.get(link_of(reply), allow_redirects=False)).status == 404


async def test_menu_click_sends_content_and_scores_intents(client):
    reply = await say(client, oa_event("o_menu", "CLICK", "content:hr-whitepaper"))
    assert "HR 数字化白皮书" in reply
    resp = await client.get(link_of(reply), allow_redirects=False)
    assert resp.status == 302
    reply = await say(client, oa_event("o_menu", "CLICK", "intent:pricing"))
    assert "产品价格指南" in reply
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=2)
    kinds = await touch_kinds(engine)
    assert "content_download" in kinds and "visit_pricing" in kinds and kinds.count("oa_click") == 2
    async with engine.connect() as conn:
        detail = (await conn.execute(select(Touchpoint.detail).where(Touchpoint.kind == "content_download"))).scalar()
    assert detail["key"] is True


async def test_content_api_validates_and_stores(client):
    assert (await client.get("/api/content")).status == 401
    listed = (await (await client.get("/api/content", headers=AUTH)).json())["items"]
    assert {i["id"] for i in listed} == {"pricing-guide", "hr-whitepaper"}
    engine = client.server.app[ENGINE]
    bad = [{"id": "x", "kind": "podcast", "title": "t", "url": "https://e.com"}]
    resp = await client.put("/api/content", headers=AUTH, json={"items": bad})
    assert resp.status == 400 and "kind" in (await resp.json())["message"]
    resp = await client.put("/api/content", headers=AUTH, data="not json")
    assert resp.status == 400
    assert await count(engine, ContentItemRow) == 2
    good = [{"id": "case-acme", "kind": "case_study", "title": "<b>ACME</b> 案例", "url": "https://e.com/acme"}]
    assert (await client.put("/api/content", headers=AUTH, json={"items": good})).status == 200
    assert await count(engine, ContentItemRow) == 3


async def test_script_payload_in_a_message_is_stored_as_text(client):
    payload = "<script>alert(1)</script>你好"
    await say(client, oa_text("o_xss", payload, 1011))
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=1)
    resp = await client.get("/api/handoffs", headers=AUTH)
    assert (await resp.json())["items"][0]["message"] == payload
    assert resp.content_type == "application/json"


async def test_after_unsubscribing_no_marketing_message_is_sent(client):
    from bot.keys import SESSIONS
    from bot.outbox.enqueue import enqueue
    from storage.models import OutboxMessage

    engine = client.server.app[ENGINE]
    await say(client, oa_text("o_mkt", "你们的产品价格多少", 1012))
    await wait_processed(engine, expected=1)
    (lead_id,) = await lead_ids(engine)

    async def send(key: str) -> str:
        async with client.server.app[SESSIONS]() as session, session.begin():
            await enqueue(session, target="oa", method="oa.custom_text", idempotency_key=key, sandbox=True,
                          lead_id=lead_id, payload={"openid": "o_mkt", "content": "限时优惠", "marketing": True})
        async with engine.connect() as conn:
            return (await conn.execute(select(OutboxMessage.status)
                                       .where(OutboxMessage.idempotency_key == key))).scalar_one()

    assert await send("before") == "sandboxed"  # would be sent
    await say(client, oa_text("o_mkt", "退订", 1013))
    await wait_processed(engine, expected=2)
    assert await send("after") == "suppressed"


async def test_content_file_is_loaded_at_start_up(app_client, tmp_path):
    path = tmp_path / "content.toml"
    path.write_text('[[items]]\nid = "webinar-0312"\nkind = "livestream"\ntitle = "3月12日直播：HR 数字化"\n'
                    'url = "https://example.com/live"\nstage = "consideration"\n', encoding="utf-8")
    client = await app_client(content={"file": str(path)})
    listed = (await (await client.get("/api/content", headers=AUTH)).json())["items"]
    assert [(i["id"], i["kind"]) for i in listed] == [("webinar-0312", "livestream")]


async def test_a_bad_content_file_stops_start_up_naming_the_key(app_client, tmp_path):
    from bot.errors import ConfigError

    path = tmp_path / "content.toml"
    path.write_text('[[items]]\nid = "x"\nkind = "podcast"\ntitle = "t"\nurl = "https://e.com"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        await app_client(content={"file": str(path)})
    assert info.value.key == "content.file.items[0].kind"
