"""GET /api/tasks over real HTTP on both backends (sdr_console/api/tasks.py): overdue filter and order, the
responsible person (assignee, else creator), the rule table's scopes (SDR all, team lead the team, sales their
own), a 403 with its audit entry for someone else's tasks, lead names only where the caller may read the lead,
and 400 for parameters it cannot read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.keys import SESSIONS
from storage.models import Lead, LeadTask, utcnow
from tests.sdr_console.console_support import audit_rows, bearer, call, user_with_token
from tests.support.calls import AUTH


@pytest.fixture
async def client(app_client):
    return await app_client()


async def lead(client, name: str, owner: int | None, company: str = "", erased: bool = False) -> int:
    async with client.server.app[SESSIONS]() as session, session.begin():
        row = Lead(display_name=name, owner_user_id=owner, profile={"company": company} if company else {},
                   erased_at=utcnow() if erased else None)
        session.add(row)
        await session.flush()
        return row.id


async def task(client, lead_id: int, title: str, due_in_h: float | None, *, assignee: int | None = None,
               creator: int | None = None, status: str = "open") -> int:
    async with client.server.app[SESSIONS]() as session, session.begin():
        row = LeadTask(lead_id=lead_id, title=title, assignee_user_id=assignee, created_by_user_id=creator,
                       status=status, due_at=None if due_in_h is None else utcnow() + timedelta(hours=due_in_h))
        session.add(row)
        await session.flush()
        return row.id


async def world(client) -> dict[str, Any]:
    """An SDR, a team lead and a salesperson in team 华东, a salesperson of another team, their tasks."""
    sdr, sdr_token = await user_with_token(client, "sdr_li", "sdr")
    tl, tl_token = await user_with_token(client, "tl_zhou", "team_lead", team="华东")
    mate, mate_token = await user_with_token(client, "sales_wang", "sales", team="华东")
    other, other_token = await user_with_token(client, "sales_zhao", "sales", team="华南")
    mine = await lead(client, "李娜", mate, "苏州光电")
    theirs = await lead(client, "王芳", other, "杭州云科")
    ids = {
        "late": await task(client, mine, "回访：确认预算", -5, assignee=mate),
        "later": await task(client, mine, "发送报价单", 20, assignee=mate),
        "later_undated": await task(client, mine, "整理资料", None, assignee=mate),
        "done": await task(client, mine, "已完成的", -30, assignee=mate, status="done"),
        "foreign": await task(client, theirs, "协助王芳", -1, assignee=mate),  # on a lead she may not read
        "other_late": await task(client, theirs, "跟进演示", -2, assignee=other),
        "by_sdr": await task(client, mine, "SDR 自己的待办", -3, creator=sdr),  # unassigned: the creator's
        "erased": await task(client, await lead(client, "", None, erased=True), "", -4, assignee=mate),
    }
    return {"ids": ids, "users": {"sdr": sdr, "tl": tl, "mate": mate, "other": other},
            "tokens": {k: bearer(t) for k, t in (("sdr", sdr_token), ("tl", tl_token), ("mate", mate_token),
                                                  ("other", other_token))},
            "leads": {"mine": mine, "theirs": theirs}}


def ids_of(body: dict[str, Any]) -> list[int]:
    return [item["id"] for item in body["items"]]


async def test_my_overdue_tasks_in_due_order_with_lead_names_i_may_read(client) -> None:
    w = await world(client)
    ids, me = w["ids"], w["tokens"]["mate"]
    status, body = await call(client, "GET", "/api/tasks?status=open&overdue=true&assignee=me", me)
    assert status == 200
    assert ids_of(body) == [ids["late"], ids["foreign"]] and body["total"] == 2
    late, foreign = body["items"]
    assert late["overdue"] is True and late["lead_name"] == "李娜 · 苏州光电" and late["assignee"] == "sales_wang"
    assert foreign["lead_name"] is None and foreign["lead_id"] == w["leads"]["theirs"]  # not her lead
    status, body = await call(client, "GET", "/api/tasks?assignee=me&overdue=false", me)
    assert ids_of(body) == [ids["later"], ids["later_undated"]]
    assert [i["overdue"] for i in body["items"]] == [False, False]
    status, body = await call(client, "GET", "/api/tasks?status=all&assignee=me&limit=2&offset=3", me)
    assert ids_of(body) == [ids["later_undated"], ids["done"]] and body["total"] == 5
    # Unassigned tasks are their creator's.
    status, body = await call(client, "GET", "/api/tasks?assignee=me", w["tokens"]["sdr"])
    assert ids_of(body) == [ids["by_sdr"]] and body["items"][0]["responsible_user_id"] == w["users"]["sdr"]


async def test_scopes_sdr_all_team_lead_team_sales_own(client) -> None:
    w = await world(client)
    ids, users, tokens = w["ids"], w["users"], w["tokens"]
    everyone = {ids[k] for k in ("late", "later", "later_undated", "foreign", "other_late", "by_sdr")}
    assert set(ids_of((await call(client, "GET", "/api/tasks", tokens["sdr"]))[1])) == everyone
    assert set(ids_of((await call(client, "GET", "/api/tasks", AUTH))[1])) == everyone  # a service token
    status, body = await call(client, "GET", f"/api/tasks?assignee={users['other']}", tokens["sdr"])
    assert status == 200 and ids_of(body) == [ids["other_late"]] and body["items"][0]["lead_name"] == "王芳 · 杭州云科"
    team = {ids[k] for k in ("late", "later", "later_undated", "foreign")}
    assert set(ids_of((await call(client, "GET", "/api/tasks", tokens["tl"]))[1])) == team
    status, body = await call(client, "GET", f"/api/tasks?assignee={users['mate']}&overdue=true", tokens["tl"])
    assert status == 200 and ids_of(body) == [ids["late"], ids["foreign"]]
    assert [i["lead_name"] for i in body["items"]] == ["李娜 · 苏州光电", None]  # 王芳 is another team's lead
    assert set(ids_of((await call(client, "GET", "/api/tasks", tokens["other"]))[1])) == {ids["other_late"]}


@pytest.mark.parametrize(("caller", "whose"), [("mate", "other"), ("mate", "sdr"), ("tl", "other"),
                                                ("other", "mate")])
async def test_someone_elses_tasks_outside_the_scope_are_a_403_audited(client, caller: str, whose: str) -> None:
    w = await world(client)
    target = w["users"][whose]
    status, body = await call(client, "GET", f"/api/tasks?assignee={target}", w["tokens"][caller])
    assert status == 403 and body["code"] == "forbidden"
    [entry] = await audit_rows(client, outcome="denied")
    assert (entry.action, entry.target_kind, entry.target_id) == ("lead.read", "user", str(target))
    assert entry.actor_user_id == w["users"][caller]


@pytest.mark.parametrize("query", ["overdue=maybe", "status=late", "assignee=you", "assignee=-1", "assignee=²",
                                   "limit=0", "limit=201", "offset=x", "limit=²"])
async def test_bad_parameters_are_400(client, query: str) -> None:
    _, token = await user_with_token(client, "sdr_li", "sdr")
    status, body = await call(client, "GET", f"/api/tasks?{query}", bearer(token))
    assert status == 400 and body["code"] == "bad_parameter" and body["message"]


async def test_me_needs_a_user_and_the_list_needs_a_token(client) -> None:
    status, body = await call(client, "GET", "/api/tasks?assignee=me", AUTH)
    assert status == 400 and "assignee" in body["message"]
    resp = await client.get("/api/tasks")
    assert resp.status == 401
