"""POST /api/leads/{id}/accept and /return, GET /api/handoff/return-reasons, GET /api/exports/accepted.csv:
the console's rules (403 for another salesperson's lead, audited), 409 twice, 400 bad reason, 404 unknown; a
return puts the lead back in the SDR queue and tells the SDR; the 360's timeline shows the hand-off's steps."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from bot.keys import SESSIONS
from leads.events import StageChanged
from leads.identity import PHONE
from leads.lifecycle import transition
from storage.models import Identity, OutboxMessage, User, utcnow
from storage.repos.assignments import assign_lead
from storage.repos.events import NO_SUBSCRIBERS, EventTx
from storage.repos.stages import change_stages
from storage.repos.teams import team_by_name
from tests.sdr_console.console_support import audit_rows, bearer, call, make_lead, user_with_token
from tests.support.calls import AUTH


@pytest.fixture
async def client(app_client):
    return await app_client()  # sandbox mode: no CRM URL, so no delivery is recorded


async def _people(client) -> dict[str, Any]:
    people: dict[str, Any] = {}
    for name, role, team in (("sdr1", "sdr", None), ("zhang", "sales", "华东"), ("li", "sales", "华东")):
        people[name] = await user_with_token(client, name, role, team)
    async with client.server.app[SESSIONS]() as s, s.begin():
        await s.execute(update(User).where(User.username == "sdr1").values(wecom_userid="SdrOne"))
    return people


async def _routed_mql(client, people: dict[str, Any], openid: str, phone: str = "13812345678") -> int:
    """A lead the SDR transferred to sales (MQL), routed to zhang."""
    lead_id = await make_lead(client, openid)
    async with client.server.app[SESSIONS]() as s, s.begin():
        s.add(Identity(lead_id=lead_id, kind=PHONE, app="", value=phone, verified=True))
        tx = EventTx(s, NO_SUBSCRIBERS)
        await change_stages(tx, [StageChanged.of(lead_id, transition("lead", "mql", "sdr", "BANT 已确认", "sdr1"),
                                                 utcnow())])
        team = await team_by_name(s, "华东")
        await assign_lead(tx, lead_id, people["zhang"][0], rule="routing.rules[0]", reason="华东制造业",
                          at=utcnow(), team_id=team.id)
    return lead_id


async def test_accept_moves_the_lead_to_sal_once(client):
    people = await _people(client)
    lead_id = await _routed_mql(client, people, "o-accept")
    zhang = bearer(people["zhang"][1])
    status, body = await call(client, "POST", f"/api/leads/{lead_id}/accept", zhang)
    assert status == 200, body
    assert (body["stage"], body["owner_user_id"]) == ("sal", people["zhang"][0])
    assert (body["assignment"]["status"], body["assignment"]["decided_by_user_id"]) == ("accepted", people["zhang"][0])
    status, again = await call(client, "POST", f"/api/leads/{lead_id}/accept", zhang)
    assert (status, again["message"]) == (409, "已接受")
    status, timeline = await call(client, "GET", f"/api/leads/{lead_id}/timeline", zhang)
    titles = [i["title"] for i in timeline["items"] if i["kind"] == "handoff"]
    assert titles == ["销售接受", "分配给 zhang（规则：routing.rules[0]）"]
    assert (await audit_rows(client, action="lead.accept"))[0].target_id == str(lead_id)


async def test_return_goes_back_to_the_sdr_queue_and_tells_the_sdr(client):
    people = await _people(client)
    lead_id = await _routed_mql(client, people, "o-return")
    status, body = await call(client, "POST", f"/api/leads/{lead_id}/return", bearer(people["zhang"][1]),
                              json={"reason": "预算不足", "text": "明年再说"})
    assert status == 200, body
    assert (body["stage"], body["owner_user_id"]) == ("returned", None)
    assert (body["assignment"]["return_reason"], body["assignment"]["return_text"]) == ("预算不足", "明年再说")
    status, queue = await call(client, "GET", "/api/leads?owner=none", bearer(people["sdr1"][1]))
    assert lead_id in [item["id"] for item in queue["items"]]
    async with client.server.app[SESSIONS]() as s:
        notice = (await s.execute(select(OutboxMessage).where(OutboxMessage.method == "wecom.app_text"))).scalar_one()
    assert notice.payload["userid"] == "SdrOne" and "预算不足" in notice.payload["content"]
    assert notice.status == "sandboxed"
    status, timeline = await call(client, "GET", f"/api/leads/{lead_id}/timeline", AUTH)
    returned = next(i for i in timeline["items"] if i["kind"] == "handoff")
    assert (returned["title"], returned["text"], returned["author"]) == ("销售退回：预算不足", "明年再说", "zhang")
    entry = (await audit_rows(client, action="lead.return"))[0]
    assert "明年再说" not in str(entry.after)  # the reason code only


async def test_refusals(client):
    people = await _people(client)
    lead_id = await _routed_mql(client, people, "o-refuse")
    li, zhang = bearer(people["li"][1]), bearer(people["zhang"][1])
    status, body = await call(client, "POST", f"/api/leads/{lead_id}/accept", li)
    assert status == 403, body
    status, _ = await call(client, "POST", f"/api/leads/{lead_id}/return", li, json={"reason": "重复", "text": ""})
    assert status == 403
    denied = await audit_rows(client, action="lead.accept", outcome="denied")
    assert [e.target_id for e in denied] == [str(lead_id)] * 2
    status, body = await call(client, "POST", f"/api/leads/{lead_id}/return", zhang, json={"reason": "太贵"})
    assert (status, body["code"]) == (400, "bad_reason")
    status, body = await call(client, "POST", f"/api/leads/{lead_id}/return", zhang, json={"text": "x"})
    assert status == 400
    assert (await call(client, "POST", "/api/leads/987654/accept", zhang))[0] == 404
    status, body = await call(client, "POST", f"/api/leads/{lead_id}/accept", AUTH)  # a service token is nobody
    assert (status, body["code"]) == (400, "user_required")
    status, body = await call(client, "POST", f"/api/leads/{lead_id}/return", li, json={"text": "x"})
    assert status == 403  # a refusal is not hidden behind the missing reason
    status, body = await call(client, "GET", f"/api/leads/{lead_id}", zhang)
    assert body["stage"] == "mql"  # nothing changed


async def test_return_reasons_for_those_who_decide(client):
    people = await _people(client)
    status, body = await call(client, "GET", "/api/handoff/return-reasons", bearer(people["zhang"][1]))
    assert (status, body["reasons"][0], body["text_max"]) == (200, "预算不足", 500)
    assert (await call(client, "GET", "/api/handoff/return-reasons", bearer(people["sdr1"][1])))[0] == 403


async def test_accepted_csv_starts_with_the_bom_and_masks_phones(client):
    people = await _people(client)
    lead_id = await _routed_mql(client, people, "o-csv")
    await _routed_mql(client, people, "o-csv-pending", "13900000000")
    assert (await call(client, "POST", f"/api/leads/{lead_id}/accept", bearer(people["zhang"][1])))[0] == 200
    resp = await client.get("/api/exports/accepted.csv", headers=AUTH)
    raw = await resp.read()
    assert resp.status == 200 and raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("线索ID,接受时间,销售")
    assert len(lines) == 2 and lines[1].startswith(f"{lead_id},") and "zhang" in lines[1]
    assert "13812345678" not in lines[1] and "138****5678" in lines[1]
    assert (await client.get("/api/exports/accepted.csv", headers=bearer(people["zhang"][1]))).status == 403
    assert (await client.get("/api/exports/accepted.csv?since=2026-03-02&until=2026-03-01", headers=AUTH)).status == 400
