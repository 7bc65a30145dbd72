"""Typing someone else's phone number takes over nothing (issue 11, point 1).

Through the real app and the fake WeChat API: a victim is known by a phone number they typed in an H5 form
from WeChat, or by one WeChat verified in the mini-program (getPhoneNumber). An attacker then types that
number into the H5 form anonymously, into the H5 form from their own WeChat (OAuth-bound OpenID cookie),
or into the mini-program form. Each time the victim's lead row, identities, profile and touchpoints stay
exactly as they were, the attacker's submission lands on a lead of its own, and one duplicate suggestion
links the two for an SDR to decide.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import ENGINE
from storage.models import DuplicateSuggestion, Identity, Lead, LeadMerge, MergeConflict, Touchpoint
from tests.support.calls import AUTH
from tests.support.forms import MP_APP_ID, PLAIN_UA, WECHAT_UA, capture_config, csrf_of
from tests.support.helpers import free_port

VICTIM_PHONE = "13800138000"
VICTIM = {"name": "张伟", "phone": VICTIM_PHONE, "email": "zw@victim.cn", "company": "受害者科技有限公司",
          "job_title": "director", "consent": "yes"}
ATTACKER = {"name": "冒充者", "phone": "138 0013 8000", "email": "fake@attacker.cn", "company": "冒充公司",
            "job_title": "staff", "consent": "yes"}
# The same attacker typing the victim's email address instead (their own phone number).
EMAIL_THIEF = {**ATTACKER, "phone": "13900139000", "email": "ZW@victim.cn"}


@pytest.fixture
async def client(app_client, backend, fake):
    port = free_port()
    return await app_client(capture_config(backend, api_base_url=fake.base_url,
                                           public_url=f"http://127.0.0.1:{port}"), port=port)


async def h5_submit(client, data: dict, *, in_wechat: bool) -> None:
    """A fresh browser (no cookie); in WeChat it follows the OAuth redirects to bind the fake's OpenID."""
    client.session.cookie_jar.clear()
    headers = {"User-Agent": WECHAT_UA if in_wechat else PLAIN_UA}
    page = await client.get("/f/demo", headers=headers)
    assert page.status == 200
    resp = await client.post("/f/demo", data={**data, "csrf": csrf_of(await page.text())}, headers=headers)
    assert resp.status == 200, await resp.text()


async def mp_token(client, fake, openid: str) -> str:
    resp = await client.post("/api/mp/login", json={"code": fake.state.issue_login_code(MP_APP_ID, openid, None)})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["token"]


async def mp_submit(client, token: str, body: dict) -> None:
    resp = await client.post("/api/mp/forms/demo", headers={"Authorization": f"Bearer {token}"},
                             json={"consent": True, **body})
    assert resp.status == 200, await resp.text()


async def victim_typed(client, fake) -> None:
    fake.state.oauth_openid = "o_victim"
    await h5_submit(client, VICTIM, in_wechat=True)


async def victim_verified(client, fake) -> None:
    token = await mp_token(client, fake, "mp_victim")
    fields = {k: v for k, v in VICTIM.items() if k not in ("phone", "consent")}
    await mp_submit(client, token, {"fields": fields, "phone_code": fake.state.issue_phone_code(MP_APP_ID,
                                                                                               VICTIM_PHONE)})


async def anonymous_h5(client, fake, data: dict = ATTACKER) -> None:
    await h5_submit(client, data, in_wechat=False)


async def own_wechat_h5(client, fake, data: dict = ATTACKER) -> None:
    fake.state.oauth_openid = "o_attacker"
    await h5_submit(client, data, in_wechat=True)


async def mini_program(client, fake, data: dict = ATTACKER) -> None:
    token = await mp_token(client, fake, "mp_attacker")
    await mp_submit(client, token, {"fields": {k: v for k, v in data.items() if k != "consent"}})


async def snapshot(engine, lead_id: int) -> dict:
    async with AsyncSession(engine) as session:
        lead = await session.get_one(Lead, lead_id)
        row = {c.key: getattr(lead, c.key) for c in Lead.__table__.columns}
        idents = (await session.execute(select(Identity.kind, Identity.app, Identity.value, Identity.verified)
                                        .where(Identity.lead_id == lead_id).order_by(Identity.id))).all()
        touches = (await session.execute(select(Touchpoint.id, Touchpoint.kind).where(Touchpoint.lead_id == lead_id)
                                         .order_by(Touchpoint.id))).all()
    return {"lead": row, "identities": [tuple(r) for r in idents], "touchpoints": [tuple(r) for r in touches]}


async def all_rows(engine, *columns) -> list[tuple]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(select(*columns))]


@pytest.mark.parametrize("victim", [victim_typed, victim_verified], ids=["typed", "verified"])
@pytest.mark.parametrize("attack", [anonymous_h5, own_wechat_h5, mini_program],
                         ids=["anonymous_h5", "own_wechat_h5", "miniprogram"])
