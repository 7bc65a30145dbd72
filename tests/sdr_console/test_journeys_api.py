"""GET /api/journeys (live counts per step) and GET /api/journeys/{id}/enrolments (who is where, why they left),
with the owner rules: sales may not read journeys (403, audited), a team lead sees only the team's leads."""

from __future__ import annotations

from datetime import timedelta

from bot.journeys.wiring import runner_of
from bot.keys import EVENTS, SESSIONS
from leads.events import FormSubmitted
from storage.models import utcnow
from storage.repos.events import EventTx
from tests.bot.journeys.test_runner import EXAMPLE, NO_JOBS
from tests.sdr_console.console_support import audit_rows, bearer, call, make_lead, user_with_token


async def enrol(client, lead_ids: list[int]) -> None:
    app = client.server.app
    now = utcnow()
    async with app[SESSIONS]() as s, s.begin():
        await EventTx(s, app[EVENTS]).publish([FormSubmitted(i, "demo", now) for i in lead_ids])


async def test_counts_per_step_and_the_enrolment_pages(app_client) -> None:
    client = await app_client(journeys=EXAMPLE["journeys"], nurture={**EXAMPLE["nurture"], "quiet_hours": ""},
                              jobs=NO_JOBS)
    leads = [await make_lead(client, f"o_api{i}") for i in range(3)]
    await enrol(client, leads)
    _, token = await user_with_token(client, "sdr1", "sdr")
    status, body = await call(client, "GET", "/api/journeys", bearer(token))
    assert status == 200, body
    welcome = next(j for j in body["items"] if j["id"] == "welcome")
    assert (welcome["trigger"], welcome["active"], welcome["entered"]) == ("表单提交", 3, 3)
    assert welcome["steps"][0] == {"position": "0", "depth": 0, "kind": "action", "branch": "",
                                   "label": "发送公众号模板消息 welcome", "waiting": 3}

    await runner_of(client.server.app).run_batch(utcnow() + timedelta(seconds=1))
    status, body = await call(client, "GET", "/api/journeys", bearer(token))
    welcome = next(j for j in body["items"] if j["id"] == "welcome")
    waiting = {s["position"]: s["waiting"] for s in welcome["steps"] if s["waiting"]}
    assert waiting == {"2": 3}  # after the message, waiting for tomorrow's check

    status, timeline = await call(client, "GET", f"/api/leads/{leads[0]}/timeline", bearer(token))
    journey_items = [(i["title"], i["status"]) for i in timeline["items"] if i["author"] == "培育旅程"]
    assert journey_items == [("培育旅程 welcome：等待下一步", None),
                             ("培育旅程 welcome：发送公众号模板消息", "已排队发送"),
                             ("培育旅程 welcome：进入培育旅程", None)]

    status, page = await call(client, "GET", "/api/journeys/welcome/enrolments?status=active&limit=2", bearer(token))
    assert status == 200, page
    assert [i["lead_id"] for i in page["items"]] == sorted(leads, reverse=True)[:2]
    assert page["items"][0]["step_label"] == "判断：1 天内打开过内容" and page["items"][0]["due_at"]
    status, rest = await call(client, "GET", f"/api/journeys/welcome/enrolments?before={page['next']}", bearer(token))
    assert [i["lead_id"] for i in rest["items"]] == [min(leads)] and rest["next"] is None


async def test_bad_requests_and_refusals(app_client) -> None:
    client = await app_client(journeys=EXAMPLE["journeys"], jobs=NO_JOBS)
    _, sdr = await user_with_token(client, "sdr2", "sdr")
    _, sales = await user_with_token(client, "sales2", "sales")
    assert (await call(client, "GET", "/api/journeys/nope/enrolments", bearer(sdr)))[0] == 404
    assert (await call(client, "GET", "/api/journeys/WELCOME!/enrolments", bearer(sdr)))[0] == 404
    assert (await call(client, "GET", "/api/journeys/welcome/enrolments?status=lost", bearer(sdr)))[0] == 400
    assert (await call(client, "GET", "/api/journeys/welcome/enrolments?position=1;drop", bearer(sdr)))[0] == 400
    assert (await call(client, "GET", "/api/journeys/welcome/enrolments?limit=100000", bearer(sdr)))[0] == 400
    assert (await call(client, "GET", "/api/journeys", {}))[0] == 401
    status, body = await call(client, "GET", "/api/journeys", bearer(sales))
    assert status == 403, body
    assert [e.outcome for e in await audit_rows(client, action="journey.read")] == ["denied"]


async def test_a_tag_added_in_the_console_enrols_and_a_team_lead_sees_only_the_team(app_client) -> None:
    vip = {"id": "vip", "name": "重点客户关怀", "trigger": {"kind": "tag_added", "tag": "vip"}, "reentry": "never",
           "steps": [{"action": "notify_owner", "text": "重点客户，请今天联系"}]}
    client = await app_client(journeys=[vip], jobs=NO_JOBS)
    _, sdr = await user_with_token(client, "sdr3", "sdr")
    lead_uid, lead_token = await user_with_token(client, "tl3", "team_lead", team="east")
    mine = await make_lead(client, "o_team", owner=lead_uid)
    other = await make_lead(client, "o_other")
    for lead_id in (mine, other):
        status, body = await call(client, "POST", f"/api/leads/{lead_id}/tags", bearer(sdr), json={"add": ["vip"]})
        assert status == 200, body
    # Adding it again enrols nobody twice.
    await call(client, "POST", f"/api/leads/{mine}/tags", bearer(sdr), json={"add": ["vip", "x"]})
    status, page = await call(client, "GET", "/api/journeys/vip/enrolments", bearer(sdr))
    assert sorted(i["lead_id"] for i in page["items"]) == sorted([mine, other])
    assert {i["trigger"] for i in page["items"]} == {"tag:vip"}
    status, page = await call(client, "GET", "/api/journeys/vip/enrolments", bearer(lead_token))
    assert status == 200 and [i["lead_id"] for i in page["items"]] == [mine]
