"""Plain events recorded together (bot/inbox/plain.py, storage/repos/activity_batch.py) leave exactly what their
handlers leave one by one: the same touchpoints, lead columns, scores, stage moves and questions for SDRs."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.ingress.simulate import oa_event, oa_text, render_xml
from bot.keys import ENGINE, SERVICES, SESSIONS
from leads.identity import OA_OPENID, IdentityKey
from leads.sources import Source
from storage.models import Handoff, Identity, InboxEvent, Lead, LeadScore, StageTransition, Touchpoint
from storage.repos.leads import LeadRepository
from tests.support.calls import send_oa
from tests.support.helpers import OA_APP_ID
from tests.support.inbox import handling, statuses

SECTIONS: dict[str, Any] = {
    "intents": [{"name": "pricing", "keywords": ["价格", "报价"], "reply": "价格表发您",
                 "score_event": "visit_pricing"}],
    "menu": {"buttons": [{"name": "价格", "type": "click", "key": "intent:pricing"}]},
}
# Ability 40 (nurture) and 31 points an hour ago: one pricing touch (+20) crosses into sales_ready -> stage mql.
WARM_PROFILE = {"job_title": "vp_plus", "department": "hr", "company_size": "500_999", "company_type": "b2b"}
WARM_TOUCHES = ("webinar_register", "webinar_attend", "email_open")
NOW = int(time.time()) - 60
SEEDED_AT = datetime.fromtimestamp(NOW, UTC) - timedelta(hours=1)


@pytest.fixture
async def app(app_client):
    return await app_client(inbox={"workers": 0}, **SECTIONS)


def image(openid: str, msg_id: int) -> str:
    return render_xml({"ToUserName": "gh_leadrelay", "FromUserName": openid, "CreateTime": NOW, "MsgType": "image",
                       "PicUrl": "https://example.com/p.jpg", "MediaId": "m1", "MsgId": msg_id})


def messages(group: str) -> list[str]:
    """One group's callbacks, in arrival order; every sender but ``new`` is known beforehand."""
    g, n = group, 1_000 * (ord(group[0]) - ord("A") + 1)  # MsgIds of their own: others would be retries
    return [
        oa_text(f"{g}_warm", "想了解一下价格", n + 1, at=NOW),
        oa_event(f"{g}_menu", "CLICK", "intent:pricing", at=NOW),
        oa_text(f"{g}_cold", "报价多少", n + 2, at=NOW),
        oa_text(f"{g}_plain", "你好，在吗", n + 3, at=NOW),
        oa_event(f"{g}_where", "LOCATION", at=NOW),
        image(f"{g}_pic", n + 4),
        oa_text(f"{g}_new", "价格", n + 5, at=NOW),
        oa_text(f"{g}_twice", "你好", n + 6, at=NOW),
        oa_text(f"{g}_twice", "价格", n + 7, at=NOW),
        oa_text(f"{g}_unsub", "退订", n + 8, at=NOW),
        oa_text(f"{g}_late", "价格", n + 9, at=NOW - 600),  # older than its lead's last scored touch: replayed
        oa_text(f"{g}_alias", "价格", n + 10, at=NOW),  # another sender of {g}_warm's lead
    ]


# Recorded together, in runs of plain events: warm, menu, cold, plain, where, pic, new, twice's first; then
# (after twice's second and unsub, which go to their handlers) alias, whose lead is warm's but in another run.
# late is declined (older than its lead's last scored touch) and handled by its handler.
TOGETHER = 9


async def seed(app, group: str) -> None:
    services = app.server.app[SERVICES]
    async with app.server.app[SESSIONS]() as session, session.begin():
        repo = LeadRepository(session, services.scoring, events=services.events)

        def key(name: str) -> IdentityKey:
            return IdentityKey(OA_OPENID, OA_APP_ID, f"{group}_{name}")

        for name in ("warm", "menu", "cold", "plain", "where", "pic", "twice", "unsub", "late"):
            observed = [key(name), key("alias")] if name == "warm" else [key(name)]
            lead = await repo.resolve(observed, now=SEEDED_AT, inbox_id=None)
            if name in ("warm", "menu"):
                await repo.merge_profile(lead, WARM_PROFILE)
                for kind in WARM_TOUCHES:
                    await repo.add_touchpoint(lead, kind=kind, source=Source("webinar", "livestream"),
                                              occurred_at=SEEDED_AT, inbox_id=None, detail={"content_id": "w"})
            if name == "late":
                await repo.add_touchpoint(lead, kind="visit_pricing", source=Source("web", "pricing"),
                                          occurred_at=datetime.fromtimestamp(NOW, UTC), inbox_id=None)


async def post(app, group: str) -> list[int]:
    """The group's callbacks, each answered 200; their inbox ids in arrival order."""
    for xml in messages(group):
        assert (await send_oa(app, xml)).status == 200
    async with app.server.app[ENGINE].connect() as conn:
        mine = InboxEvent.from_user.startswith(f"{group}_", autoescape=True)
        return list((await conn.execute(select(InboxEvent.id).where(mine).order_by(InboxEvent.id))).scalars())


