"""GET|POST /api/segments: a segment is a saved lead-list query, validated by the list's own model."""

from __future__ import annotations

import pytest

from bot.keys import SESSIONS
from storage.models import Segment
from tests.bot.batches.seed import count
from tests.sdr_console.console_support import audit_rows, bearer, call, user_with_token
from tests.support.calls import AUTH

URL = "/api/segments"


async def test_an_sdr_saves_a_segment_and_everyone_with_batch_rights_lists_it(app_client) -> None:
    client = await app_client()
    _, sdr = await user_with_token(client, "sdr1", "sdr")
    _, lead = await user_with_token(client, "tl1", "team_lead", team="华东")
    status, body = await call(client, "POST", URL, bearer(sdr),
                              json={"name": " 展会 MQL ", "query": "stage=mql&tag=展会&limit=20&sort=created_at"})
    assert status == 201, body
    assert (body["name"], body["query"], body["created_by"]) == ("展会 MQL", {"stage": ["mql"], "tag": "展会",
                                                                             "sort": "created_at"}, "sdr1")
    assert body["href"].startswith("/console/leads?stage=mql")
    status, listed = await call(client, "POST", URL, bearer(lead), json={"name": "团队", "query": {"stage": "lead"}})
    assert status == 201
    status, listed = await call(client, "GET", URL, bearer(lead))
    assert status == 200 and [s["name"] for s in listed["items"]] == ["团队", "展会 MQL"] and listed["total"] == 2
    (entry, _) = await audit_rows(client, action="segment.create")
    assert entry.after == {"name": "展会 MQL", "filters": ["sort", "stage", "tag"]}


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"name": "", "query": ""}, 400, "invalid_body"),
    ({"name": "\x07", "query": ""}, 400, "invalid_body"),
    ({"name": "x" * 61, "query": ""}, 400, "invalid_body"),
    ({"name": "坏", "query": "stage=nonsense"}, 400, "bad_parameter"),
    ({"name": "坏", "query": {"ability_min": "abc"}}, 400, "bad_parameter"),
    ({"name": "坏", "query": "q=" + "x" * 3000}, 400, "invalid_body"),
    ({"name": "坏"}, 400, "invalid_body"),
    ({"name": "已有", "query": ""}, 409, "exists"),
])
async def test_bad_segments_are_refused_and_nothing_is_saved(app_client, payload: dict, status: int,
                                                             code: str) -> None:
    client = await app_client()
    assert (await call(client, "POST", URL, AUTH, json={"name": "已有", "query": ""}))[0] == 201
    got, body = await call(client, "POST", URL, AUTH, json=payload)
    assert (got, body["code"]) == (status, code), body
    async with client.server.app[SESSIONS]() as session:
        assert await count(session, Segment) == 1


async def test_salespeople_may_neither_read_nor_write_segments(app_client) -> None:
    client = await app_client()
    _, token = await user_with_token(client, "s1", "sales")
    assert (await call(client, "GET", URL, bearer(token)))[0] == 403
    assert (await call(client, "POST", URL, bearer(token), json={"name": "x", "query": ""}))[0] == 403
    assert [e.action for e in await audit_rows(client, outcome="denied")] == ["batch.read", "segment.write"]
