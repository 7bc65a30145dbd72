"""Lists show each caller only the leads the rule table lets them read (a salesperson's own, a team lead's
team's, everyone else's all), and console writes record who made them: duplicate decisions by username, and
audit entries for merge, dismiss, erasure (no personal data) and content changes (counts only)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.keys import SESSIONS
from bot.people.passwords import hash_password
from leads.identity import EMAIL, OA_OPENID, PHONE, IdentityKey
from storage.models import AuditEntry, DuplicateSuggestion, Handoff, Lead, utcnow
from storage.repos.api_tokens import issue_token
from storage.repos.leads import LeadRepository
from storage.repos.teams import add_team, set_member
from storage.repos.users import add_user
from tests.sdr_console.console_support import bearer
from tests.support.calls import AUTH

HASH = hash_password("correct horse battery")


@pytest.fixture
async def client(app_client):
    return await app_client()


async def people(client) -> tuple[dict[str, int], dict[str, str]]:
    """sales and mate (salespeople) with lead (their team lead) in one team; stranger alone; an sdr."""
    ids, tokens = {}, {}
    async with client.server.app[SESSIONS]() as session, session.begin():
        team = await add_team(session, "华东组")
        for name, role in (("sales", "sales"), ("mate", "sales"), ("lead", "team_lead"), ("stranger", "sales"),
                           ("sdr", "sdr"), ("manager", "manager")):
            user = await add_user(session, username=name, role=role, password_hash=HASH)
            ids[name] = user.id
            tokens[name], _ = await issue_token(session, user.id)
            if name in ("sales", "mate", "lead"):
                await set_member(session, team.id, user.id)
    return ids, tokens


async def owned_leads(client, owners: dict[str, int | None]) -> dict[str, int]:
    """One lead per owner (None: unassigned), each with an open hand-off question."""
    out = {}
    async with client.server.app[SESSIONS]() as session, session.begin():
        for name, owner in owners.items():
            lead = Lead(display_name=f"{name} 的潜客", stage="lead", owner_user_id=owner)
            session.add(lead)
            await session.flush()
            session.add(Handoff(lead_id=lead.id, reason="no_intent", message="问题", status="open"))
            out[name] = lead.id
    return out


async def test_lead_list_and_handoff_queue_show_only_the_callers_scope(client):
    ids, tokens = await people(client)
    leads = await owned_leads(client, {"sales": ids["sales"], "mate": ids["mate"], "stranger": ids["stranger"],
                                       "nobody": None})
    everyone = set(leads.values())
    want = {"sales": {leads["sales"]}, "mate": {leads["mate"]}, "lead": {leads["sales"], leads["mate"]},
            "stranger": {leads["stranger"]}, "sdr": everyone, "manager": everyone}
    for caller, expected in want.items():
        resp = await client.get("/api/leads", headers=bearer(tokens[caller]))
        assert resp.status == 200
        assert {i["id"] for i in (await resp.json())["items"]} == expected, caller
        resp = await client.get("/api/handoffs", headers=bearer(tokens[caller]))
        assert resp.status == 200
        assert {i["lead_id"] for i in (await resp.json())["items"]} == expected, caller
    resp = await client.get("/api/leads", headers=AUTH)  # a service token is an admin: everything
    assert {i["id"] for i in (await resp.json())["items"]} == everyone


async def audit_rows(client, action: str) -> list[AuditEntry]:
    async with client.server.app[SESSIONS]() as session:
        stmt = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return list((await session.execute(stmt)).scalars())


async def two_suggestions(client) -> list[int]:
    async with client.server.app[SESSIONS]() as session, session.begin():
        repo = LeadRepository(session)
        phone, mail = IdentityKey(PHONE, "", "13800000001"), IdentityKey(EMAIL, "", "bob@corp.cn")
        await repo.resolve([IdentityKey(OA_OPENID, "wx", "o_a"), phone], now=utcnow(), inbox_id=None)
        await repo.resolve([IdentityKey(OA_OPENID, "wx", "o_b"), mail], now=utcnow(), inbox_id=None)
        await repo.resolve([phone, mail], now=utcnow(), inbox_id=None)
    async with client.server.app[SESSIONS]() as session:
        return list((await session.execute(select(DuplicateSuggestion.id).order_by(DuplicateSuggestion.id))).scalars())


async def test_duplicate_decisions_name_the_user_and_are_audited(client):
    ids, tokens = await people(client)
    first, second = await two_suggestions(client)
    resp = await client.post(f"/api/duplicates/{first}/merge", headers=bearer(tokens["sdr"]))
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"/api/duplicates/{second}/dismiss", headers=AUTH)
    assert resp.status == 200, await resp.text()
    async with client.server.app[SESSIONS]() as session:
        by_id = {s.id: s for s in (await session.execute(select(DuplicateSuggestion))).scalars()}
    assert (by_id[first].status, by_id[first].resolved_by) == ("merged", "sdr")
    assert (by_id[second].status, by_id[second].resolved_by) == ("dismissed", "service-token")
    [merged] = await audit_rows(client, "lead.merge")
    assert (merged.actor_user_id, merged.target_kind, merged.target_id) == (ids["sdr"], "duplicate", str(first))
    assert merged.after is not None and merged.after["status"] == "merged" and merged.after["survivor_id"]
    [dismissed] = await audit_rows(client, "lead.merge.dismiss")
    assert (dismissed.actor_label, dismissed.target_id, dismissed.after) == (
        "service-token", str(second), {"status": "dismissed"})
    # A salesperson may not decide (LEAD_MERGE is not theirs): 403, audited, nothing changes.
    resp = await client.get("/api/duplicates", headers=bearer(tokens["sales"]))
    assert resp.status == 403
    assert [e.outcome for e in await audit_rows(client, "lead.merge")][-1] == "denied"


async def test_erasure_is_audited_without_personal_data_and_refused_to_salespeople(client):
    ids, tokens = await people(client)
    async with client.server.app[SESSIONS]() as session, session.begin():
        lead = await LeadRepository(session).resolve(
            [IdentityKey(OA_OPENID, "wx", "o_erase"), IdentityKey(PHONE, "", "13912345678")], now=utcnow(),
            inbox_id=None, display_name="王小明")
        lead.owner_user_id = ids["sales"]
        lead_id = lead.id
    resp = await client.post(f"/api/leads/{lead_id}/erase", headers=bearer(tokens["sales"]))  # their own lead
    assert resp.status == 403
    async with client.server.app[SESSIONS]() as session:
        assert (await session.get(Lead, lead_id)).erased_at is None
    resp = await client.post(f"/api/leads/{lead_id}/erase", headers=bearer(tokens["manager"]))
    assert resp.status == 200, await resp.text()
    entries = await audit_rows(client, "lead.erase")
    assert [(e.outcome, e.actor_user_id) for e in entries] == [("denied", ids["sales"]), ("ok", ids["manager"])]
    text = json.dumps([(e.before, e.after, e.target_id) for e in entries], ensure_ascii=False)
    assert "王小明" not in text and "13912345678" not in text and "o_erase" not in text
    assert entries[-1].after == {"erased": True}


async def test_content_changes_are_audited_as_counts(client):
    item = {"id": "guide", "kind": "article", "title": "选型指南", "url": "https://example.com/guide"}
    resp = await client.put("/api/content", headers=AUTH, json={"items": [item]})
    assert resp.status == 200, await resp.text()
    [entry] = await audit_rows(client, "content.write")
    assert (entry.actor_label, entry.outcome) == ("service-token", "ok")
    assert entry.after == {"stored": 1, "replace_all": False}
    assert entry.before is not None and set(entry.before) == {"items"}
