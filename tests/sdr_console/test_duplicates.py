"""GET /api/duplicates and POST /api/duplicates/{id}/merge|dismiss over real HTTP, on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.keys import SESSIONS
from leads.identity import EMAIL, OA_OPENID, PHONE, WECOM_EXTERNAL, IdentityKey
from storage.models import DuplicateSuggestion, Identity, Lead, LeadMerge, MergeConflict, utcnow
from storage.repos.leads import LeadRepository
from tests.support.calls import AUTH

NOW = utcnow()
PHONE_A = IdentityKey(PHONE, "", "13800000001")
MAIL_B = IdentityKey(EMAIL, "", "bob@corp.cn")


@pytest.fixture
async def client(app_client):
    return await app_client()  # sandbox mode


async def resolve(client, *observed: IdentityKey, days_ago: int = 0, name: str | None = None) -> int:
    async with client.server.app[SESSIONS]() as session, session.begin():
        lead = await LeadRepository(session).resolve(list(observed), now=NOW - timedelta(days=days_ago),
                                                     inbox_id=None, display_name=name)
        return lead.id


async def seed(client) -> dict[str, int]:
    """A (oldest, typed phone), B (email), and C, an anonymous visitor who typed both: two suggestions."""
    a = await resolve(client, IdentityKey(OA_OPENID, "wx", "o_a"), PHONE_A, days_ago=30, name="Alice")
    b = await resolve(client, IdentityKey(WECOM_EXTERNAL, "corp", "wm_b"), MAIL_B, days_ago=20, name="Bob")
    c = await resolve(client, PHONE_A, MAIL_B, days_ago=1)
    return {"a": a, "b": b, "c": c}


async def suggestions(client) -> list[dict]:
    resp = await client.get("/api/duplicates?status=all", headers=AUTH)
    assert resp.status == 200
    return (await resp.json())["items"]


async def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["error"] == body["code"] == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), body
    return body


async def test_every_endpoint_needs_a_token(client):
    await seed(client)
    for method, path in (("GET", "/api/duplicates"), ("POST", "/api/duplicates/1/merge"),
                         ("POST", "/api/duplicates/1/dismiss")):
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            await assert_error(await client.request(method, path, headers=headers), 401, "unauthorized")
    assert {s["status"] for s in await suggestions(client)} == {"open"}


async def test_open_suggestions_are_listed_masked_with_both_leads(client):
    ids = await seed(client)
    resp = await client.get("/api/duplicates", headers=AUTH)
    text = await resp.text()
    body = await resp.json()
    assert resp.status == 200 and (body["limit"], body["offset"]) == (50, 0)
    assert "13800000001" not in text and "bob@corp.cn" not in text
    by_kind = {i["identity_kind"]: i for i in body["items"]}
    assert by_kind["phone"]["identity_value"] == "138****0001"
    assert by_kind["email"]["identity_value"] == "b***@corp.cn"
    phone = by_kind["phone"]
    assert (phone["lead_id"], phone["other_lead_id"], phone["status"], phone["resolved_at"]) == (
        ids["c"], ids["a"], "open", None)
    assert phone["created_at"]
    assert phone["lead"] == {"id": ids["c"], "display_name": f"潜客 #{ids['c']}", "stage": "lead",
                             "merged_into_id": None, "erased": False}
    assert (phone["other_lead"]["display_name"], phone["other_lead"]["stage"]) == ("Alice", "lead")


async def test_status_filter_and_paging(client):
    await seed(client)
    first = (await suggestions(client))[-1]
    assert (await client.post(f"/api/duplicates/{first['id']}/dismiss", headers=AUTH)).status == 200

    async def listed(query: str) -> list[tuple[int, str]]:
        resp = await client.get(f"/api/duplicates?{query}", headers=AUTH)
        assert resp.status == 200, await resp.text()
        return [(i["id"], i["status"]) for i in (await resp.json())["items"]]

    everything = await listed("status=all")
    assert len(everything) == 2
    assert await listed("") == [s for s in everything if s[1] == "open"]
    assert await listed("status=dismissed") == [(first["id"], "dismissed")]
    assert await listed("status=merged") == []
    assert await listed("status=all&limit=1") == everything[:1]
    assert await listed("status=all&limit=1&offset=1") == everything[1:]
    for bad in ("status=closed", "limit=0", "limit=201", "limit=²", "offset=-1"):
        await assert_error(await client.get(f"/api/duplicates?{bad}", headers=AUTH), 400, "bad_parameter")


async def test_merge_keeps_the_oldest_and_closes_what_it_made_moot(client):
    ids = await seed(client)
    items = {i["identity_kind"]: i for i in await suggestions(client)}
    resp = await client.post(f"/api/duplicates/{items['phone']['id']}/merge", headers=AUTH)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["status"], body["survivor_id"], body["merged_id"]) == ("merged", ids["a"], ids["c"])
    assert body["resolved_at"] and body["identity_value"] == "138****0001"
    moved = await client.get(f"/api/leads/{ids['c']}", headers=AUTH, allow_redirects=False)
    assert moved.status == 308 and moved.headers["Location"] == f"/api/leads/{ids['a']}"

    # C -> B is still a question, now about A (C's survivor) and B: merging it follows C into A.
    resp = await client.post(f"/api/duplicates/{items['email']['id']}/merge", headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert ((await resp.json())["survivor_id"], (await resp.json())["merged_id"]) == (ids["a"], ids["b"])
    async with client.server.app[SESSIONS]() as session:
        merges = (await session.execute(select(LeadMerge.survivor_id, LeadMerge.merged_id, LeadMerge.identity_kind)
                                        .order_by(LeadMerge.id))).all()
        owners = set((await session.execute(select(Identity.lead_id))).scalars())
    assert [tuple(m) for m in merges] == [(ids["a"], ids["c"], "phone"), (ids["a"], ids["b"], "email")]
    assert owners == {ids["a"]}
    assert {s["status"] for s in await suggestions(client)} == {"merged"}
    for action in ("merge", "dismiss"):
        body = await assert_error(await client.post(f"/api/duplicates/{items['phone']['id']}/{action}",
                                                    headers=AUTH), 409, "already_resolved")
        assert body["resolution"] == "merged"


async def test_two_leads_with_different_verified_phones_are_a_conflict_not_a_merge(client):
    a = await resolve(client, IdentityKey(OA_OPENID, "wx", "o_a"), IdentityKey(PHONE, "", "13800000001", True),
                      days_ago=5)
    b = await resolve(client, IdentityKey(OA_OPENID, "wx", "o_b"), IdentityKey(PHONE, "", "13900000002", True),
                      MAIL_B)
    await resolve(client, IdentityKey(OA_OPENID, "wx", "o_a"), MAIL_B)  # A types B's email
    (item,) = await suggestions(client)
    assert (item["lead_id"], item["other_lead_id"]) == (a, b)
    for _ in range(2):
        body = await assert_error(await client.post(f"/api/duplicates/{item['id']}/merge", headers=AUTH), 409,
                                  "merge_conflict")
        assert "验证的手机号" in body["message"] and (body["lead_id"], body["other_lead_id"]) == (a, b)
    async with client.server.app[SESSIONS]() as session:
        conflicts = (await session.execute(select(MergeConflict.lead_id, MergeConflict.other_lead_id,
                                                  MergeConflict.identity_kind))).all()
        assert await session.scalar(select(LeadMerge.id)) is None
    assert [tuple(c) for c in conflicts] == [(a, b, "email")]
    assert (await suggestions(client))[0]["status"] == "open"  # the SDR may still dismiss it
    assert (await client.post(f"/api/duplicates/{item['id']}/dismiss", headers=AUTH)).status == 200


async def test_dismiss_closes_it_and_a_repeat_submission_does_not_reopen_it(client):
    ids = await seed(client)
    item = next(i for i in await suggestions(client) if i["identity_kind"] == "phone")
    resp = await client.post(f"/api/duplicates/{item['id']}/dismiss", headers=AUTH)
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "dismissed" and body["resolved_at"]
    await assert_error(await client.post(f"/api/duplicates/{item['id']}/merge", headers=AUTH), 409,
                       "already_resolved")
    # The same lead typing the same number again: the pair was decided, no new row.
    async with client.server.app[SESSIONS]() as session, session.begin():
        repo = LeadRepository(session)
        assert (await repo.resolve([PHONE_A], now=NOW, inbox_id=None)).id not in ids.values()
    statuses = sorted((i["lead_id"], i["status"]) for i in await suggestions(client) if i["lead_id"] == ids["c"])
    assert statuses == [(ids["c"], "dismissed"), (ids["c"], "open")]


async def test_unknown_or_malformed_ids_are_404(client):
    await seed(client)
    for raw in ("999999", "0", "abc", "²", "1" * 30, "-1"):
        for action in ("merge", "dismiss"):
            await assert_error(await client.post(f"/api/duplicates/{raw}/{action}", headers=AUTH), 404, "not_found")
    assert {s["status"] for s in await suggestions(client)} == {"open"}


async def test_erased_or_already_merged_leads_are_refused(client):
    ids = await seed(client)
    items = {i["identity_kind"]: i for i in await suggestions(client)}
    async with client.server.app[SESSIONS]() as session, session.begin():
        await session.execute(update(Lead).where(Lead.id == ids["b"]).values(erased_at=NOW))
    body = await assert_error(await client.post(f"/api/duplicates/{items['email']['id']}/merge", headers=AUTH),
                              409, "lead_erased")
    assert f"#{ids['b']}" in body["message"]
    # Both sides already one person (merged by a path that left the suggestion open): nothing to merge.
    async with client.server.app[SESSIONS]() as session, session.begin():
        await session.execute(update(Lead).where(Lead.id == ids["c"]).values(merged_into_id=ids["a"], stage="merged"))
    await assert_error(await client.post(f"/api/duplicates/{items['phone']['id']}/merge", headers=AUTH), 409,
                       "already_merged")
    async with client.server.app[SESSIONS]() as session:
        assert await session.scalar(select(LeadMerge.id)) is None
        assert set((await session.execute(select(DuplicateSuggestion.status))).scalars()) == {"open"}


async def test_erasure_through_the_api_leaves_nothing_to_merge(client):
    ids = await seed(client)
    items = {i["identity_kind"]: i for i in await suggestions(client)}
    assert (await client.post(f"/api/leads/{ids['a']}/erase", headers=AUTH)).status == 200
    resp = await client.post(f"/api/duplicates/{items['phone']['id']}/merge", headers=AUTH)
    assert resp.status in (404, 409), await resp.text()
    async with client.server.app[SESSIONS]() as session:
        assert await session.scalar(select(LeadMerge.id)) is None
        assert (await session.get_one(Lead, ids["c"])).merged_into_id is None