async def test_typing_the_victims_phone_takes_over_nothing(client, fake, victim, attack):
    engine = client.server.app[ENGINE]
    await victim(client, fake)
    (victim_id,) = [r[0] for r in await all_rows(engine, Lead.id)]
    before = await snapshot(engine, victim_id)
    assert before["lead"]["profile"]["company"] == "受害者科技有限公司"
    assert any(i[0] == "phone" and i[2] == VICTIM_PHONE for i in before["identities"])

    await attack(client, fake)

    assert await snapshot(engine, victim_id) == before  # row, profile, identities and touches unchanged
    leads = await all_rows(engine, Lead.id, Lead.display_name, Lead.merged_into_id, Lead.profile)
    (attacker_id, name, merged_into, profile) = next(r for r in leads if r[0] != victim_id)
    assert len(leads) == 2 and merged_into is None
    assert name == "冒充者" and profile["company"] == "冒充公司"
    attacker_idents = {(k, v) for lead_id, k, v in await all_rows(engine, Identity.lead_id, Identity.kind,
                                                                  Identity.value) if lead_id == attacker_id}
    assert ("email", "fake@attacker.cn") in attacker_idents and ("phone", VICTIM_PHONE) not in attacker_idents
    assert await all_rows(engine, LeadMerge.id) == [] and await all_rows(engine, MergeConflict.id) == []
    assert await all_rows(engine, DuplicateSuggestion.lead_id, DuplicateSuggestion.other_lead_id,
                          DuplicateSuggestion.identity_kind, DuplicateSuggestion.identity_value,
                          DuplicateSuggestion.status) == [(attacker_id, victim_id, "phone", VICTIM_PHONE, "open")]

    # The console lists it, masked; the SDR sees both leads without either number in full.
    resp = await client.get("/api/duplicates", headers=AUTH)
    text = await resp.text()
    (item,) = (await resp.json())["items"]
    assert VICTIM_PHONE not in text and item["identity_value"] == "138****8000"
    assert (item["lead"]["id"], item["other_lead"]["display_name"]) == (attacker_id, "张伟")


async def test_the_same_attack_twice_from_one_wechat_records_one_suggestion(client, fake):
    engine = client.server.app[ENGINE]
    await victim_verified(client, fake)
    await own_wechat_h5(client, fake)
    await own_wechat_h5(client, fake)
    assert len(await all_rows(engine, DuplicateSuggestion.id)) == 1
    assert len(await all_rows(engine, Lead.id)) == 2


@pytest.mark.parametrize("victim", [victim_typed, victim_verified], ids=["typed", "verified"])
@pytest.mark.parametrize("attack", [anonymous_h5, own_wechat_h5, mini_program],
                         ids=["anonymous_h5", "own_wechat_h5", "miniprogram"])
async def test_typing_the_victims_email_takes_over_nothing(client, fake, victim, attack):
    engine = client.server.app[ENGINE]
    await victim(client, fake)
    (victim_id,) = [r[0] for r in await all_rows(engine, Lead.id)]
    before = await snapshot(engine, victim_id)
    assert ("email", "", "zw@victim.cn", False) in before["identities"]

    await attack(client, fake, EMAIL_THIEF)  # the address typed in other case: still the victim's

    assert await snapshot(engine, victim_id) == before  # row, profile, identities and touches unchanged
    leads = await all_rows(engine, Lead.id, Lead.display_name, Lead.merged_into_id, Lead.profile)
    (attacker_id, name, merged_into, profile) = next(r for r in leads if r[0] != victim_id)
    assert len(leads) == 2 and merged_into is None
    assert name == "冒充者" and profile["company"] == "冒充公司"
    attacker_idents = {(k, v) for lead_id, k, v in await all_rows(engine, Identity.lead_id, Identity.kind,
                                                                  Identity.value) if lead_id == attacker_id}
    assert ("phone", "13900139000") in attacker_idents and ("email", "zw@victim.cn") not in attacker_idents
    assert await all_rows(engine, LeadMerge.id) == [] and await all_rows(engine, MergeConflict.id) == []
    assert await all_rows(engine, DuplicateSuggestion.lead_id, DuplicateSuggestion.other_lead_id,
                          DuplicateSuggestion.identity_kind, DuplicateSuggestion.identity_value,
                          DuplicateSuggestion.status) == [(attacker_id, victim_id, "email", "zw@victim.cn", "open")]
    resp = await client.get("/api/duplicates", headers=AUTH)
    assert "zw@victim.cn" not in await resp.text()
    (item,) = (await resp.json())["items"]
    assert (item["lead"]["id"], item["other_lead"]["id"]) == (attacker_id, victim_id)
