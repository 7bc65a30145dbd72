"""Notes, tasks and tags on a lead over real HTTP on both backends (sdr_console/api/lead_work.py): the actor
from the token, audit entries in the same transaction, the rule table's 403s, 400s that change nothing, 404 for
unknown leads and tasks, 308 to a merge survivor, 409 on an erased lead, and texts kept verbatim."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.crypto.keyring import Purpose
from bot.keys import CONFIG, SESSIONS
from storage.models import AuditEntry, Lead, LeadNote, LeadTag, LeadTask, utcnow
from storage.repos.erasure import erase_lead
from storage.repos.teams import set_member, team_by_name
from storage.repos.users import add_user, disable_user
from tests.sdr_console.console_support import bearer, make_lead, token_user_hash, user_with_token
from tests.support.calls import AUTH

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)> & 王芳 "引号"'


@pytest.fixture
async def client(app_client):
    return await app_client()


async def make_user(client, username: str, role: str, team: str | None = None) -> tuple[int, dict[str, str]]:
    user_id, token = await user_with_token(client, username, role, team)
    return user_id, bearer(token)


async def call(client, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> tuple[int, Any]:
    resp = await client.request(method, path, headers=headers, allow_redirects=False, **kwargs)
    return resp.status, (await resp.json() if resp.content_type == "application/json" else None)


async def rows(client, model: Any, **where: Any) -> list[Any]:
    async with client.server.app[SESSIONS]() as session:
        return list((await session.execute(select(model).filter_by(**where).order_by(model.id))).scalars())


async def counts(client) -> tuple[int, ...]:
    async with client.server.app[SESSIONS]() as session:
        return tuple([(await session.execute(select(func.count()).select_from(m))).scalar_one()
                      for m in (LeadNote, LeadTask, LeadTag, AuditEntry)])


async def test_notes_are_written_by_the_token_user_verbatim_audited_and_paged(client):
    uid, sdr = await make_user(client, "li", "sdr")
    lead = await make_lead(client, "o_1")
    status, note = await call(client, "POST", f"/api/leads/{lead}/notes", sdr, json={"body": XSS})
    assert status == 201
    assert note["body"] == XSS and note["author"] == "li" and note["author_user_id"] == uid
    # Returned as a JSON string, not HTML-escaped or stripped: escaping is the renderer's job.
    resp = await client.get(f"/api/leads/{lead}/notes", headers=sdr)
    assert resp.content_type == "application/json"  # never text/html, whatever the body holds
    assert json.dumps(XSS, ensure_ascii=False) in await resp.text()  # a plain JSON string, no entities
    assert (await resp.json())["items"][0]["body"] == XSS
    (stored,) = await rows(client, LeadNote, lead_id=lead)
    assert stored.body == XSS and stored.author_user_id == uid
    (entry,) = await rows(client, AuditEntry, action="lead.note.add")
    assert (entry.actor_user_id, entry.actor_label, entry.target_id) == (uid, "li", str(lead))
    assert entry.after == {"note_id": note["id"], "chars": len(XSS)} and XSS not in str(entry.after)

    for n in range(3):
        assert (await call(client, "POST", f"/api/leads/{lead}/notes", AUTH, json={"body": f"n{n}"}))[0] == 201
    status, page = await call(client, "GET", f"/api/leads/{lead}/notes?limit=2&offset=1", sdr)
    assert status == 200 and [i["body"] for i in page["items"]] == ["n1", "n0"]  # newest first
    (service,) = [n for n in await rows(client, LeadNote, lead_id=lead) if n.body == "n0"]
    assert service.author_user_id is None and service.author_label == "service-token"


async def test_tasks_with_due_dates_assignees_and_done(client):
    uid, sdr = await make_user(client, "li", "sdr")
    sales_id, _ = await make_user(client, "wang", "sales")
    lead = await make_lead(client, "o_1")
    body = {"title": "回电 <b>确认预算</b>", "due_at": "2026-12-31T18:00:00+08:00", "assignee": "wang"}
    status, task = await call(client, "POST", f"/api/leads/{lead}/tasks", sdr, json=body)
    assert status == 201
    assert task["title"] == body["title"] and task["status"] == "open" and task["assignee"] == "wang"
    assert task["assignee_user_id"] == sales_id and task["created_by_user_id"] == uid
    assert task["due_at"] == "2026-12-31T10:00:00+00:00" and task["done_at"] is None
    status, undated = await call(client, "POST", f"/api/leads/{lead}/tasks", sdr, json={"title": "发资料"})
    assert status == 201 and undated["due_at"] is None and undated["assignee"] is None

    status, done = await call(client, "POST", f"/api/leads/{lead}/tasks/{task['id']}/done", sdr)
    assert status == 200 and done["status"] == "done" and done["done_at"] and done["assignee"] == "wang"
    again = await call(client, "POST", f"/api/leads/{lead}/tasks/{task['id']}/done", sdr)
    assert again == (200, done)  # a double click: no error, the first completion time stays

    status, listed = await call(client, "GET", f"/api/leads/{lead}/tasks", sdr)
    assert status == 200 and [t["id"] for t in listed["items"]] == [undated["id"], task["id"]]  # open first
    status, only_open = await call(client, "GET", f"/api/leads/{lead}/tasks?status=open", sdr)
    assert [t["id"] for t in only_open["items"]] == [undated["id"]]
    actions = [(e.action, e.actor_user_id) for e in await rows(client, AuditEntry, target_kind="lead")]
    assert actions == [("lead.task.add", uid), ("lead.task.add", uid), ("lead.task.done", uid)]
    (done_entry,) = await rows(client, AuditEntry, action="lead.task.done")
    assert done_entry.before == {"task_id": task["id"], "status": "open"}
    assert done_entry.after == {"task_id": task["id"], "status": "done"}

    # A task id under another lead's URL is unknown there.
    other = await make_lead(client, "o_2")
    status, err = await call(client, "POST", f"/api/leads/{other}/tasks/{undated['id']}/done", sdr)
    assert status == 404 and err["error"] == "not_found"
    assert (await call(client, "POST", f"/api/leads/{lead}/tasks/99999/done", sdr))[0] == 404


async def test_tags_add_and_remove_with_before_and_after(client):
    uid, sdr = await make_user(client, "li", "sdr")
    lead = await make_lead(client, "o_1")
    status, out = await call(client, "POST", f"/api/leads/{lead}/tags", sdr,
                             json={"add": ["预算已确认", " 华东 ", "<i>vip</i>"]})
    assert status == 200 and out == {"lead_id": lead, "tags": sorted(["预算已确认", "华东", "<i>vip</i>"])}
    status, out = await call(client, "POST", f"/api/leads/{lead}/tags", sdr,
                             json={"add": ["华东"], "remove": ["<i>vip</i>", "没有这个"]})
    assert status == 200 and out["tags"] == sorted(["预算已确认", "华东"])
    entries = await rows(client, AuditEntry, action="lead.tags")
    assert [(e.before, e.after, e.actor_user_id) for e in entries] == [
        ({"tags": []}, {"tags": sorted(["预算已确认", "华东", "<i>vip</i>"])}, uid),
        ({"tags": sorted(["预算已确认", "华东", "<i>vip</i>"])}, {"tags": sorted(["预算已确认", "华东"])}, uid)]
    # Nothing changed: no audit entry.
    assert (await call(client, "POST", f"/api/leads/{lead}/tags", sdr, json={"add": ["华东"]}))[0] == 200
    assert len(await rows(client, AuditEntry, action="lead.tags")) == 2


BAD = [
    ("notes", {}), ("notes", {"body": ""}), ("notes", {"body": "   "}), ("notes", {"body": 5}),
    ("notes", {"body": "字" * 5001}), ("notes", {"body": "x", "author": "boss"}),
    ("notes", {"body": "x", "author_user_id": 1}),
    ("tasks", {}), ("tasks", {"title": "t" * 201}), ("tasks", {"title": ["t"]}),
    ("tasks", {"title": "t", "due_at": "2026-12-31T18:00:00"}), ("tasks", {"title": "t", "due_at": "tomorrow"}),
    ("tasks", {"title": "t", "due_at": "0001-01-01T00:00:00+01:00"}),
    ("tasks", {"title": "t", "due_at": "9999-12-31T23:59:59-01:00"}), ("tasks", {"title": "t", "due_at": ""}),
    ("tasks", {"title": "t", "due_at": 1767225600}), ("tasks", {"title": "t", "assignee": "nobody"}),
    ("tasks", {"title": "t", "assignee": "gone"}), ("tasks", {"title": "t", "assignee": 3}),
    ("tasks", {"title": "t", "created_by_user_id": 1}),
    ("tags", {}), ("tags", {"add": []}), ("tags", {"add": "vip"}), ("tags", {"add": [""]}),
    ("tags", {"add": ["  "]}), ("tags", {"add": ["t" * 101]}), ("tags", {"add": ["a\nb"]}),
    ("tags", {"add": ["a\x1bb"]}), ("tags", {"add": ["a\u0085"]}), ("tags", {"add": [1]}),
    ("tags", {"add": [f"t{n}" for n in range(21)]}), ("tags", {"add": ["a"] * 11, "remove": ["b"] * 10}),
    ("tags", {"add": ["a"], "remove": ["a"]}), ("tags", {"add": ["a"], "who": "x"}),
]


async def test_bad_input_is_a_chinese_400_that_changes_nothing(client):
    _, sdr = await make_user(client, "li", "sdr")
    async with client.server.app[SESSIONS]() as session, session.begin():
        gone = await add_user(session, username="gone", role="sales", password_hash=token_user_hash())
        await disable_user(session, gone)
    lead = await make_lead(client, "o_1")
    before = await counts(client)
    for path, body in BAD:
        status, err = await call(client, "POST", f"/api/leads/{lead}/{path}", sdr, json=body)
        assert status == 400, (path, body)
        assert set(err) == {"error", "code", "message"} and err["error"] == "bad_field", err
        assert any("\u4e00" <= ch <= "\u9fff" for ch in err["message"]), err
    for query in ("limit=0", "limit=201", "offset=-1", "limit=²"):
        assert (await call(client, "GET", f"/api/leads/{lead}/notes?{query}", sdr))[0] == 400
    assert (await call(client, "GET", f"/api/leads/{lead}/tasks?status=late", sdr))[0] == 400
    assert await counts(client) == before


async def test_unknown_merged_and_erased_leads(client):
    _, sdr = await make_user(client, "li", "sdr")
    assert (await call(client, "GET", "/api/leads/99999/notes", sdr))[0] == 404
    assert (await call(client, "POST", "/api/leads/99999/notes", sdr, json={"body": "x"}))[0] == 404
    assert (await call(client, "POST", "/api/leads/99999/tags", sdr, json={"add": ["x"]}))[0] == 404
    assert (await call(client, "POST", "/api/leads/99999/tasks", sdr, json={"title": "x"}))[0] == 404
    assert (await call(client, "POST", "/api/leads/99999/tasks/1/done", sdr))[0] == 404

    survivor, merged = await make_lead(client, "o_1"), await make_lead(client, "o_2")
    async with client.server.app[SESSIONS]() as session, session.begin():
        await session.execute(update(Lead).where(Lead.id == merged).values(merged_into_id=survivor))
    resp = await client.post(f"/api/leads/{merged}/notes", headers=sdr, json={"body": "x"}, allow_redirects=False)
    assert resp.status == 308 and resp.headers["Location"] == f"/api/leads/{survivor}/notes"
    resp = await client.post(f"/api/leads/{merged}/notes", headers=sdr, json={"body": "跟随"})
    assert resp.status == 201 and (await resp.json())["lead_id"] == survivor  # 308 keeps the method and body

    erased = await make_lead(client, "o_3")
    assert (await call(client, "POST", f"/api/leads/{erased}/notes", sdr, json={"body": "说过手机 139"}))[0] == 201
    assert (await call(client, "POST", f"/api/leads/{erased}/tasks", sdr, json={"title": "给 139 回电"}))[0] == 201
    async with client.server.app[SESSIONS]() as session, session.begin():
        hasher = client.server.app[CONFIG].keyring.hasher(Purpose.TOMBSTONE)
        assert await erase_lead(session, erased, utcnow(), hasher=hasher)
    before = await counts(client)
    for path, body in (("notes", {"body": "x"}), ("tasks", {"title": "x"}), ("tags", {"add": ["x"]})):
        status, err = await call(client, "POST", f"/api/leads/{erased}/{path}", sdr, json=body)
        assert status == 409 and err["error"] == "lead_erased", path
    (task,) = await rows(client, LeadTask, lead_id=erased)
    assert (await call(client, "POST", f"/api/leads/{erased}/tasks/{task.id}/done", sdr))[0] == 409
    assert await counts(client) == before
    # The erasure blanked what people wrote about the person; reads still work.
    status, notes = await call(client, "GET", f"/api/leads/{erased}/notes", sdr)
    assert status == 200 and [n["body"] for n in notes["items"]] == [""]
    status, tasks = await call(client, "GET", f"/api/leads/{erased}/tasks", sdr)
    assert status == 200 and [t["title"] for t in tasks["items"]] == [""]


async def test_a_salesperson_works_only_on_their_own_leads_and_refusals_are_audited(client):
    sales_id, sales = await make_user(client, "wang", "sales")
    other_id, _ = await make_user(client, "zhao", "sales")
    mine, theirs = await make_lead(client, "o_1", owner=sales_id), await make_lead(client, "o_2", owner=other_id)
    assert (await call(client, "POST", f"/api/leads/{mine}/notes", sales, json={"body": "我的"}))[0] == 201
    assert (await call(client, "GET", f"/api/leads/{mine}/tasks", sales))[0] == 200
    before = await counts(client)
    for method, path, body in (("POST", "notes", {"body": "x"}), ("POST", "tasks", {"title": "x"}),
                               ("POST", "tags", {"add": ["x"]}), ("GET", "notes", None), ("GET", "tasks", None)):
        status, err = await call(client, method, f"/api/leads/{theirs}/{path}", sales, json=body)
        assert status == 403 and err["error"] == "forbidden", (method, path)
    denied = await rows(client, AuditEntry, outcome="denied")
    assert [(e.action, e.actor_user_id, e.target_id) for e in denied] == (
        [("lead.edit", sales_id, str(theirs))] * 3 + [("lead.read", sales_id, str(theirs))] * 2)
    notes, tasks, tags, audit = await counts(client)
    assert (notes, tasks, tags) == before[:3] and audit == before[3] + 5  # only the refusals were recorded


async def test_a_team_lead_works_on_their_teams_leads(client):
    lead_id, lead_headers = await make_user(client, "boss", "team_lead", team="east")
    async with client.server.app[SESSIONS]() as session, session.begin():
        member = await add_user(session, username="wang", role="sales", password_hash=token_user_hash())
        east = await team_by_name(session, "east")
        assert east is not None
        await set_member(session, east.id, member.id)
        outsider = await add_user(session, username="zhao", role="sales", password_hash=token_user_hash())
        member_id, outsider_id = member.id, outsider.id
    ours, other = await make_lead(client, "o_1", owner=member_id), await make_lead(client, "o_2", owner=outsider_id)
    status, task = await call(client, "POST", f"/api/leads/{ours}/tasks", lead_headers,
                              json={"title": "跟进", "assignee": "wang"})
    assert status == 201 and task["created_by_user_id"] == lead_id
    assert (await call(client, "POST", f"/api/leads/{other}/tasks", lead_headers, json={"title": "x"}))[0] == 403
