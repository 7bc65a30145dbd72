"""Identity merge through the real endpoints, with UnionIDs from the (fake) WeChat and WeCom APIs."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.ingress.simulate import oa_event, oa_text, wecom_contact_event
from bot.keys import ENGINE, SESSIONS
from leads.identity import OA_OPENID, PHONE, UNIONID, WECOM_EXTERNAL, IdentityKey
from storage.models import Identity, Lead, LeadMerge
from storage.repos.leads import LeadRepository
from tests.support.calls import AUTH, lead_json, send_oa, send_wecom
from tests.support.fakes.wechat_server import FakeWeChatServer
from tests.support.fakes.wechat_state import FakeWeChatState
from tests.support.helpers import CORP_ID, OA_APP_ID, count, lead_ids, wait_processed


@pytest.fixture
async def fake():
    state = FakeWeChatState(oa_apps={OA_APP_ID: "oa-secret"}, corp_id=CORP_ID)
    async with FakeWeChatServer(state) as server:
        yield server


@pytest.fixture
async def client(app_client, fake):
    return await app_client(api_base_url=fake.base_url)


async def test_oa_follower_who_adds_wecom_with_the_same_unionid_is_one_lead(client, fake):
    fake.state.register_user("o_zhang", unionid="u_zhang")
    fake.state.register_external_contact("wm_zhang", "张伟", unionid="u_zhang")
    engine = client.server.app[ENGINE]

    await send_oa(client, oa_event("o_zhang", "subscribe", "qrscene_expo2026"))
    await wait_processed(engine, expected=1)
    (first_id,) = await lead_ids(engine)
    await send_wecom(client, wecom_contact_event(CORP_ID, "add_external_contact", "sales_chen", "wm_zhang",
                                                 state="sales_card"))
    await wait_processed(engine, expected=2)

    assert await lead_ids(engine) == [first_id]  # the OA lead was there first and keeps its id
    lead = await lead_json(client, first_id)
    assert {(i["kind"], i["value"]) for i in lead["identities"]} == {
        ("oa_openid", "o_zhang"), ("unionid", "u_zhang"), ("wecom_external", "wm_zhang")}
    assert lead["display_name"] == "张伟"
    assert [t["channel"] for t in lead["touchpoints"]] == ["expo", "referral"]
    assert fake.state.count("/cgi-bin/user/info") == 1
    assert fake.state.count("/cgi-bin/externalcontact/get") == 1


async def test_two_existing_leads_linked_later_merge_into_the_older(client, fake):
    # The WeCom contact arrives first, without a UnionID visible yet; the OA follow comes later.
    fake.state.register_external_contact("wm_li", "李娜", unionid=None)
    fake.state.register_user("o_li", unionid="u_li")
    engine = client.server.app[ENGINE]
    now = int(time.time())
    await send_wecom(client, wecom_contact_event(CORP_ID, "add_external_contact", "sales_chen", "wm_li",
                                                 at=now - 120))
    await send_oa(client, oa_event("o_li", "subscribe", at=now - 60))
    await send_oa(client, oa_text("o_li", "你好", 990001, at=now - 30))
    await wait_processed(engine, expected=3)
    # A lead is as old as its first touch: the WeCom contact's lead is the older one.
    async with engine.connect() as conn:
        older = (await conn.execute(select(Identity.lead_id).where(Identity.value == "wm_li"))).scalar_one()
        newer = (await conn.execute(select(Identity.lead_id).where(Identity.value == "o_li"))).scalar_one()

    # The customer is added again by another member; now WeCom reports the UnionID.
    fake.state.register_external_contact("wm_li", "李娜", unionid="u_li")
    await send_wecom(client, wecom_contact_event(CORP_ID, "add_external_contact", "sales_wu", "wm_li"))
    await wait_processed(engine, expected=4)

    assert await lead_ids(engine) == [older]
    lead = await lead_json(client, older)
    assert {i["kind"] for i in lead["identities"]} == {"wecom_external", "oa_openid", "unionid"}
    assert len(lead["touchpoints"]) == 4  # history moved over in full
    (merge,) = lead["merges"]
    assert (merge["survivor_id"], merge["merged_id"], merge["identity_kind"]) == (older, newer, "unionid")
    assert merge["moved"]["touchpoints"] == 2
    moved = await client.get(f"/api/leads/{newer}", headers=AUTH, allow_redirects=False)
    assert moved.status == 308 and moved.headers["Location"] == f"/api/leads/{older}"


async def test_conflicting_verified_phones_are_not_merged(client, fake):
    engine = client.server.app[ENGINE]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    async with client.server.app[SESSIONS]() as session, session.begin():
        repo = LeadRepository(session)
        a = await repo.resolve([IdentityKey(OA_OPENID, OA_APP_ID, "o_a"), IdentityKey(UNIONID, "", "u_shared"),
                                IdentityKey(PHONE, "", "13800000001", verified=True)], now=at, inbox_id=None)
        b = await repo.resolve([IdentityKey(WECOM_EXTERNAL, CORP_ID, "wm_b"),
                                IdentityKey(PHONE, "", "13900000002", verified=True)], now=at, inbox_id=None)
        a_id, b_id = a.id, b.id
    # WeCom now reports wm_b's UnionID, which is lead A's: the event links two people with different phones.
    fake.state.register_external_contact("wm_b", "王芳", unionid="u_shared")
    await send_wecom(client, wecom_contact_event(CORP_ID, "add_external_contact", "sales_chen", "wm_b"))
    await wait_processed(engine, expected=1)

    assert await count(engine, LeadMerge) == 0
    assert await lead_ids(engine) == [a_id, b_id]
    lead_b = await lead_json(client, b_id)
    (conflict,) = lead_b["merge_conflicts"]
    assert (conflict["lead_id"], conflict["other_lead_id"], conflict["status"]) == (a_id, b_id, "open")
    assert "phone" in conflict["reason"]
    assert [t["kind"] for t in lead_b["touchpoints"]] == ["wecom_add_contact"]  # the touch stays with B
    lead_a = await lead_json(client, a_id)
    assert {(i["kind"], i["value"]) for i in lead_a["identities"]} >= {("unionid", "u_shared")}
    assert lead_a["touchpoints"] == []


async def test_unionid_lookup_failure_still_records_the_touch(client, fake):
    fake.state.register_user("o_down", unionid="u_down")
    fake.state.fail_next("/cgi-bin/user/info", -1, times=10, errmsg="system error")
    engine = client.server.app[ENGINE]
    await send_oa(client, oa_event("o_down", "subscribe", "qrscene_expo2026"))
    await wait_processed(engine, expected=1)
    (lead_id,) = await lead_ids(engine)
    lead = await lead_json(client, lead_id)
    assert [i["kind"] for i in lead["identities"]] == ["oa_openid"]
    assert lead["touchpoints"][0]["channel"] == "expo"
    assert await count(engine, Lead) == 1
