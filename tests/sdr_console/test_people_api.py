"""Who calls the API: service tokens, per-user tokens, the rule table's 403s and their audit entries, and the
users, teams and audit endpoints. Real HTTP on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.keys import ENGINE, SESSIONS
from bot.people.passwords import verify_password
from storage.models import Lead, StageTransition, User
from storage.repos.api_tokens import issue_token, revoke_all
from storage.repos.users import user_by_name
from tests.sdr_console.console_support import audit_rows, bearer, call, make_lead, user_with_token
from tests.support.calls import AUTH
from tests.support.helpers import count


@pytest.fixture
async def client(app_client):
    return await app_client()


async def test_user_tokens_authenticate_until_revoked_or_the_user_is_disabled(client):
    _, token = await user_with_token(client, "li", "sdr")
    lead = await make_lead(client, "o_1")
    assert (await client.get(f"/api/leads/{lead}/stages", headers=bearer(token))).status == 200
    assert (await client.get(f"/api/leads/{lead}/stages", headers=bearer(token + "x"))).status == 401
    assert (await client.get(f"/api/leads/{lead}/stages", headers=AUTH)).status == 200  # service token

    async with client.server.app[SESSIONS]() as session, session.begin():
        user = await user_by_name(session, "li")
        assert user is not None
        _, second = await issue_token(session, user.id)
        await revoke_all(session, user.id)
    for revoked in (token, second):
        status, body = await call(client, "GET", f"/api/leads/{lead}/stages", bearer(revoked))
        assert status == 401 and body["error"] == "unauthorized"

    _, token2 = await user_with_token(client, "wang", "sdr")
    assert (await client.get(f"/api/leads/{lead}/stages", headers=bearer(token2))).status == 200
    status, _ = await call(client, "POST", f"/api/users/{await user_id(client, 'wang')}/disable", AUTH)
    assert status == 200
    assert (await client.get(f"/api/leads/{lead}/stages", headers=bearer(token2))).status == 401


async def user_id(client, username: str) -> int:
    async with client.server.app[SESSIONS]() as session:
        user = await user_by_name(session, username)
        assert user is not None
        return user.id


async def test_the_stage_actor_is_the_authenticated_user_never_the_body(client):
    sdr_id, sdr = await user_with_token(client, "sdr_li", "sdr")
    lead = await make_lead(client, "o_2")
    path = f"/api/leads/{lead}/stage"
    status, body = await call(client, "POST", path, bearer(sdr), json={"to": "mql", "reason": "电话确认"})
    assert status == 200 and body["transition"]["actor"] == "sdr" and body["transition"]["actor_id"] == "sdr_li"
    # A body naming someone else is refused, not believed; a capacity the role lacks is a 403.
    status, body = await call(client, "POST", path, bearer(sdr),
                              json={"to": "sal", "reason": "x", "actor_id": "boss"})
    assert status == 400 and body["error"] == "bad_field"
    status, body = await call(client, "POST", path, bearer(sdr), json={"to": "sal", "actor": "sales", "reason": "x"})
    assert status == 403 and body["error"] == "forbidden"
    async with client.server.app[ENGINE].connect() as conn:
        stored = (await conn.execute(select(StageTransition.actor_id))).scalars().all()
    assert stored == ["sdr_li"]
    [ok] = await audit_rows(client, action="lead.stage", outcome="ok")
    assert (ok.actor_user_id, ok.actor_label, ok.target_id, ok.before, ok.after["stage"]) == (
        sdr_id, "sdr_li", str(lead), {"stage": "lead"}, "mql")
    assert ok.ip == "127.0.0.1"
    [denied] = await audit_rows(client, action="lead.stage", outcome="denied")
    assert denied.actor_user_id == sdr_id and denied.target_kind == "lead"


async def test_a_salesperson_acts_on_their_own_leads_and_a_team_lead_on_the_team_s(client):
    sales_id, sales = await user_with_token(client, "wang", "sales", team="east")
    other_id, _ = await user_with_token(client, "zhao", "sales", team="west")
    _, east_lead = await user_with_token(client, "chen", "team_lead", team="east")
    mine, theirs = await make_lead(client, "o_mine", sales_id), await make_lead(client, "o_theirs", other_id)
    unowned = await make_lead(client, "o_pool")
    for lead, expected in ((mine, 200), (theirs, 403), (unowned, 403)):
        status, body = await call(client, "GET", f"/api/leads/{lead}/score", bearer(sales))
        assert status == expected, (lead, body)
    for lead, expected in ((mine, 200), (theirs, 403), (unowned, 403)):
        assert (await client.get(f"/api/leads/{lead}/stages", headers=bearer(east_lead))).status == expected
    status, _ = await call(client, "POST", f"/api/leads/{theirs}/stage", bearer(sales),
                           json={"to": "disqualified", "reason": "x"})
    assert status == 403
    async with client.server.app[ENGINE].connect() as conn:
        assert (await conn.execute(select(Lead.stage).where(Lead.id == theirs))).scalar_one() == "lead"
    denied = await audit_rows(client, outcome="denied")
    assert {(d.actor_label, d.action, d.target_id) for d in denied} == {
        ("wang", "lead.read", str(theirs)), ("wang", "lead.read", str(unowned)),
        ("chen", "lead.read", str(theirs)), ("chen", "lead.read", str(unowned)),
        ("wang", "lead.stage", str(theirs))}
    status, _ = await call(client, "POST", f"/api/leads/{mine}/stage", bearer(sales),
                           json={"to": "disqualified", "reason": "无预算"})
    assert status == 200


async def test_only_admins_manage_users_and_only_admins_and_managers_read_the_audit_log(client):
    _, sdr = await user_with_token(client, "li", "sdr")
    _, manager = await user_with_token(client, "boss", "manager")
    admin_id, admin = await user_with_token(client, "root", "admin")
    new = {"username": "zhang", "role": "sales", "team": "north", "wecom_userid": "ZhangSan"}
    status, body = await call(client, "POST", "/api/users", bearer(sdr), json=new)
    assert status == 403
    status, body = await call(client, "POST", "/api/users", bearer(manager), json=new)
    assert status == 403
    assert await count(client.server.app[ENGINE], User) == 3

    status, body = await call(client, "POST", "/api/users", bearer(admin), json=new)
    assert status == 201 and body["user"]["username"] == "zhang" and body["user"]["teams"] == ["north"]
    assert "password_hash" not in body["user"] and len(body["password"]) >= 16
    async with client.server.app[SESSIONS]() as session:
        created = await user_by_name(session, "zhang")
        assert created is not None and verify_password(created.password_hash, body["password"])
    status, again = await call(client, "POST", "/api/users", bearer(admin), json=new)
    assert status == 409 and again["error"] == "exists"
    for bad in ({"username": "x y", "role": "sdr"}, {"username": "ok", "role": "king"},
                {"username": "ok2", "role": "sdr", "password": "short"}):
        status, err = await call(client, "POST", "/api/users", bearer(admin), json=bad)
        assert status == 400 and err["error"] == "bad_field", bad

    status, listing = await call(client, "GET", "/api/users", bearer(manager))
    assert status == 200 and [u["username"] for u in listing["users"]] == ["li", "boss", "root", "zhang"]
    assert (await client.get("/api/users", headers=bearer(sdr))).status == 403

    status, log = await call(client, "GET", "/api/audit?action=user.create", bearer(manager))
    assert status == 200 and [(e["actor"], e["actor_user_id"], e["after"]["username"]) for e in log["entries"]] == [
        ("root", admin_id, "zhang")]
    status, log = await call(client, "GET", "/api/audit?outcome=denied", bearer(admin))
    assert [(e["actor"], e["action"]) for e in log["entries"]] == [
        ("li", "user.read"), ("boss", "user.write"), ("li", "user.write")]
    assert (await client.get("/api/audit", headers=bearer(sdr))).status == 403
    status, err = await call(client, "GET", "/api/audit?outcome=maybe", bearer(admin))
    assert status == 400


async def test_teams_with_members_away_and_capacity(client):
    _, admin = await user_with_token(client, "root", "admin")
    _, lead_token = await user_with_token(client, "chen", "team_lead")
    await user_with_token(client, "wang", "sales")
    await user_with_token(client, "zhao", "sales")
    team = {"name": "华东", "members": [{"username": "wang", "capacity": 30}, {"username": "zhao", "away": True}]}
    assert (await client.post("/api/teams", json=team, headers=bearer(lead_token))).status == 403
    status, body = await call(client, "POST", "/api/teams", bearer(admin), json=team)
    assert status == 201
    assert [(m["username"], m["away"], m["capacity"]) for m in body["team"]["members"]] == [
        ("wang", False, 30), ("zhao", True, 0)]
    team_id = body["team"]["id"]
    status, body = await call(client, "POST", "/api/teams", bearer(admin), json={"name": "华东"})
    assert status == 409
    for bad in ({"username": "nobody"}, {"username": "wang", "capacity": -1}, {"username": "wang", "away": "yes"},
                {"username": "wang", "capacity": True}):
        status, _ = await call(client, "POST", f"/api/teams/{team_id}/members", bearer(admin), json=bad)
        assert status == 400, bad
    status, body = await call(client, "POST", f"/api/teams/{team_id}/members", bearer(admin),
                              json={"username": "zhao", "away": False, "capacity": 5})
    assert status == 200 and body["team"]["members"][1]["capacity"] == 5
    status, body = await call(client, "POST", f"/api/teams/{team_id}/members", bearer(admin),
                              json={"username": "wang", "remove": True})
    assert [m["username"] for m in body["team"]["members"]] == ["zhao"]
    assert (await client.post("/api/teams/999/members", json={"username": "wang"}, headers=AUTH)).status == 404

    status, listing = await call(client, "GET", "/api/teams", bearer(lead_token))  # team leads read teams
    assert status == 200 and [t["name"] for t in listing["teams"]] == ["华东"]
    changes = await audit_rows(client, action="team.member", target_id=str(team_id))
    assert [(c.before, c.after) for c in changes][-2:] == [
        ({"user_id": changes[1].after["user_id"], "away": True, "capacity": 0},
         {"user_id": changes[1].after["user_id"], "away": False, "capacity": 5}),
        ({"user_id": changes[0].after["user_id"], "away": False, "capacity": 30}, None)]
    assert all(c.actor_label == "root" for c in changes)


async def test_service_tokens_act_as_an_admin_and_are_audited_as_such(client):
    status, body = await call(client, "POST", "/api/users", AUTH, json={"username": "first", "role": "admin",
                                                                        "password": "a long enough one"})
    assert status == 201 and "password" not in body
    [entry] = await audit_rows(client, action="user.create")
    assert (entry.actor_user_id, entry.actor_label, entry.outcome) == (None, "service-token", "ok")


async def test_an_endpoint_that_declares_no_action_is_for_admins_only(client):
    """Deny by default: a user token reaches only handlers that declared their rule-table action."""
    from sdr_console.api.auth import declared_action

    undeclared = sorted(r.resource.canonical for r in client.server.app.router.routes()
                        if r.method == "GET" and r.resource is not None and r.resource.canonical.startswith("/api/")
                        and "{" not in r.resource.canonical and declared_action(r.handler) is None
                        and getattr(r.handler, "__wrapped__", None) is not None)  # behind require_token
    if not undeclared:
        pytest.skip("every API route declares its action")
    path = undeclared[0]
    _, sdr = await user_with_token(client, "li", "sdr")
    _, admin = await user_with_token(client, "root", "admin")
    status, body = await call(client, "GET", path, bearer(sdr))
    assert status == 403 and body["error"] == "forbidden"
    assert (await client.get(path, headers=bearer(admin))).status == 200
    [denied] = await audit_rows(client, outcome="denied")
    assert (denied.actor_label, denied.action, denied.target_kind, denied.target_id) == (
        "li", "api.admin_only", "route", path)
