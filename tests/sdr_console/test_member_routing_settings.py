"""Routing settings over the JSON API: a member's 30-day cap and weight (POST /api/teams/{id}/members) and a
user's display name, WeCom UserID and card style (PATCH /api/users/{id}), honoured by routing and by the card
push; bad input is a 400 that changes nothing and a salesperson gets an audited 403. Real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from bot.handoff.cards import CARD_STYLES as PUSHED_STYLES
from bot.keys import SESSIONS
from bot.people.accounts import CARD_STYLES
from storage.models import Assignment, TeamMember, User
from storage.repos.users import add_user
from tests.sdr_console.console_support import audit_rows, bearer, call, make_lead, user_with_token
from tests.support.calls import AUTH
from tests.support.fakes.wechat_cards import cards_of
from tests.support.fakes.wechat_state import FakeWeChatState
from tests.support.forms import fake_state

ROUTING = {"rules": [{"team": "east", "name": "华东"}], "default_owner": ""}
COMPLETE = {"budget": "100k_500k", "authority": "decision_maker", "need": "招聘流程线上化", "timeline": "1_3_months"}


@pytest.fixture
async def client(app_client):
    return await app_client(routing=ROUTING)


async def east_id(client) -> int:
    status, body = await call(client, "GET", "/api/teams", AUTH)
    assert status == 200
    [east] = [t["id"] for t in body["teams"] if t["name"] == "east"]
    return east


async def set_member(client, team_id: int, headers: dict[str, str], body: Any) -> tuple[int, Any]:
    return await call(client, "POST", f"/api/teams/{team_id}/members", headers, json=body)


async def transfer_mqls(client, sdr: str, count: int) -> None:
    """``count`` leads made MQLs by an SDR's transfer, which routes each to the team."""
    for n in range(count):
        lead = await make_lead(client, f"o_route_{n}")
        assert (await call(client, "PUT", f"/api/leads/{lead}/bant", bearer(sdr), json=COMPLETE))[0] == 200
        status, body = await call(client, "POST", f"/api/leads/{lead}/transfer", bearer(sdr), json={})
        assert status == 200 and body["stage"] == "mql", body


async def routed_to(client) -> Counter[int | None]:
    async with client.server.app[SESSIONS]() as session:
        rows = (await session.execute(select(Assignment.user_id).where(Assignment.status == "pending"))).scalars()
        return Counter(rows)


async def stored_member(client, team_id: int, user_id: int) -> tuple[bool, int, int, int]:
    async with client.server.app[SESSIONS]() as session:
        m = await session.get(TeamMember, (team_id, user_id))
        assert m is not None
        return m.away, m.capacity, m.monthly_cap, m.weight


async def test_a_member_at_the_30_day_cap_gets_no_more_mqls(client):
    _, sdr = await user_with_token(client, "fang", "sdr")
    _, admin = await user_with_token(client, "root", "admin")
    a_id, _ = await user_with_token(client, "a", "sales", team="east")
    b_id, _ = await user_with_token(client, "b", "sales", team="east")
    team = await east_id(client)

    status, body = await set_member(client, team, bearer(admin), {"username": "a", "monthly_cap": 1})
    assert status == 200, body
    members = {m["username"]: m for m in body["team"]["members"]}
    assert {k: members["a"][k] for k in ("away", "capacity", "monthly_cap", "weight")} == {
        "away": False, "capacity": 0, "monthly_cap": 1, "weight": 0}
    assert (members["b"]["monthly_cap"], members["b"]["weight"]) == (0, 0)
    # Omitted, the cap is kept; away and capacity are set as they always were.
    status, body = await set_member(client, team, bearer(admin), {"username": "a", "capacity": 7})
    assert status == 200 and await stored_member(client, team, a_id) == (False, 7, 1, 0)
    status, body = await set_member(client, team, bearer(admin), {"username": "a"})
    assert await stored_member(client, team, a_id) == (False, 0, 1, 0)
    status, listing = await call(client, "GET", "/api/teams", AUTH)
    [east] = listing["teams"]
    assert [(m["username"], m["monthly_cap"], m["weight"]) for m in east["members"]] == [("a", 1, 0), ("b", 0, 0)]

    await transfer_mqls(client, sdr, 3)
    assert await routed_to(client) == Counter({a_id: 1, b_id: 2})

    # The audit entries name the cap once it is set (and only then: 0 is left out, as entries always read).
    changes = await audit_rows(client, action="team.member", target_id=str(team))
    assert [(c.before, c.after) for c in changes] == [
        ({"user_id": a_id, "away": False, "capacity": 0}, {"user_id": a_id, "away": False, "capacity": 0,
                                                           "monthly_cap": 1}),
        ({"user_id": a_id, "away": False, "capacity": 0, "monthly_cap": 1},
         {"user_id": a_id, "away": False, "capacity": 7, "monthly_cap": 1}),
        ({"user_id": a_id, "away": False, "capacity": 7, "monthly_cap": 1},
         {"user_id": a_id, "away": False, "capacity": 0, "monthly_cap": 1})]
    assert all(c.actor_label == "root" for c in changes)


