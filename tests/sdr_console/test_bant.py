"""BANT and the hand-off to sales over the JSON API: partial updates, the 409 naming the missing fields, the
configured required fields, the rule table, the actor from the token, audit rows. Real HTTP on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.app import create_app
from bot.keys import EVENTS, SESSIONS
from leads.events import BecameMQL
from storage.models import Lead, StageTransition
from tests.sdr_console.console_support import audit_rows, bearer, call, make_lead, user_with_token
from tests.support.calls import AUTH
from tests.support.helpers import make_config

COMPLETE = {"budget": "100k_500k", "authority": "decision_maker", "need": "招聘流程线上化", "timeline": "1_3_months"}


@pytest.fixture
async def client(app_client):
    return await app_client()


async def transitions(client, lead_id: int) -> list[StageTransition]:
    async with client.server.app[SESSIONS]() as session:
        stmt = select(StageTransition).where(StageTransition.lead_id == lead_id).order_by(StageTransition.id)
        return list((await session.execute(stmt)).scalars())


async def lead_row(client, lead_id: int) -> Lead:
    async with client.server.app[SESSIONS]() as session:
        lead = await session.get(Lead, lead_id)
        assert lead is not None
        return lead


async def set_stage(client, lead_id: int, stage: str) -> None:
    async with client.server.app[SESSIONS]() as session, session.begin():
        lead = await session.get(Lead, lead_id)
        assert lead is not None
        lead.stage = stage


async def put(client, lead_id: int, token: str, body: Any) -> tuple[int, Any]:
    return await call(client, "PUT", f"/api/leads/{lead_id}/bant", bearer(token), json=body)


async def hand_over(client, lead_id: int, token: str, body: Any = None) -> tuple[int, Any]:
    return await call(client, "POST", f"/api/leads/{lead_id}/transfer", bearer(token), json=body or {})


async def test_an_sdr_qualifies_a_lead_and_hands_it_to_sales(client):
    sdr_id, token = await user_with_token(client, "fang", "sdr")
    lead = await make_lead(client, "o_bant")

    status, body = await put(client, lead, token, {"budget": "约 80 万", "authority": "decision_maker"})
    assert status == 200, body
    assert body["bant"] == {"budget": "约 80 万", "authority": "decision_maker"}
    assert body["labels"]["authority"] == "决策者" and body["missing"] == ["need", "timeline"]

    status, refused = await hand_over(client, lead, token)
    assert status == 409 and refused["code"] == "bant_incomplete"
    assert refused["missing"] == ["need", "timeline"] and "需求" in refused["message"]
    assert (await lead_row(client, lead)).stage == "lead" and await transitions(client, lead) == []

    status, body = await put(client, lead, token, {"need": "招聘流程线上化", "timeline": "1_3_months", "budget": None})
    assert status == 200 and body["missing"] == ["budget"] and "budget" not in body["bant"]
    status, body = await put(client, lead, token, {"budget": "100k_500k"})
    assert status == 200 and body["missing"] == [] and body["bant"] == COMPLETE

    status, body = await hand_over(client, lead, token, {"note": "客户希望下周演示"})
    assert status == 200, body
    assert body["stage"] == "mql" and body["stage_changed"] is True and body["missing"] == []
    assert body["transition"] | {"id": 0, "occurred_at": ""} == {
        "id": 0, "from": "lead", "to": "mql", "actor": "sdr", "actor_id": "fang", "reason": "客户希望下周演示",
        "touchpoint_id": None, "occurred_at": ""}
    [move] = await transitions(client, lead)
    assert (move.actor, move.actor_id, move.to_stage) == ("sdr", "fang", "mql")

    bant_rows = await audit_rows(client, action="lead.bant", target_id=str(lead))
    assert [r.actor_user_id for r in bant_rows] == [sdr_id] * 3
    assert bant_rows[0].before == {} and bant_rows[-1].after == {**COMPLETE, "need": "<free text>"}
    assert bant_rows[0].after == {"budget": "<free text>", "authority": "decision_maker"}  # no words of theirs
    [handed] = await audit_rows(client, action="lead.transfer", target_id=str(lead))
    assert handed.actor_user_id == sdr_id and handed.outcome == "ok"
    assert handed.before == {"stage": "lead"} and handed.after["stage"] == "mql" and handed.after["with_note"]
    assert "招聘" not in repr(handed.after) and "演示" not in repr(handed.after)

    # An MQL already: the confirmation is recorded, the stage stays.
    status, body = await hand_over(client, lead, token)
    assert status == 200 and body["stage"] == "mql" and body["stage_changed"] is False
    assert body["transition"] is None and len(await transitions(client, lead)) == 1
    assert len(await audit_rows(client, action="lead.transfer", target_id=str(lead))) == 2


async def test_fewer_required_fields_in_config(app_client):
    client = await app_client(bant={"required": ["need"]})
    _, token = await user_with_token(client, "fang", "sdr")
    lead = await make_lead(client, "o_need")
    status, body = await hand_over(client, lead, token)
    assert status == 409 and body["missing"] == ["need"]
    status, body = await put(client, lead, token, {"need": "薪酬核算", "authority": "unknown"})
    assert status == 200 and body["required"] == ["need"] and body["missing"] == []
    status, body = await hand_over(client, lead, token)
    assert status == 200 and body["stage"] == "mql"


async def test_unknown_does_not_qualify(client):
    _, token = await user_with_token(client, "fang", "sdr")
    lead = await make_lead(client, "o_unknown")
    status, body = await put(client, lead, token, {**COMPLETE, "authority": "unknown"})
    assert status == 200 and body["missing"] == ["authority"]
    status, body = await hand_over(client, lead, token)
    assert status == 409 and body["missing"] == ["authority"]


async def test_a_salesperson_edits_only_their_own_leads_and_never_hands_over(client):
    sales_id, sales = await user_with_token(client, "wang", "sales")
    other_id, _ = await user_with_token(client, "zhao", "sales")
    mine = await make_lead(client, "o_mine", owner=sales_id)
    theirs = await make_lead(client, "o_theirs", owner=other_id)

    status, body = await put(client, theirs, sales, COMPLETE)
    assert status == 403 and body["code"] == "forbidden"
    assert (await lead_row(client, theirs)).profile.get("bant") is None
    status, body = await put(client, mine, sales, COMPLETE)
    assert status == 200 and body["missing"] == []
    status, body = await hand_over(client, mine, sales)  # the rule table gives sales no hand-off
    assert status == 403 and (await lead_row(client, mine)).stage == "lead"

    denied = await audit_rows(client, outcome="denied", actor_user_id=sales_id)
    assert [(r.action, r.target_id) for r in denied] == [("lead.edit", str(theirs)), ("lead.transfer", str(mine))]


async def test_a_team_lead_hands_over_a_team_members_lead(client):
    lead_id, lead_token = await user_with_token(client, "chen", "team_lead", team="华东")
    member_id, _ = await user_with_token(client, "li", "sales", team="华东")
    lead = await make_lead(client, "o_team", owner=member_id)
    assert (await put(client, lead, lead_token, COMPLETE))[0] == 200
    status, body = await hand_over(client, lead, lead_token)
    assert status == 200 and body["transition"]["actor"] == "sales" and body["transition"]["actor_id"] == "chen"
    [row] = await audit_rows(client, action="lead.transfer")
    assert row.actor_user_id == lead_id


async def test_bad_input_unknown_erased_and_stages_that_cannot_be_handed_over(client):
    _, token = await user_with_token(client, "fang", "sdr")
    lead = await make_lead(client, "o_bad")
    for bad in ({"authority": "ceo"}, {"need": "需" * 1001}, {"budget": "万" * 201}, {"timeline": 3}, {},
                {"need": "  "}, {"actor_id": "boss"}, ["need"]):
        status, body = await put(client, lead, token, bad)
        assert status == 400 and body["error"] == body["code"] and body["message"], (bad, body)
    for bad in ({"note": 5}, {"note": "n" * 2001}, {"actor": "sdr"}):
        status, body = await hand_over(client, lead, token, bad)
        assert status == 400, (bad, body)
    assert (await lead_row(client, lead)).profile.get("bant") is None
    assert await audit_rows(client, action="lead.bant") == []

    assert (await put(client, 99999, token, COMPLETE))[0] == 404
    assert (await hand_over(client, 99999, token))[0] == 404

    await set_stage(client, lead, "disqualified")
    assert (await put(client, lead, token, COMPLETE))[0] == 200
    status, body = await hand_over(client, lead, token)
    assert status == 409 and body["code"] == "transition_refused"

    assert (await client.post(f"/api/leads/{lead}/erase", headers=AUTH)).status == 200
    for status, body in (await put(client, lead, token, COMPLETE), await hand_over(client, lead, token)):
        assert status == 409 and body["code"] == "lead_erased"
    assert (await lead_row(client, lead)).profile == {"erased": True}  # BANT went with the profile


async def test_the_hand_off_publishes_became_mql(aiohttp_client, backend, jieba_base):
    heard: list[BecameMQL] = []

    async def record(tx: Any, events: Any) -> None:
        heard.extend(events)

    app = create_app(make_config(backend), jieba_base=jieba_base)
    app[EVENTS] = app[EVENTS].subscribe(BecameMQL, record)
    client = await aiohttp_client(app)
    _, token = await user_with_token(client, "fang", "sdr")
    lead = await make_lead(client, "o_event")
    await put(client, lead, token, COMPLETE)
    status, _ = await hand_over(client, lead, token)
    assert status == 200
    assert [(e.lead_id, e.from_stage, e.actor, e.actor_id) for e in heard] == [(lead, "lead", "sdr", "fang")]
