"""Routing through the real endpoints: a prospect's follow (first touch: the expo's QR code), the demo form and a
pricing question make scoring declare an MQL, and the rule matching its channel, company size and score routes it
to the team's member in the same transaction."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from bot.config.capture import build_capture, validate_capture
from bot.config.handoff import build_routing
from bot.config.scoring import build_scoring
from bot.ingress.simulate import oa_event, oa_text
from bot.keys import ENGINE, SESSIONS
from storage.models import Assignment, AssignmentEvent, Lead
from storage.repos.teams import add_team, set_member
from storage.repos.users import add_user
from tests.storage.test_scoring_e2e import PRICING, fill_demo_form_in_wechat
from tests.support.calls import send_oa
from tests.support.forms import FORMS, capture_config
from tests.support.helpers import free_port, lead_ids, wait_processed

ROUTING = build_routing({"rules": [
    {"team": "expo", "channel": "expo", "company_size": "100_499", "name": "展会中型企业"},  # not this size
    {"team": "expo", "channel": "expo", "company_size": ["500_999", "1000_plus"], "min_score": 60,
     "name": "展会大客户"},
], "default_owner": "nobody-here"})


@pytest.fixture
async def client(app_client, backend, fake):
    port = free_port()
    config = capture_config(backend, api_base_url=fake.base_url, public_url=f"http://127.0.0.1:{port}")
    capture = build_capture({"forms": FORMS, "intents": [PRICING]})
    validate_capture(capture)
    scoring = build_scoring({"motivation_threshold": 60, "ability_threshold": 25})
    config = dataclasses.replace(config, capture=capture, scoring=scoring, routing=ROUTING)
    return await app_client(config, port=port)


async def test_an_mql_made_by_scoring_is_routed_to_the_matching_team(client, fake):
    async with client.server.app[SESSIONS]() as s, s.begin():
        team = await add_team(s, "expo")
        member = await add_user(s, username="zhao", role="sales", password_hash="x")
        away = await add_user(s, username="qian", role="sales", password_hash="x")
        await set_member(s, team.id, member.id)
        await set_member(s, team.id, away.id, away=True)
        member_id, team_id = member.id, team.id
    engine = client.server.app[ENGINE]
    fake.state.register_user("o_route", unionid="u_route")
    await send_oa(client, oa_event("o_route", "subscribe", "qrscene_expo2026"))
    await wait_processed(engine, expected=1)
    (lead_id,) = await lead_ids(engine)
    await fill_demo_form_in_wechat(client, fake, "o_route")
    async with engine.connect() as conn:  # not an MQL yet: nobody is assigned
        assert (await conn.execute(select(Assignment))).all() == []

    assert (await send_oa(client, oa_text("o_route", "想了解一下价格", 7_000_000_101))).status == 200
    await wait_processed(engine, expected=2)
    async with engine.connect() as conn:
        lead = (await conn.execute(select(Lead.stage, Lead.owner_user_id).where(Lead.id == lead_id))).one()
        rows = (await conn.execute(select(Assignment.user_id, Assignment.team_id, Assignment.rule,
                                          Assignment.status))).all()
        kinds = (await conn.execute(select(AssignmentEvent.kind).where(AssignmentEvent.lead_id == lead_id))).scalars()
        assert "assigned" in set(kinds)
    assert tuple(lead) == ("mql", member_id)
    assert [tuple(r) for r in rows] == [(member_id, team_id, "展会大客户", "pending")]

    # Another message from the MQL: it is not routed again.
    assert (await send_oa(client, oa_text("o_route", "价格是多少", 7_000_000_102))).status == 200
    await wait_processed(engine, expected=3)
    async with engine.connect() as conn:
        assert len((await conn.execute(select(Assignment.id))).all()) == 1
