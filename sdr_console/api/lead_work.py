"""Notes, tasks and tags on a lead (the 360) over the JSON API.

Writes need ``lead.edit`` on the lead, reads ``lead.read`` (leads/access.py); the author, creator or completer is
the authenticated user, never a body field (unknown fields are refused, so a client cannot even try). Each write
and its audit entry share one transaction. Texts are stored verbatim and returned as JSON strings: escaping is
the job of whatever renders them. Audit entries hold ids and tags, not the free texts, so that erasing a lead
(storage/repos/erasure.py blanks note bodies and task titles) leaves no copy behind.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import SESSIONS
from bot.web.errors import ApiError, json_response
from bot.web.params import body_limit, choice_param, int_param, json_object, not_found, path_id
from leads.access import LEAD_EDIT, LEAD_READ
from sdr_console.api.auth import actor_of, audit, authorize_lead, lead_action, require_token
from sdr_console.api.lookup import lead_from_path
from sdr_console.api.serialize import MAX_LIMIT, iso
from storage.models import Lead, LeadNote, LeadTask, utcnow
from storage.repos import lead_work
from storage.repos.users import user_by_name

MAX_BODY = 32 * 1024  # a 5000-character note escaped as \uXXXX is 30,000 bytes
MAX_NOTE = 5000
MAX_TITLE = 200  # lead_tasks.title
MAX_TAG = 100  # lead_tags.tag
MAX_TAGS = 20  # per request, added and removed together
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _bad(message: str) -> ApiError:
    return ApiError(400, "bad_field", message)


async def _body(request: web.Request, fields: set[str]) -> dict[str, Any]:
    body = await json_object(request)
    unknown = set(body) - fields
    if unknown:  # "author", "actor", "created_by": the token says who acts
        raise _bad(f"未知字段：{sorted(unknown)[0][:40]}")
    return body


def _text(body: dict[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{name} 为必填项（非空字符串）")
    if len(value) > limit:
        raise _bad(f"{name} 不能超过 {limit} 个字符")
    return value


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


def _page(request: web.Request) -> tuple[int, int]:
    return int_param(request, "limit", 50, 1, MAX_LIMIT), int_param(request, "offset", 0, 0, 10_000_000)


def note_json(note: LeadNote) -> dict[str, Any]:
    return {"id": note.id, "lead_id": note.lead_id, "body": note.body, "author": note.author_label,
            "author_user_id": note.author_user_id, "created_at": iso(note.created_at)}


def task_json(task: LeadTask, assignee: str | None) -> dict[str, Any]:
    return {"id": task.id, "lead_id": task.lead_id, "title": task.title, "due_at": iso(task.due_at),
            "assignee": assignee, "assignee_user_id": task.assignee_user_id, "status": task.status,
            "created_by_user_id": task.created_by_user_id, "created_at": iso(task.created_at),
            "done_at": iso(task.done_at)}


@require_token
@lead_action(LEAD_EDIT)
@body_limit(MAX_BODY)
async def add_note(request: web.Request) -> web.Response:
    """{"body"}: 201 with the note."""
    text = _text(await _body(request, {"body"}), "body", MAX_NOTE)
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await _editable(request, session, "notes")
        actor = actor_of(request)
        note = await lead_work.add_note(session, lead.id, text, author_user_id=actor.user_id,
                                        author_label=actor.label, now=utcnow())
        await audit(request, "lead.note.add", target_kind="lead", target_id=lead.id,
                    after={"note_id": note.id, "chars": len(text)}, session=session)
        payload = note_json(note)
    return json_response(payload, status=201)


@require_token
@lead_action(LEAD_READ)
async def list_notes(request: web.Request) -> web.Response:
    limit, offset = _page(request)
    async with request.app[SESSIONS]() as session:
        lead = await _readable(request, session, "notes")
        notes = await lead_work.list_notes(session, lead.id, limit, offset)
    return json_response({"lead_id": lead.id, "items": [note_json(n) for n in notes]})


def _due(body: dict[str, Any]) -> datetime | None:
    raw = body.get("due_at")
    if raw is None:
        return None
    problem = "due_at 须为带时区的 ISO 8601 时间，例如 2026-12-31T18:00:00+08:00"
    if not isinstance(raw, str) or len(raw) > 40:
        raise _bad(problem)
    try:
        due = datetime.fromisoformat(raw)
        if due.tzinfo is None or due.utcoffset() is None:
            raise ValueError("no time zone")  # it would be read in the server's zone, not the user's
        return due.astimezone(UTC)  # as it reads back from the database
    except (ValueError, OverflowError) as exc:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise _bad(problem) from exc


@require_token
@lead_action(LEAD_EDIT)
@body_limit(MAX_BODY)
async def add_task(request: web.Request) -> web.Response:
    """{"title", "due_at"?, "assignee"?: username}: 201 with the task."""
    body = await _body(request, {"title", "due_at", "assignee"})
    title, due = _text(body, "title", MAX_TITLE), _due(body)
    assignee = body.get("assignee")
    if assignee is not None and (not isinstance(assignee, str) or not 0 < len(assignee) <= 64):
        raise _bad("assignee 须为用户名")
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await _editable(request, session, "tasks")
        assignee_id = None
        if assignee is not None:
            user = await user_by_name(session, assignee)
            if user is None or user.disabled_at is not None:
                raise _bad(f"assignee {assignee[:40]!r} 不是有效的用户")
            assignee_id = user.id
        task = await lead_work.add_task(session, lead.id, title, due_at=due, assignee_user_id=assignee_id,
                                        created_by_user_id=actor_of(request).user_id, now=utcnow())
        await audit(request, "lead.task.add", target_kind="lead", target_id=lead.id,
                    after={"task_id": task.id, "due_at": iso(task.due_at), "assignee": assignee}, session=session)
        payload = task_json(task, assignee)
    return json_response(payload, status=201)


@require_token
@lead_action(LEAD_EDIT)
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
    return json_response(payload)


@require_token
@lead_action(LEAD_READ)
async def list_tasks(request: web.Request) -> web.Response:
    status = choice_param(request, "status", (lead_work.OPEN, lead_work.DONE, "all"), default="all")
    limit, offset = _page(request)
    async with request.app[SESSIONS]() as session:
        lead = await _readable(request, session, "tasks")
        rows = await lead_work.list_tasks(session, lead.id, None if status == "all" else status, limit, offset)
    return json_response({"lead_id": lead.id, "items": [task_json(t, name) for t, name in rows]})


def _tags(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list):
        raise _bad(f"{name} 须为标签列表")
    tags = []
    for tag in value:
        if not isinstance(tag, str) or not tag.strip() or len(tag.strip()) > MAX_TAG or _CONTROL.search(tag):
            raise _bad(f"{name} 中的标签须为 1 到 {MAX_TAG} 个字符，且不含控制字符")
        tags.append(tag.strip())
    return tags


@require_token
@lead_action(LEAD_EDIT)
@body_limit(MAX_BODY)
async def change_tags(request: web.Request) -> web.Response:
    """{"add": [...], "remove": [...]}: the lead's tags afterwards."""
    body = await _body(request, {"add", "remove"})
    add, remove = _tags(body, "add"), _tags(body, "remove")
    if not add and not remove:
        raise _bad("add 与 remove 至少提供一个标签")
    if len(add) + len(remove) > MAX_TAGS:
        raise _bad(f"每次最多修改 {MAX_TAGS} 个标签")
    if set(add) & set(remove):
        raise _bad("同一标签不能同时添加和移除")
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await _editable(request, session, "tags")
        before = await lead_work.tags_of(session, lead.id)
        await lead_work.change_tags(session, lead.id, add, remove, utcnow())
        after = await lead_work.tags_of(session, lead.id)
        if after != before:
            await audit(request, "lead.tags", target_kind="lead", target_id=lead.id, before={"tags": before},
                        after={"tags": after}, session=session)
    return json_response({"lead_id": lead.id, "tags": after})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/leads/{lead_id}/notes", add_note)
    app.router.add_get("/api/leads/{lead_id}/notes", list_notes)
    app.router.add_post("/api/leads/{lead_id}/tasks", add_task)
    app.router.add_get("/api/leads/{lead_id}/tasks", list_tasks)
    app.router.add_post("/api/leads/{lead_id}/tasks/{task_id}/done", complete_task)
    app.router.add_post("/api/leads/{lead_id}/tags", change_tags)
