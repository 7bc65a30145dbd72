"""``GET /api/tasks``: tasks across leads — "my overdue tasks" and the like — for the console's 我的任务 page.

A task is listed for its responsible person: the assignee, or the creator of an unassigned task (who also gets
its WeCom reminder). Who may list whose tasks follows the lead rules (``lead.read``, leads/access.py): SDRs,
managers and admins everyone's, a team lead their teams' members', a salesperson only their own. Asking for
someone outside that scope (``assignee=<user id>``) is a 403, audited; without ``assignee`` the list is
filtered to the scope. A lead's name is shown only when the caller may read that lead: a task can be assigned
to someone who does not own its lead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from bot.keys import SESSIONS
from bot.web.errors import ApiError
from leads.access import LEAD_READ
from sdr_console.api.auth import Actor, Refused, actor_of, lead_action, require_token
from sdr_console.api.models import PageQuery, Timestamp
from sdr_console.api.scoping import owner_filter
from sdr_console.api.serialize import iso
from sdr_console.api.spec import ResponseModel, api_spec, parse_query, respond
from storage.models import LeadTask, utcnow
from storage.repos.task_list import TaskFilter, TaskRow, count_tasks, list_tasks

ME = "me"


class TaskListQuery(PageQuery):
    status: Literal["open", "done", "all"] = Field("open", description="按状态筛选（默认 open）")
    overdue: bool | None = Field(None, description="true：只看已逾期的未完成任务；false：不含已逾期的")
    assignee: str | None = Field(None, pattern=r"^(me|[0-9]{1,18})$",
                                 description="负责人：me 或用户 id（未指定负责人的任务算创建人的）")


class TaskItem(ResponseModel):
    id: int
    lead_id: int
    lead_name: str | None = Field(description="潜客名称；调用者无权查看该潜客时为 null")
    title: str
    due_at: Timestamp | None
    status: str
    overdue: bool
    assignee: str | None
    assignee_user_id: int | None
    responsible_user_id: int | None
    created_at: Timestamp | None
    done_at: Timestamp | None


class TaskList(ResponseModel):
    items: list[TaskItem]
    total: int
    limit: int
    offset: int


def lead_visible(people: list[int] | None, lead_owner_id: int | None) -> bool:
    """May a caller whose scope is ``people`` (None: every lead) read a lead owned by ``lead_owner_id``?"""
    return people is None or (lead_owner_id is not None and lead_owner_id in people)


def lead_title(row: TaskRow) -> str:
    return " · ".join(p for p in (row.lead_name, row.company) if p) or f"潜客 #{row.task.lead_id}"


def _person(assignee: str | None, actor: Actor) -> int | None:
    if assignee is None:
        return None
    if assignee != ME:
        return int(assignee)
    if actor.user_id is None:
        raise ApiError(400, "bad_parameter", "服务令牌没有对应的用户：请用用户 id 指定 assignee")
    return actor.user_id


def is_overdue(task: LeadTask, now: datetime) -> bool:
    return task.status == "open" and task.due_at is not None and task.due_at < now


def _item(row: TaskRow, people: list[int] | None, now: datetime) -> TaskItem:
    t = row.task
    return TaskItem(id=t.id, lead_id=t.lead_id, title=t.title, due_at=iso(t.due_at), status=t.status,
                    lead_name=lead_title(row) if lead_visible(people, row.lead_owner_id) else None,
                    overdue=is_overdue(t, now),
                    assignee=row.assignee, assignee_user_id=t.assignee_user_id, responsible_user_id=row.person_id,
                    created_at=iso(t.created_at), done_at=iso(t.done_at))


@require_token
@lead_action(LEAD_READ)
@api_spec("任务列表（跨潜客：我的任务、已逾期）", query=TaskListQuery, response=TaskList, errors=(400,),
          tags=("lead-work",))
async def list_all_tasks(request: web.Request) -> web.Response:
    query = parse_query(request, TaskListQuery)
    person = _person(query.assignee, actor_of(request))
    now = utcnow()
    async with request.app[SESSIONS]() as session:
        people = await owner_filter(request, session, LEAD_READ)
        if person is not None and people is not None and person not in people:
            raise Refused(LEAD_READ, "user", person, detail={"list": "tasks"}, message="无权查看该成员的任务")
        f = TaskFilter(people, person, None if query.status == "all" else query.status, query.overdue)
        rows = await list_tasks(session, f, now, query.limit, query.offset)
        total = await count_tasks(session, f, now)
    return respond(TaskList(items=[_item(r, people, now) for r in rows], total=total, limit=query.limit,
                            offset=query.offset))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/tasks", list_all_tasks)
