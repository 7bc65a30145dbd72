"""GET /api/leads/{id}/timeline over real HTTP on both backends: one merged newest-first stream of messages in
and out, touchpoints and stage changes; paging with next_before is complete and non-overlapping even when rows
share a timestamp; bad cursors and limits are 400s; the rule table scopes it (403 audited); unknown leads 404."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.keys import ENGINE
from storage.db import session_factory
from storage.models import OutboxMessage, Touchpoint
from tests.sdr_console.console_support import audit_rows, bearer, call, user_with_token
from tests.sdr_console.lead_seed import T0, seed_360


@pytest.fixture
async def client(app_client):
    return await app_client()


async def test_the_stream_reads_as_a_conversation(client):
    sdr_id, token = await user_with_token(client, "li", "sdr")
    lead = await seed_360(client.server.app[ENGINE], touches=2, author=sdr_id)
    status, body = await call(client, "GET", f"/api/leads/{lead}/timeline", bearer(token))
    assert status == 200 and body["lead_id"] == lead and body["next_before"] is None
    kinds = [(i["kind"], i["text"]) for i in body["items"]]
    assert kinds == [("inbound", "你好，想了解一下价格 1"), ("outbound", "您好！你好，想了解一下价格"),
                     ("inbound", "你好，想了解一下价格 0"), ("stage", "重新关注"),
                     ("stage", "低能力低意向 你好，想了解一下价格"), ("event", "qrscene_expo")]
    reply = body["items"][1]
    assert reply["author"] == "li" and reply["title"] == "客服消息" and reply["status"] == "已发送"
    assert body["items"][5]["title"] == "关注公众号"


async def test_pages_are_complete_and_disjoint_with_equal_timestamps(client):
    _, token = await user_with_token(client, "li", "sdr")
    engine = client.server.app[ENGINE]
    lead = await seed_360(engine, touches=0)
    async with session_factory(engine)() as session, session.begin():
        for n in range(25):  # 25 touchpoints and 25 replies on three instants
            at = T0 + timedelta(seconds=n % 3)
            session.add(Touchpoint(lead_id=lead, kind="oa_message_text", scene="c", channel="oa", occurred_at=at,
                                   detail={"content": f"t{n}"}))
            session.add(OutboxMessage(idempotency_key=f"eq-{n}", target="oa", method="oa.custom_text",
                                      payload={"content": f"o{n}"}, created_at=at, lead_id=lead))
    ids: list[str] = []
    before = None
    pages = 0
    while True:
        query = {"limit": "7", **({"before": before} if before else {})}
        status, body = await call(client, "GET", f"/api/leads/{lead}/timeline", bearer(token), params=query)
        assert status == 200
        ids += [i["id"] for i in body["items"]]
        pages += 1
        before = body["next_before"]
        if before is None:
            break
    assert len(ids) == len(set(ids)) == 54  # 50 + the seed's reply, subscribe and two stage changes
    assert pages == 8
    _, whole = await call(client, "GET", f"/api/leads/{lead}/timeline", bearer(token), params={"limit": "100"})
    assert [i["id"] for i in whole["items"]] == ids


@pytest.mark.parametrize("query", [{"before": "garbage"}, {"before": "1.x.1"}, {"limit": "0"}, {"limit": "101"},
                                   {"limit": "abc"}, {"before": "a" * 61}, {"before": "1.t.1\u0000"}])
async def test_bad_parameters_are_400(client, query):
    _, token = await user_with_token(client, "li", "sdr")
    lead = await seed_360(client.server.app[ENGINE])
    status, body = await call(client, "GET", f"/api/leads/{lead}/timeline", bearer(token), params=query)
    assert status == 400 and body["code"] in ("bad_parameter", "bad_url")  # a NUL: refused before routing


async def test_scoped_by_the_rule_table(client):
    engine = client.server.app[ENGINE]
    own_id, own = await user_with_token(client, "sun", "sales")
    other_id, _ = await user_with_token(client, "zhou", "sales")
    mine, theirs = await seed_360(engine, owner=own_id), await seed_360(engine, owner=other_id)
    assert (await call(client, "GET", f"/api/leads/{mine}/timeline", bearer(own)))[0] == 200
    status, _ = await call(client, "GET", f"/api/leads/{theirs}/timeline", bearer(own))
    assert status == 403
    assert len(await audit_rows(client, outcome="denied", target_id=str(theirs))) == 1
    assert (await call(client, "GET", "/api/leads/999999/timeline", bearer(own)))[0] == 404