async def snapshot(app, group: str) -> dict[str, Any]:
    """What the group's events left, per sender name (the group prefix and database ids taken out)."""
    async with app.server.app[ENGINE].connect() as conn:
        names = {lead_id: value.split("_", 1)[1] for value, lead_id in (await conn.execute(
            select(Identity.value, Identity.lead_id).where(Identity.value.startswith(f"{group}_", autoescape=True))
            .where(~Identity.value.endswith("_alias", autoescape=True))))}
        ids = list(names)
        leads = {names[r.id]: (r.stage, r.consent, r.last_activity_at, r.oa_last_interaction_at, r.quadrant,
                               r.ability, r.motivation)
                 for r in await conn.execute(select(Lead).where(Lead.id.in_(ids)))}
        touches: dict[str, list[Any]] = {}
        for r in await conn.execute(select(Touchpoint).where(Touchpoint.lead_id.in_(ids)).order_by(Touchpoint.id)):
            detail = {k: v for k, v in r.detail.items() if k != "msg_id"}  # each group has its own MsgIds
            touches.setdefault(names[r.lead_id], []).append((r.kind, r.channel, r.scene, r.occurred_at, detail))
        scores = {}
        for r in await conn.execute(select(LeadScore).where(LeadScore.lead_id.in_(ids))):
            hits = [(rule, at, points) for rule, _, at, points in r.state["hits"]]
            scores[names[r.lead_id]] = (r.ability, r.motivation, r.quadrant, hits, r.state["counted"])
        moves = sorted((names[r.lead_id], r.from_stage, r.to_stage, r.actor, r.reason) for r in await conn.execute(
            select(StageTransition).where(StageTransition.lead_id.in_(ids))))
        questions = sorted((names[r.lead_id], r.reason, r.message, r.created_at) for r in await conn.execute(
            select(Handoff).where(Handoff.lead_id.in_(ids))))
    return {"leads": leads, "touches": touches, "scores": scores, "moves": moves, "questions": questions}


async def test_a_batch_of_plain_events_leaves_what_one_by_one_leaves(app):
    await seed(app, "A")
    await seed(app, "B")
    together_ids, alone_ids = await post(app, "A"), await post(app, "B")
    engine = app.server.app[ENGINE]

    batch = await handling(app).many(together_ids)
    assert batch.handled == len(together_ids) and batch.waiting == [] and batch.together == TOGETHER
    alone = handling(app)
    for inbox_id in alone_ids:
        assert await alone.one(inbox_id) == "done"
    assert alone.together == 0
    done = await statuses(engine)
    assert all(done[i] == ("done", 1) for i in together_ids + alone_ids)

    together, one_by_one = await snapshot(app, "A"), await snapshot(app, "B")
    assert together == one_by_one
    # ... and that is what the events should leave:
    assert ("warm", "lead", "mql", "system", "评分进入象限 sales_ready") in together["moves"]
    assert ("menu", "lead", "mql", "system", "评分进入象限 sales_ready") in together["moves"]
    assert [q[:3] for q in together["questions"]] == [("plain", "no_intent", "你好，在吗"),
                                                      ("twice", "no_intent", "你好")]
    assert [t[0] for t in together["touches"]["menu"]][-2:] == ["oa_click", "visit_pricing"]
    assert [t[0] for t in together["touches"]["pic"]] == ["oa_message_image"]
    assert together["leads"]["where"][3] == datetime.fromtimestamp(NOW, UTC)  # a location report opens the window
    assert together["leads"]["unsub"][1] == "revoked"
    assert together["scores"]["cold"][1] > 0


async def test_a_repeated_batch_records_nothing_twice(app):
    await seed(app, "A")
    ids = await post(app, "A")
    first = await handling(app).many(ids)
    assert first.together == TOGETHER
    before = await snapshot(app, "A")
    # Rows already done are not claimed again; their touchpoints' unique key would refuse a second copy anyway.
    again = await handling(app).many(ids)
    assert again.handled == 0 and again.together == 0
    assert await snapshot(app, "A") == before


async def test_two_senders_of_one_lead_in_one_run_are_recorded_one_after_the_other(app):
    await seed(app, "C")
    await seed(app, "D")
    for group in ("C", "D"):
        n = 5_000 + 100 * (ord(group) - ord("C"))
        for xml in (oa_text(f"{group}_warm", "想了解一下价格", n, at=NOW),
                    oa_text(f"{group}_alias", "你好", n + 1, at=NOW)):
            assert (await send_oa(app, xml)).status == 200
    engine = app.server.app[ENGINE]
    async with engine.connect() as conn:
        ids = {g: list((await conn.execute(select(InboxEvent.id).where(
            InboxEvent.from_user.startswith(f"{g}_", autoescape=True)).order_by(InboxEvent.id))).scalars())
            for g in ("C", "D")}
    batch = await handling(app).many(ids["C"])
    assert batch.handled == 2 and batch.together == 1  # the second waits for its handler: same lead
    for inbox_id in ids["D"]:
        assert await handling(app).one(inbox_id) == "done"
    together, one_by_one = await snapshot(app, "C"), await snapshot(app, "D")
    assert together == one_by_one
    assert [t[0] for t in together["touches"]["warm"]][-3:] == ["oa_message_text", "visit_pricing", "oa_message_text"]
