"""The request and response models of notes, tasks and tags (sdr_console/api/lead_work.py), with the checks
that keep the 400 ``bad_field`` answers this API has always given (run before pydantic's own validation)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from bot.web.errors import ApiError
from sdr_console.api.models import PageQuery, Timestamp
from sdr_console.api.serialize import iso
from sdr_console.api.spec import RequestModel, ResponseModel
from storage.models import LeadNote, LeadTask

MAX_NOTE = 5000
MAX_TITLE = 200  # lead_tasks.title
MAX_TAG = 100  # lead_tags.tag
MAX_TAGS = 20  # per request, added and removed together
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

def _bad(message: str) -> ApiError:
    return ApiError(400, "bad_field", message)


def _known(body: dict[str, Any], fields: set[str]) -> None:
    unknown = set(body) - fields
    if unknown:  # "author", "actor", "created_by": the token says who acts
        raise _bad(f"未知字段：{sorted(unknown)[0][:40]}")


def _text(body: dict[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{name} 为必填项（非空字符串）")
    if len(value) > limit:
        raise _bad(f"{name} 不能超过 {limit} 个字符")
    return value


def due_of(body: dict[str, Any] | TaskIn) -> datetime | None:
    raw = body.due_at if isinstance(body, TaskIn) else body.get("due_at")
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


class NoteIn(RequestModel):
    body: str = Field(min_length=1, max_length=MAX_NOTE, description="备注内容")

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, raw: Any) -> Any:  # the 400 bad_field answers the API has always given
        _known(raw, {"body"})
        _text(raw, "body", MAX_NOTE)
        return raw


class TaskIn(RequestModel):
    title: str = Field(min_length=1, max_length=MAX_TITLE, description="任务标题")
    due_at: str | None = Field(None, max_length=40, description="带时区的 ISO 8601 时间",
                               json_schema_extra={"format": "date-time"})
    assignee: str | None = Field(None, min_length=1, max_length=64, description="负责人用户名")

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, raw: Any) -> Any:
        _known(raw, {"title", "due_at", "assignee"})
        _text(raw, "title", MAX_TITLE)
        due_of(raw)
        assignee = raw.get("assignee")
        if assignee is not None and (not isinstance(assignee, str) or not 0 < len(assignee) <= 64):
            raise _bad("assignee 须为用户名")
        return raw


Tag = str


class TagsIn(RequestModel):
    add: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS, description="要添加的标签")
    remove: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS, description="要移除的标签")

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, raw: Any) -> Any:
        _known(raw, {"add", "remove"})
        add, remove = _tags(raw, "add"), _tags(raw, "remove")
        if not add and not remove:
            raise _bad("add 与 remove 至少提供一个标签")
        if len(add) + len(remove) > MAX_TAGS:
            raise _bad(f"每次最多修改 {MAX_TAGS} 个标签")
        if set(add) & set(remove):
            raise _bad("同一标签不能同时添加和移除")
        return {"add": add, "remove": remove}  # stripped


class TaskQuery(PageQuery):
    status: Literal["open", "done", "all"] = Field("all", description="按状态筛选")


class Note(ResponseModel):
    id: int
    lead_id: int
    body: str
    author: str | None
    author_user_id: int | None
    created_at: Timestamp | None


class Task(ResponseModel):
    id: int
    lead_id: int
    title: str
    due_at: Timestamp | None
    assignee: str | None
    assignee_user_id: int | None
    status: str
    created_by_user_id: int | None
    created_at: Timestamp | None
    done_at: Timestamp | None


class Notes(ResponseModel):
    lead_id: int
    items: list[Note]


class Tasks(ResponseModel):
    lead_id: int
    items: list[Task]


class Tags(ResponseModel):
    lead_id: int
    tags: list[str]


def note_json(note: LeadNote) -> Note:
    return Note(id=note.id, lead_id=note.lead_id, body=note.body, author=note.author_label,
                author_user_id=note.author_user_id, created_at=iso(note.created_at))


def task_json(task: LeadTask, assignee: str | None) -> Task:
    return Task(id=task.id, lead_id=task.lead_id, title=task.title, due_at=iso(task.due_at), assignee=assignee,
                assignee_user_id=task.assignee_user_id, status=task.status,
                created_by_user_id=task.created_by_user_id, created_at=iso(task.created_at),
                done_at=iso(task.done_at))
