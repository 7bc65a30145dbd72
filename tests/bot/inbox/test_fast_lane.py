"""The fast lane: the events of leads that more intent would hand to sales skip the queue."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.dispatch.router import Router
from bot.inbox.fast_lane import FastLane
from bot.keys import CONFIG, ENGINE, PROCESSOR, SERVICES, SESSIONS
from handlers import build_router
from leads.identity import OA_OPENID, IdentityKey
from leads.sources import Source
from storage.models import InboxEvent, Lead, StageTransition, Touchpoint
from storage.repos.leads import LeadRepository
from tests.support.calls import post_texts
from tests.support.helpers import CORP_ID, OA_APP_ID
from tests.support.inbox import handling, statuses

PRICING = {"name": "pricing", "keywords": ["价格"], "reply": "价格请见官网", "score_event": "visit_pricing"}
ABLE = {"job_title": "vp_plus", "department": "hr", "company_size": "500_999", "company_type": "b2b"}
ASK_PRICE = "想了解一下价格"  # visit_pricing, +20: from 31 to 51, over the threshold of 50
STUCK = "这条消息的处理会卡住"
APP_IDS = {"oa": OA_APP_ID, "wecom": CORP_ID}


async def seed(app, openid: str, *, profile: dict[str, str], touches: int) -> int:
    """A lead an hour old: ``touches`` webinar registrations + attendances (10 + 20 each) and an email open."""
    at = datetime.now(UTC) - timedelta(hours=1)
    async with app[SESSIONS]() as session, session.begin():
        repo = LeadRepository(session, app[SERVICES].scoring)
        lead = await repo.resolve([IdentityKey(OA_OPENID, OA_APP_ID, openid)], now=at, inbox_id=None)
        await repo.merge_profile(lead, profile)
        kinds = ["webinar_register", "webinar_attend"] * touches + ["email_open"]
        for n, kind in enumerate(kinds):
            await repo.add_touchpoint(lead, kind=kind, source=Source("webinar", "livestream"), occurred_at=at,
                                      inbox_id=None, detail={"content_id": f"webinar-{n // 2}"})
        return lead.id


async def stage_of(engine, lead_id: int) -> str:
    async with engine.connect() as conn:
        return (await conn.execute(select(Lead.stage).where(Lead.id == lead_id))).scalar_one()


@pytest.fixture
async def app(app_client):
    # No workers: rows stay pending until the test hands them to the lane.
    return await app_client(inbox={"workers": 0}, intents=[PRICING])


def lane_for(client, actions: dict[str, tuple[str, ...]] | None = None) -> FastLane:
    """A lane over the app's rows, with the app's scoring rules or these quadrant actions instead."""
    app = client.server.app
    rules = app[SERVICES].scoring.rules
    if actions is not None:
        rules = dataclasses.replace(rules, actions=actions)
    return FastLane(app[ENGINE], handling(client), rules, APP_IDS,
                    interval_s=0.01, batch=app[CONFIG].inbox.process_batch, clock=lambda: datetime.now(UTC))


async def test_only_leads_that_more_intent_would_make_mqls_are_urgent_and_theirs_are_handled_in_order(app):
    a = app.server.app
    warm = await seed(a, "o_warm", profile=ABLE, touches=1)  # ability 40, motivation 31: nurture
    await seed(a, "o_low", profile={}, touches=1)  # ability 0: more intent makes it other_solution, a tag
    mql = await seed(a, "o_mql", profile=ABLE, touches=2)  # already an MQL: nothing left for intent to move
    assert await stage_of(a[ENGINE], mql) == "mql" and await stage_of(a[ENGINE], warm) == "lead"
    ids = await post_texts(app, [("o_low", ASK_PRICE), ("o_warm", "你好"), ("o_stranger", ASK_PRICE),
                                 ("o_mql", ASK_PRICE), ("o_warm", ASK_PRICE)])
    lane = lane_for(app)
    assert lane.enabled
    assert await lane.urgent_senders(ids[0], ids[-1]) == [("oa", "o_warm")]
    assert await lane.urgent_senders(ids[2], ids[3]) == []  # only the rows in the span are looked at

    await lane.handle(await lane.urgent_senders(ids[0], ids[-1]))
    assert lane.handled == 2
    final = await statuses(a[ENGINE])
    assert [final[i][0] for i in ids] == ["pending", "done", "pending", "pending", "done"]
    async with a[ENGINE].connect() as conn:
        order = list((await conn.execute(select(Touchpoint.inbox_id).where(Touchpoint.inbox_id.in_(ids))
                                         .order_by(Touchpoint.id))).scalars())
        moves = (await conn.execute(select(StageTransition.from_stage, StageTransition.to_stage)
                                    .where(StageTransition.lead_id == warm))).all()
    assert order[0] == ids[1] and set(order) == {ids[1], ids[4]}  # the greeting first, then the question
    assert moves == [("lead", "mql")]
    assert await lane.urgent_senders(ids[0], ids[-1]) == []  # handled, and an MQL now


async def test_a_lane_without_stage_actions_to_reach_is_off(app):
    lane = lane_for(app, {"sales_ready": ("tag:hot",), "other_solution": ("tag:other",)})
    assert not lane.enabled and await lane.urgent_senders(0, 10**9) == []


async def test_a_stage_action_on_other_solution_makes_low_ability_leads_urgent(app):
    await seed(app.server.app, "o_low", profile={}, touches=1)
    await seed(app.server.app, "o_able", profile=ABLE, touches=1)
    ids = await post_texts(app, [("o_low", ASK_PRICE), ("o_able", ASK_PRICE)])
    lane = lane_for(app, {"sales_ready": (), "other_solution": ("stage:recycled",)})
    assert await lane.urgent_senders(ids[0], ids[-1]) == [("oa", "o_low")]


def stuck_router(gate: asyncio.Event) -> Router:
    """The real handlers, except that a text saying STUCK waits for the gate before it is handled."""
    root = Router("test-stuck")
    real = build_router()

    @root.on(lambda event: event.msg_type == "text" and event.fields.get("Content") == STUCK)
    async def stuck(ctx) -> None:
        await gate.wait()
        handler = real.match(ctx.event)
        assert handler is not None
        await handler(ctx)

    root.include(real)
    return root


async def test_a_warm_leads_question_skips_a_stuck_queue_and_makes_it_an_mql(app_client, backend):
    if not backend.is_production:
        pytest.skip("SQLite's single connection is held by the stuck event: nothing else can run meanwhile")
    gate = asyncio.Event()
    client = await app_client(router=stuck_router(gate), inbox={"workers": 1, "process_batch": 1, "fast_lane_ms": 20},
                              intents=[PRICING])
    app = client.server.app
    warm = await seed(app, "o_hot", profile=ABLE, touches=1)
    try:
        ids = await post_texts(client, [("o_cold", STUCK), ("o_cold", "你好"), ("o_hot", ASK_PRICE)])
        deadline = time.monotonic() + 5
        while await stage_of(app[ENGINE], warm) != "mql":
            assert time.monotonic() < deadline, await statuses(app[ENGINE])
            await asyncio.sleep(0.02)
        # The only worker is still stuck on the first event; the lane handled the question.
        assert {i: s for i, (s, _) in (await statuses(app[ENGINE])).items()} == {
            ids[0]: "pending", ids[1]: "pending", ids[2]: "done"}
        assert app[PROCESSOR].fast_lane.handled == 1
    finally:
        gate.set()
    deadline = time.monotonic() + 10
    async with app[ENGINE].connect() as conn:
        while (await conn.execute(select(InboxEvent.id).where(InboxEvent.status != "done"))).first():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