async def test_weights_set_the_members_shares(client):
    _, sdr = await user_with_token(client, "fang", "sdr")
    a_id, _ = await user_with_token(client, "a", "sales", team="east")
    b_id, _ = await user_with_token(client, "b", "sales", team="east")
    team = await east_id(client)
    assert (await set_member(client, team, AUTH, {"username": "a", "weight": 3, "capacity": 100}))[0] == 200
    # b's capacity of 100 would be their weight, but their own weight of 1 wins.
    assert (await set_member(client, team, AUTH, {"username": "b", "weight": 1, "capacity": 100}))[0] == 200
    await transfer_mqls(client, sdr, 4)
    assert await routed_to(client) == Counter({a_id: 3, b_id: 1})


async def test_a_new_member_s_settings_and_a_new_team_s(client):
    await user_with_token(client, "a", "sales")
    await user_with_token(client, "b", "sales")
    team = {"name": "华南", "members": [{"username": "a", "weight": 2, "monthly_cap": 40}, {"username": "b"}]}
    status, body = await call(client, "POST", "/api/teams", AUTH, json=team)
    assert status == 201, body
    assert [(m["username"], m["monthly_cap"], m["weight"]) for m in body["team"]["members"]] == [
        ("a", 40, 2), ("b", 0, 0)]


async def test_bad_member_settings_are_400_and_change_nothing(client):
    _, admin = await user_with_token(client, "root", "admin")
    a_id, _ = await user_with_token(client, "a", "sales", team="east")
    team = await east_id(client)
    assert (await set_member(client, team, bearer(admin), {"username": "a", "monthly_cap": 5, "weight": 2,
                                                            "capacity": 3}))[0] == 200
    before = await audit_rows(client, action="team.member")
    for bad in ({"monthly_cap": -1}, {"monthly_cap": 100_001}, {"monthly_cap": 1.5}, {"monthly_cap": True},
                {"monthly_cap": None}, {"monthly_cap": "3"}, {"weight": -1}, {"weight": 1001}, {"weight": False},
                {"weight": None}, {"weight": 2**64}, {"weight": 1, "capacity": -1}):
        status, err = await set_member(client, team, bearer(admin), {"username": "a", **bad})
        assert status == 400 and err["error"] in {"bad_field", "bad_json"}, (bad, err)  # 2^64: the JSON parser's
        assert await stored_member(client, team, a_id) == (False, 3, 5, 2), bad
    assert len(await audit_rows(client, action="team.member")) == len(before)
    # The edges are accepted.
    status, body = await set_member(client, team, bearer(admin), {"username": "a", "monthly_cap": 100_000,
                                                                   "weight": 1000})
    assert status == 200 and await stored_member(client, team, a_id) == (False, 0, 100_000, 1000)


async def test_a_salesperson_may_not_change_members(client):
    _, sales = await user_with_token(client, "a", "sales", team="east")
    team = await east_id(client)
    status, err = await set_member(client, team, bearer(sales), {"username": "a", "weight": 1000})
    assert status == 403 and err["error"] == "forbidden"
    assert (await stored_member(client, team, (await call(client, "GET", "/api/users", AUTH))[1]["users"][0]["id"]))[
        3] == 0


async def stored_user(client, user_id: int) -> tuple[str, str | None, str]:
    async with client.server.app[SESSIONS]() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user.display_name, user.wecom_userid, user.card_style


