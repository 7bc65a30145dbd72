"""Notes, tasks and tags on a lead (the 360) over the JSON API.

Writes need ``lead.edit`` on the lead, reads ``lead.read`` (leads/access.py); the author, creator or completer is
the authenticated user, never a body field (unknown fields are refused, so a client cannot even try). Each write
and its audit entry share one transaction. Texts are stored verbatim and returned as JSON strings: escaping is
the job of whatever renders them. Audit entries hold ids and tags, not the free texts, so that erasing a lead
(storage/repos/erasure.py blanks note bodies and task titles) leaves no copy behind.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import EVENTS, SESSIONS
from bot.web.errors import ApiError
from bot.web.params import body_limit, not_found, path_id
from leads.access import LEAD_EDIT, LEAD_READ
from leads.events import TagAdded
from sdr_console.api.auth import actor_of, audit, authorize_lead, lead_action, require_token
from sdr_console.api.lead_work_models import (
    Note,
    NoteIn,
    Notes,
    Tags,
    TagsIn,
    Task,
    TaskIn,
    TaskQuery,
    Tasks,
    due_of,
    note_json,
    task_json,
)
from sdr_console.api.lookup import lead_from_path
from sdr_console.api.models import PageQuery
from sdr_console.api.serialize import iso
from sdr_console.api.spec import api_spec, parse_body, parse_query, respond
from storage.models import Lead, utcnow
from storage.repos import lead_work
from storage.repos.events import EventTx
from storage.repos.users import user_by_name

MAX_BODY = 32 * 1024  # a 5000-character note escaped as \uXXXX is 30,000 bytes


async def _editable(request: web.Request, session: AsyncSession, suffix: str) -> Lead:
    """The lead of the URL, locked, when the actor may edit it and it is not erased."""
    lead = await lead_from_path(request, session, suffix, lock=True)
    await authorize_lead(request, session, LEAD_EDIT, lead)
    if lead.erased_at is not None:
        raise ApiError(409, "lead_erased", f"潜客 #{lead.id} 的个人信息已删除，不能修改")
    return lead


async def _readable(request: web.Request, session: AsyncSession, suffix: str) -> Lead:
    lead = await lead_from_path(request, session, suffix)
    await authorize_lead(request, session, LEAD_READ, lead)
    return lead


@require_token
@lead_action(LEAD_EDIT)
@body_limit(MAX_BODY)
@api_spec("为潜客添加备注", body=NoteIn, response=Note, status=201, errors=(404, 409), tags=("lead-work",))
async def add_note(request: web.Request) -> web.Response:
    """{"body"}: 201 with the note."""
    text = (await parse_body(request, NoteIn)).body
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await _editable(request, session, "notes")
        actor = actor_of(request)
        note = await lead_work.add_note(session, lead.id, text, author_user_id=actor.user_id,
                                        author_label=actor.label, now=utcnow())
        await audit(request, "lead.note.add", target_kind="lead", target_id=lead.id,
                    after={"note_id": note.id, "chars": len(text)}, session=session)
        payload = note_json(note)
    return respond(payload, status=201)


@require_token
@lead_action(LEAD_READ)
@api_spec("潜客的备注（最新在前）", query=PageQuery, response=Notes, errors=(404,), tags=("lead-work",))
async def list_notes(request: web.Request) -> web.Response:
    page = parse_query(request, PageQuery)
    async with request.app[SESSIONS]() as session:
        lead = await _readable(request, session, "notes")
        notes = await lead_work.list_notes(session, lead.id, page.limit, page.offset)
    return respond(Notes(lead_id=lead.id, items=[note_json(n) for n in notes]))


@require_token
@lead_action(LEAD_EDIT)
@body_limit(MAX_BODY)
@api_spec("为潜客添加任务", body=TaskIn, response=Task, status=201, errors=(404, 409), tags=("lead-work",))
async def add_task(request: web.Request) -> web.Response:
    """{"title", "due_at"?, "assignee"?: username}: 201 with the task."""
    body = await parse_body(request, TaskIn)
    title, due, assignee = body.title, due_of(body), body.assignee
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await _editable(request, session, "tasks")
        assignee_id = None
        if assignee is not None:
            user = await user_by_name(session, assignee)
            if user is None or user.disabled_at is not None:
                raise ApiError(400, "bad_field", f"assignee {assignee[:40]!r} 不是有效的用户")
            assignee_id = user.id
        task = await lead_work.add_task(session, lead.id, title, due_at=due, assignee_user_id=assignee_id,
                                        created_by_user_id=actor_of(request).user_id, now=utcnow())
        await audit(request, "lead.task.add", target_kind="lead", target_id=lead.id,
                    after={"task_id": task.id, "due_at": iso(task.due_at), "assignee": assignee}, session=session)
        payload = task_json(task, assignee)
    return respond(payload, status=201)


@require_token
@lead_action(LEAD_EDIT)
@api_spec("完成任务（重复完成不报错）", response=Task, errors=(404, 409), tags=("lead-work",))
async def complete_task(request: web.Request) -> web.Response:
    """Marks the task done; done already is no error (a double click), and is not audited twice."""
    task_id = path_id(request, "task_id", what="任务")
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await _editable(request, session, f"tasks/{task_id}/done")
        task = await lead_work.find_task(session, lead.id, task_id)
        if task is None:
            raise not_found("任务", task_id)
        if await lead_work.mark_done(session, task, utcnow()):
            await audit(request, "lead.task.done", target_kind="lead", target_id=lead.id,
                        before={"task_id": task.id, "status": lead_work.OPEN},
                        after={"task_id": task.id, "status": lead_work.DONE}, session=session)
        assignee = await lead_work.username_of(session, task.assignee_user_id)
        payload = task_json(task, assignee)
    return respond(payload)


@require_token
@lead_action(LEAD_READ)
@api_spec("潜客的任务", query=TaskQuery, response=Tasks, errors=(404,), tags=("lead-work",))
async def list_tasks(request: web.Request) -> web.Response:
    query = parse_query(request, TaskQuery)
    status = None if query.status == "all" else query.status
    async with request.app[SESSIONS]() as session:
        lead = await _readable(request, session, "tasks")
        rows = await lead_work.list_tasks(session, lead.id, status, query.limit, query.offset)
    return respond(Tasks(lead_id=lead.id, items=[task_json(t, name) for t, name in rows]))


@require_token
@lead_action(LEAD_EDIT)
@body_limit(MAX_BODY)
@api_spec("添加或移除潜客标签", body=TagsIn, response=Tags, errors=(404, 409), tags=("lead-work",))
async def change_tags(request: web.Request) -> web.Response:
    """{"add": [...], "remove": [...]}: the lead's tags afterwards."""
    body = await parse_body(request, TagsIn)
    add, remove = body.add, body.remove
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await _editable(request, session, "tags")
        before = await lead_work.tags_of(session, lead.id)
        await lead_work.change_tags(session, lead.id, add, remove, utcnow())
        after = await lead_work.tags_of(session, lead.id)
        added = sorted(set(after) - set(before))
        if added:  # journeys triggered by a tag hear it, in this transaction
            now = utcnow()
            await EventTx(session, request.app[EVENTS]).publish([TagAdded(lead.id, t, now) for t in added])
        if after != before:
            await audit(request, "lead.tags", target_kind="lead", target_id=lead.id, before={"tags": before},
                        after={"tags": after}, session=session)
    return respond(Tags(lead_id=lead.id, tags=after))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/leads/{lead_id}/notes", add_note)
    app.router.add_get("/api/leads/{lead_id}/notes", list_notes)
    app.router.add_post("/api/leads/{lead_id}/tasks", add_task)
    app.router.add_get("/api/leads/{lead_id}/tasks", list_tasks)
    app.router.add_post("/api/leads/{lead_id}/tasks/{task_id}/done", complete_task)
    app.router.add_post("/api/leads/{lead_id}/tags", change_tags)
