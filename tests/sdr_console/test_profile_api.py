"""PATCH /api/leads/{id}/profile over real HTTP on both backends: a partial edit, audited with before and after
shown as the 360's profile history; an ability field re-scores the lead; bad fields are 400s
that change nothing; the wrong user is a 403 (audited); unknown leads 404; erased leads 409."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from bot.keys import ENGINE, SESSIONS
from storage.models import Lead, LeadScore, utcnow
from tests.sdr_console.console_support import audit_rows, bearer, call, make_user, sign_in, user_with_token
from tests.sdr_console.lead_seed import seed_360


@pytest.fixture
async def client(app_client):
    return await app_client()


async def lead_row(client, lead_id: int) -> Lead:
    async with client.server.app[SESSIONS]() as session:
        return (await session.execute(select(Lead).where(Lead.id == lead_id))).scalar_one()


async def test_an_edit_changes_only_what_it_names_and_is_audited(client):
    _, token = await user_with_token(client, "li", "sdr")
    lead = await seed_360(client.server.app[ENGINE])
    status, body = await call(client, "PATCH", f"/api/leads/{lead}/profile", bearer(token),
                              json={"display_name": "王芳（华东）", "job_title": "director", "company": "",
                                    "city": "杭州", "industry": "internet"})
    assert status == 200
    assert body["display_name"] == "王芳（华东）"
    assert body["changed"] == ["display_name", "company", "job_title", "city"]
    assert body["profile"]["job_title"] == "director" and body["profile"]["company"] is None
    row = await lead_row(client, lead)
    assert row.display_name == "王芳（华东）"
    assert row.profile == {"industry": "internet", "company_size": "500_999", "job_title": "director", "city": "杭州"}
    [entry] = await audit_rows(client, action="lead.profile", target_id=str(lead))
    assert entry.before["job_title"] is None and entry.before["city"] is None
    assert entry.after == {"display_name": "王芳（华东）", "company": None, "job_title": "director", "city": "杭州"}
    assert entry.before["company"] and entry.before["display_name"] != "王芳（华东）"
    # The same values again change nothing and add no audit entry.
    status, body = await call(client, "PATCH", f"/api/leads/{lead}/profile", bearer(token), json={"city": "杭州"})
    assert status == 200 and body["changed"] == []
    assert len(await audit_rows(client, action="lead.profile", target_id=str(lead))) == 1


async def test_an_ability_field_rescores_the_lead(client):
    _, token = await user_with_token(client, "li", "sdr")
    lead = await seed_360(client.server.app[ENGINE])
    status, _ = await call(client, "GET", f"/api/leads/{lead}/score", bearer(token))
    _, before = await call(client, "GET", f"/api/leads/{lead}/score", bearer(token))
    assert status == 200
    await call(client, "PATCH", f"/api/leads/{lead}/profile", bearer(token), json={"job_title": "vp_plus"})
    _, after = await call(client, "GET", f"/api/leads/{lead}/score", bearer(token))
    assert after["ability"]["total"] > before["ability"]["total"]
    async with client.server.app[SESSIONS]() as session:
        stored = await session.get(LeadScore, lead)
    assert stored is not None and stored.ability == after["ability"]["total"]


async def test_the_history_shows_on_the_360(client):
    engine = client.server.app[ENGINE]
    await make_user(engine, "chen", role="sdr")
    assert (await sign_in(client, "chen")).status == 303
    _, token = await user_with_token(client, "li", "sdr")
    lead = await seed_360(engine)
    await call(client, "PATCH", f"/api/leads/{lead}/profile", bearer(token), json={"industry": "finance"})
    html = await (await client.get(f"/console/leads/{lead}/profile")).text()
    assert "资料修改记录（1）" in html and "所属行业：互联网 / 软件 → 金融 / 保险" in html and "li" in html


@pytest.mark.parametrize("body", [{}, {"phone": "13700001111"}, {"owner_user_id": 1}, {"industry": "互联网"},
                                  {"company": 5}, {"company": ["a"]}, {"company": "x" * 101},
                                  {"website": "javascript:alert(1)"}, {"display_name": "a\nb"},
                                  {"city": "杭州", "job_title": "ceo"}])
async def test_bad_fields_are_400_and_change_nothing(client, body):
    _, token = await user_with_token(client, "li", "sdr")
    lead = await seed_360(client.server.app[ENGINE])
    before = await lead_row(client, lead)
    status, answer = await call(client, "PATCH", f"/api/leads/{lead}/profile", bearer(token), json=body)
    assert status == 400 and answer["message"]
    after = await lead_row(client, lead)
    assert (after.display_name, after.profile) == (before.display_name, before.profile)
    assert await audit_rows(client, action="lead.profile") == []


async def test_the_wrong_user_is_refused_and_audited(client):
    engine = client.server.app[ENGINE]
    own_id, own = await user_with_token(client, "sun", "sales")
    other_id, _ = await user_with_token(client, "zhou", "sales")
    theirs = await seed_360(engine, owner=other_id)
    status, _ = await call(client, "PATCH", f"/api/leads/{theirs}/profile", bearer(own), json={"city": "上海"})
    assert status == 403
    [denied] = await audit_rows(client, outcome="denied", target_id=str(theirs))
    assert denied.action == "lead.edit" and denied.actor_user_id == own_id
    assert "city" not in (await lead_row(client, theirs)).profile
    mine = await seed_360(engine, owner=own_id)
    assert (await call(client, "PATCH", f"/api/leads/{mine}/profile", bearer(own), json={"city": "上海"}))[0] == 200
    assert (await call(client, "PATCH", "/api/leads/999999/profile", bearer(own), json={"city": "上海"}))[0] == 404


async def test_an_erased_lead_is_409(client):
    _, token = await user_with_token(client, "li", "sdr")
    lead = await seed_360(client.server.app[ENGINE])
    async with client.server.app[ENGINE].begin() as conn:
        await conn.execute(update(Lead).where(Lead.id == lead).values(erased_at=utcnow()))
    status, body = await call(client, "PATCH", f"/api/leads/{lead}/profile", bearer(token), json={"city": "上海"})
    assert status == 409 and body["code"] == "lead_erased"


async def test_the_erasure_blanks_the_profile_history(client):
    """The history holds the person's former name and company: erasing the lead blanks those entries and keeps
    that the edits happened."""
    _, token = await user_with_token(client, "li", "admin")
    lead = await seed_360(client.server.app[ENGINE])
    assert (await call(client, "PATCH", f"/api/leads/{lead}/profile", bearer(token),
                       json={"company": "旧名称科技", "city": "杭州"}))[0] == 200
    [entry] = await audit_rows(client, action="lead.profile", target_id=str(lead))
    assert entry.after["company"] == "旧名称科技"
    assert (await call(client, "POST", f"/api/leads/{lead}/erase", bearer(token)))[0] == 200
    [entry] = await audit_rows(client, action="lead.profile", target_id=str(lead))
    assert entry.before is None and entry.after == {"erased": True}