async def test_an_admin_edits_a_user_s_name_wecom_userid_and_card_style(client):
    admin_id, admin = await user_with_token(client, "root", "admin")
    chen_id, _ = await user_with_token(client, "chen", "sales", team="east")
    status, listing = await call(client, "GET", "/api/users", bearer(admin))
    assert [u["card_style"] for u in listing["users"]] == ["template_card", "template_card"]

    status, body = await call(client, "PATCH", f"/api/users/{chen_id}", bearer(admin),
                              json={"card_style": "textcard", "wecom_userid": " sales_chen ", "display_name": "陈静"})
    assert status == 200, body
    assert body["changed"] is True and body["user"]["teams"] == ["east"]
    assert {k: body["user"][k] for k in ("id", "username", "display_name", "wecom_userid", "card_style")} == {
        "id": chen_id, "username": "chen", "display_name": "陈静", "wecom_userid": "sales_chen",
        "card_style": "textcard"}
    assert await stored_user(client, chen_id) == ("陈静", "sales_chen", "textcard")
    status, listing = await call(client, "GET", "/api/users", bearer(admin))
    assert [u["card_style"] for u in listing["users"]] == ["template_card", "textcard"]

    [entry] = await audit_rows(client, action="user.update")
    assert (entry.actor_user_id, entry.actor_label, entry.target_kind, entry.target_id, entry.outcome) == (
        admin_id, "root", "user", str(chen_id), "ok")
    assert {k: entry.before[k] for k in ("display_name", "wecom_userid", "card_style")} == {
        "display_name": "chen", "wecom_userid": None, "card_style": "template_card"}
    assert {k: entry.after[k] for k in ("display_name", "wecom_userid", "card_style")} == {
        "display_name": "陈静", "wecom_userid": "sales_chen", "card_style": "textcard"}

    # Absent fields are kept, null clears the WeCom UserID; the same values again change (and audit) nothing.
    status, body = await call(client, "PATCH", f"/api/users/{chen_id}", AUTH, json={"wecom_userid": None})
    assert status == 200 and body["changed"] is True
    assert await stored_user(client, chen_id) == ("陈静", None, "textcard")
    status, body = await call(client, "PATCH", f"/api/users/{chen_id}", AUTH, json={"card_style": "textcard"})
    assert status == 200 and body["changed"] is False
    assert len(await audit_rows(client, action="user.update")) == 2


async def test_bad_user_edits_are_400_or_404_and_change_nothing(client):
    _, admin = await user_with_token(client, "root", "admin")
    chen_id, _ = await user_with_token(client, "chen", "sales")
    for bad in ({}, {"card_style": "html"}, {"card_style": None}, {"card_style": ["textcard"]},
                {"display_name": ""}, {"display_name": "  "}, {"display_name": None}, {"display_name": "名" * 101},
                {"wecom_userid": {"a": 1}}, {"wecom_userid": "w" * 65}, {"wecom_userid": "a\u0000"},
                {"role": "admin"}, {"password": "a long enough one"}, {"card_style": "textcard", "role": "admin"}):
        status, err = await call(client, "PATCH", f"/api/users/{chen_id}", bearer(admin), json=bad)
        assert status == 400 and err["error"] in {"bad_field", "bad_json", "invalid_body"}, (bad, err)
        assert await stored_user(client, chen_id) == ("chen", None, "template_card"), bad
    status, err = await call(client, "PATCH", "/api/users/999999", bearer(admin), json={"card_style": "textcard"})
    assert status == 404 and err["error"] == "not_found"
    status, _ = await call(client, "PATCH", "/api/users/abc", bearer(admin), json={"card_style": "textcard"})
    assert status in {400, 404}
    async with client.server.app[SESSIONS]() as session:
        assert (await session.get(User, chen_id)).role == "sales"
    assert await audit_rows(client, action="user.update") == []


async def test_a_salesperson_may_not_edit_users_and_is_audited(client):
    chen_id, sales = await user_with_token(client, "chen", "sales")
    _, manager = await user_with_token(client, "boss", "manager")
    for token in (sales, manager):
        status, err = await call(client, "PATCH", f"/api/users/{chen_id}", bearer(token),
                                 json={"card_style": "textcard"})
        assert status == 403 and err["error"] == "forbidden"
    assert await stored_user(client, chen_id) == ("chen", None, "template_card")
    denied = await audit_rows(client, outcome="denied")
    assert [(d.actor_label, d.action) for d in denied] == [("chen", "user.write"), ("boss", "user.write")]


def test_the_card_styles_are_the_hand_off_s():
    assert CARD_STYLES == PUSHED_STYLES


# The card push reads the style set over the API.
@pytest.fixture
def wechat_state() -> FakeWeChatState:
    state = fake_state()
    state.register_employee("sales_chen")
    return state


@pytest.fixture
async def push_client(app_client, fake):
    return await app_client(api_base_url=fake.base_url, routing=ROUTING)


async def test_a_user_switched_to_textcard_gets_a_textcard(push_client, fake):
    client = push_client
    _, sdr = await user_with_token(client, "fang", "sdr")
    async with client.server.app[SESSIONS]() as session, session.begin():
        chen = await add_user(session, username="chen", role="sales", password_hash="x", wecom_userid="sales_chen")
    status, _ = await call(client, "POST", "/api/teams", AUTH, json={"name": "east", "members": [{"username": "chen"}]})
    assert status == 201
    status, body = await call(client, "PATCH", f"/api/users/{chen.id}", AUTH, json={"card_style": "textcard"})
    assert status == 200 and body["user"]["card_style"] == "textcard"
    await transfer_mqls(client, sdr, 1)
    state = cards_of(fake.state)
    deadline = time.monotonic() + 10
    while not state.messages(fake.state, "textcard", "sales_chen") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert len(state.messages(fake.state, "textcard", "sales_chen")) == 1
    assert state.messages(fake.state, "template_card") == []
