"""Assignments over the JSON API: an SDR's transfer routes the MQL, team leads and managers reassign by hand
(audited; 403 for the wrong user, 400/404/409 for bad input that changes nothing), the scoped list, and disabling
a member re-routes their MQLs. Real HTTP on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from bot.keys import SESSIONS
from storage.models import Assignment, Lead
from tests.sdr_console.console_support import audit_rows, bearer, call, make_lead, user_with_token
from tests.support.calls import AUTH

ROUTING = {"rules": [{"team": "east", "name": "华东"}], "default_owner": ""}
COMPLETE = {"budget": "100k_500k", "authority": "decision_maker", "need": "招聘流程线上化", "timeline": "1_3_months"}


@pytest.fixture
async def client(app_client):
    return await app_client(routing=ROUTING)


async def mql(client, openid: str, owner: int | None = None) -> int:
    lead_id = await make_lead(client, openid, owner)
    async with client.server.app[SESSIONS]() as session, session.begin():
        (await session.get(Lead, lead_id)).stage = "mql"
    return lead_id


async def assignments(client) -> list[Assignment]:
    async with client.server.app[SESSIONS]() as session:
        return list((await session.execute(select(Assignment).order_by(Assignment.id))).scalars())


async def assign(client, lead_id: int, headers: dict[str, str], body: Any) -> tuple[int, Any]:
    return await call(client, "POST", f"/api/leads/{lead_id}/assign", headers, json=body)


async def test_an_sdr_transfer_routes_the_mql_and_a_team_lead_reassigns_it(client):
    _, sdr = await user_with_token(client, "fang", "sdr")
    boss_id, boss = await user_with_token(client, "wang", "team_lead", team="east")
    a_id, a = await user_with_token(client, "a", "sales", team="east")
    lead = await make_lead(client, "o_route")
    assert (await call(client, "PUT", f"/api/leads/{lead}/bant", bearer(sdr), json=COMPLETE))[0] == 200
    status, body = await call(client, "POST", f"/api/leads/{lead}/transfer", bearer(sdr), json={})
    assert status == 200 and body["stage"] == "mql"
    [routed] = await assignments(client)
    assert (routed.lead_id, routed.rule, routed.status) == (lead, "华东", "pending")
    assert routed.user_id in {boss_id, a_id}
    other = a_id if routed.user_id == boss_id else boss_id

    status, body = await assign(client, lead, bearer(boss), {"user": "wang" if other == boss_id else "a"})
    assert status == 200, body
    assert (body["user_id"], body["rule"], body["status"], body["previous_id"]) == (other, "manual", "pending",
                                                                                  routed.id)
    assert body["assigned_by"] == "wang" and body["team"] == "east" and body["reason"].startswith("wang 手动分配")
    first, second = await assignments(client)
    assert (first.status, second.status, second.assigned_by_user_id) == ("superseded", "pending", boss_id)
    [row] = await audit_rows(client, action="lead.assign", target_id=str(lead))
    assert (row.actor_user_id, row.outcome) == (boss_id, "ok")
    assert row.before == {"owner_user_id": routed.user_id, "assignment_id": routed.id}
    assert row.after == {"owner_user_id": other, "assignment_id": second.id, "team_id": second.team_id}

    # The sales member sees their own assignments; the team lead the team's; filters and pages.
    status, mine = await call(client, "GET", "/api/assignments", bearer(a))
    assert status == 200 and {i["user_id"] for i in mine["items"]} <= {a_id}
    status, team = await call(client, "GET", f"/api/assignments?lead={lead}&limit=1", bearer(boss))
    assert status == 200 and team["total"] == 2 and [i["id"] for i in team["items"]] == [second.id]
    status, page = await call(client, "GET", f"/api/assignments?lead={lead}&limit=1&offset=1", bearer(boss))
    assert [i["id"] for i in page["items"]] == [first.id] and page["items"][0]["status"] == "superseded"
    status, pending = await call(client, "GET", f"/api/assignments?status=pending&user={other}", AUTH)
    assert status == 200 and [i["id"] for i in pending["items"]] == [second.id]


async def test_who_may_assign_to_whom(client):
    _, boss = await user_with_token(client, "wang", "team_lead", team="east")
    a_id, a = await user_with_token(client, "a", "sales", team="east")
    b_id, _ = await user_with_token(client, "b", "sales", team="east")
    c_id, _ = await user_with_token(client, "c", "sales", team="west")
    _, west_boss = await user_with_token(client, "li", "team_lead", team="west")
    _, manager = await user_with_token(client, "zhou", "manager")
    ours, orphan = await mql(client, "o_ours", owner=a_id), await mql(client, "o_orphan")

    refusals = [
        (a, ours, "b"),  # sales may not reassign, even their own lead
        (boss, ours, "c"),  # a team lead assigns only to their own team
        (west_boss, ours, "c"),  # ... and only their team's leads
        (boss, orphan, "a"),  # a lead nobody holds is not their team's
    ]
    for token, lead, target in refusals:
        status, body = await assign(client, lead, bearer(token), {"user": target})
        assert status == 403 and body["code"] == "forbidden", (target, body)
    assert await assignments(client) == []
    assert len(await audit_rows(client, action="lead.assign", outcome="denied")) == 4

    status, body = await assign(client, ours, bearer(boss), {"user": b_id})  # an id works as well as a name
    assert status == 200 and body["user_id"] == b_id
    status, body = await assign(client, orphan, bearer(manager), {"user": "c"})
    assert status == 200 and (body["user_id"], body["team"], body["previous_id"]) == (c_id, "west", None)


async def test_bad_input_is_refused_and_changes_nothing(client):
    _, manager = await user_with_token(client, "zhou", "manager")
    _, _ = await user_with_token(client, "fang", "sdr")
    off_id, _ = await user_with_token(client, "off", "sales")
    b_id, _ = await user_with_token(client, "b", "sales", team="east")
    status, _ = await call(client, "POST", f"/api/users/{off_id}/disable", AUTH)
    assert status == 200
    lead, early = await mql(client, "o_bad"), await make_lead(client, "o_early")
    cases = [
        (lead, {"user": "nobody"}, 400, "unknown_user"),
        (lead, {"user": 2**62}, 400, "unknown_user"),
        (lead, {"user": 0}, 400, "unknown_user"),
        (lead, {"user": "a b/../x"}, 400, "unknown_user"),
        (lead, {"user": "a\u0000b"}, 400, "bad_json"),
        (lead, {"user": "off"}, 400, "user_disabled"),
        (lead, {"user": "fang"}, 400, "not_sales"),
        (lead, {"user": True}, 400, "invalid_body"),
        (lead, {"user": "b", "extra": 1}, 400, "invalid_body"),
        (lead, {}, 400, "invalid_body"),
        (10**9, {"user": "b"}, 404, "not_found"),
        (early, {"user": "b"}, 409, "not_mql"),
    ]
    for lead_id, body, want, code in cases:
        status, answer = await assign(client, lead_id, bearer(manager), body)
        assert (status, answer.get("code")) == (want, code), (body, answer)
        assert answer["message"]
    status, answer = await call(client, "POST", "/api/leads/abc/assign", bearer(manager), json={"user": "b"})
    assert status == 404
    assert await assignments(client) == []
    assert (await assign(client, lead, bearer(manager), {"user": "b"}))[0] == 200
    status, answer = await assign(client, lead, bearer(manager), {"user": b_id})
    assert status == 409 and answer["code"] == "already_assigned" and len(await assignments(client)) == 1
    for query in ("status=bogus", "limit=0", "user=abc", "lead=-1", "offset=x"):
        status, answer = await call(client, "GET", f"/api/assignments?{query}", bearer(manager))
        assert status == 400, (query, answer)


async def test_disabling_a_member_over_the_api_reroutes_their_mqls(client):
    a_id, _ = await user_with_token(client, "a", "sales", team="east")
    b_id, _ = await user_with_token(client, "b", "sales", team="east")
    _, manager = await user_with_token(client, "zhou", "manager")
    leads = [await mql(client, f"o_{i}") for i in range(3)]
    for lead in leads:
        assert (await assign(client, lead, bearer(manager), {"user": "a"}))[0] == 200
    status, _ = await call(client, "POST", f"/api/users/{a_id}/disable", AUTH)
    assert status == 200
    rows = await assignments(client)
    assert sorted((r.user_id, r.status) for r in rows) == [(a_id, "superseded")] * 3 + [(b_id, "pending")] * 3
    assert {r.rule for r in rows if r.status == "pending"} == {"member_disabled"}
    async with client.server.app[SESSIONS]() as session:
        owners = (await session.execute(select(Lead.owner_user_id, func.count()).group_by(Lead.owner_user_id))).all()
    assert owners == [(b_id, 3)]
