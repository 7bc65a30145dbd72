"""GET /api/batches: the batches the caller may see, newest first, each with its segment, creator, channel counts
and outcome counts (as the report shows each recipient), in keyset pages; salespeople are refused (audited) and
bad parameters are a 400."""

from __future__ import annotations

import pytest

from bot.batches.job import run_batches
from bot.keys import CONFIG, CONVERSATION, ENQUEUE, SERVICES, SESSIONS
from tests.sdr_console.console_support import audit_rows, bearer, call, user_with_token
from tests.sdr_console.test_batches_api import BATCHES, CONFIG_SECTIONS, seed, segment
from tests.support.calls import AUTH


async def test_the_list_is_newest_first_with_channel_and_outcome_counts(app_client) -> None:
    client = await app_client(**CONFIG_SECTIONS)  # sandbox: nothing leaves, the outcomes say so
    await seed(client)  # three earlier sends, made without a creator (as a service token's)
    _, token = await user_with_token(client, "sdr1", "sdr")
    segment_id = await segment(client, name="展会潜客")
    ids = []
    for text, channels in (("第一批", ["wecom", "oa"]), ("第二批", ["oa"])):
        status, body = await call(client, "POST", BATCHES, bearer(token), json={"segment_id": segment_id,
                                                                                 "text": text, "channels": channels})
        assert status == 202, body
        ids.append(body["id"])
    app = client.server.app
    await run_batches(app[SESSIONS], app[SERVICES].wecom_api, app[CONFIG], app[CONVERSATION].links, app[ENQUEUE])
    status, body = await call(client, "GET", BATCHES + "?limit=2", bearer(token))
    assert status == 200, body
    newest, older = body["items"]
    assert [newest["id"], older["id"]] == ids[::-1] and body["next_before"] == ids[0]
    assert (newest["segment"], newest["created_by"], newest["text"], newest["sandbox"]) == (
        "展会潜客", "sdr1", "第二批", True)
    # The OA follower's template message is sandboxed too (the job fanned it out); the second went to OA only.
    assert older["channels"] == {"wecom": 2, "oa": 1} and older["total"] == 7
    assert older["outcomes"] == {"sandboxed": 3, "excluded": 4}
    assert newest["outcomes"] == {"sandboxed": 1, "excluded": 6} and newest["channels"] == {"oa": 1}
    assert sum(newest["outcomes"].values()) == newest["total"] == 7
    status, rest = await call(client, "GET", f"{BATCHES}?limit=2&before={body['next_before']}", bearer(token))
    assert status == 200 and [i["created_by"] for i in rest["items"]] == [None, None]  # the seed's, by nobody
    status, last = await call(client, "GET", f"{BATCHES}?before={rest['items'][-1]['id']}", bearer(token))
    assert (status, len(last["items"]), last["next_before"]) == (200, 1, None)


async def test_a_team_lead_sees_what_the_rule_table_allows_and_sales_are_refused(app_client) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    await seed(client)
    _, lead_token = await user_with_token(client, "tl", "team_lead", team="华东")
    _, sales_token = await user_with_token(client, "s1", "sales", team="华东")
    status, body = await call(client, "GET", BATCHES, bearer(lead_token))
    assert status == 200 and len(body["items"]) == 3  # batch.read is ALL for a team lead in leads/access.py
    status, body = await call(client, "GET", BATCHES, bearer(sales_token))
    assert (status, body["code"]) == (403, "forbidden")
    assert [e.action for e in await audit_rows(client, outcome="denied")] == ["batch.read"]


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x", "before=0", "before=-1", "before=abc",
                                   "before=1.5", "limit=%C2%B2"])
async def test_bad_parameters_are_a_400(app_client, query: str) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    status, body = await call(client, "GET", f"{BATCHES}?{query}", AUTH)
    assert status == 400, (query, body)


async def test_a_team_lead_sees_a_batch_but_only_the_names_of_the_teams_leads(app_client) -> None:
    client = await app_client(**CONFIG_SECTIONS)
    await seed(client)
    _, sdr = await user_with_token(client, "sdr2", "sdr")
    _, lead_token = await user_with_token(client, "tl2", "team_lead", team="华南")  # owns none of the seeded leads
    status, sent = await call(client, "POST", BATCHES, bearer(sdr), json={"segment_id": await segment(client),
                                                                            "text": "您好"})
    assert status == 202, sent
    status, full = await call(client, "GET", f"{BATCHES}/{sent['id']}", bearer(sdr))
    assert status == 200 and any(r["display_name"] for r in full["recipients"])
    status, narrowed = await call(client, "GET", f"{BATCHES}/{sent['id']}", bearer(lead_token))
    assert status == 200 and len(narrowed["recipients"]) == len(full["recipients"])
    assert [r["display_name"] for r in narrowed["recipients"]] == [None] * len(full["recipients"])
