"""``GET /console/tasks``: 我的任务 — the signed-in person's open tasks across leads, overdue first (in red), then
due today, upcoming and undated; ``GET /console/tasks/board`` is the list alone, re-fetched after 完成.

Whose tasks and which lead names follow ``GET /api/tasks`` (sdr_console/api/tasks.py): a team lead may pick a
member of their teams, SDRs, managers and admins anyone (``?assignee=<user id>``); someone outside the scope is
the 403 page, audited. The 完成 button calls the existing ``POST /api/leads/{id}/tasks/{task_id}/done``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from aiohttp import web

from bot.keys import SESSIONS
from leads import access
from leads.lead_filters import CHINA  # the console's one clock for people: Beijing time
from sdr_console.api.auth import lead_action
from sdr_console.api.scoping import owner_ids
from sdr_console.api.tasks import is_overdue, lead_title, lead_visible
from sdr_console.pages.scope import refuse
from sdr_console.web.guard import SignedIn, require_user
from sdr_console.web.render import render
from storage.models import utcnow
from storage.repos.task_list import TaskFilter, TaskRow, list_tasks
from storage.repos.users import list_users

PATH = "/console/tasks"
LIMIT = 300  # open tasks of one person; beyond that the page says so
GROUPS = (("overdue", "已逾期"), ("today", "今天到期"), ("upcoming", "即将到期"), ("undated", "无截止时间"))


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    lead_id: int
    lead: str
    title: str
    due: str
    late: str  # "逾期 3 天" for an overdue task
    can_done: bool


def _late(due: datetime, now: datetime) -> str:
    gone = now - due
    if gone >= timedelta(days=1):
        return f"逾期 {gone.days} 天"
    if gone >= timedelta(hours=1):
        return f"逾期 {gone.seconds // 3600} 小时"
    return f"逾期 {max(1, gone.seconds // 60)} 分钟"


def _group(row: TaskRow, now: datetime, day_end: datetime) -> str:
    due = row.task.due_at
    if due is None:
        return "undated"
    if is_overdue(row.task, now):
        return "overdue"
    return "today" if due < day_end else "upcoming"


def _due_text(due: datetime | None, day_end: datetime) -> str:
    if due is None:
        return ""
    local = due.astimezone(CHINA)
    if day_end - timedelta(days=1) <= due < day_end:
        return "今天 " + local.strftime("%H:%M")
    if day_end <= due < day_end + timedelta(days=1):
        return "明天 " + local.strftime("%H:%M")
    if day_end - timedelta(days=2) <= due < day_end - timedelta(days=1):
        return "昨天 " + local.strftime("%H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def _person(request: web.Request, me: int) -> int | None:
    raw = request.query.get("assignee", "")
    if raw in ("", "me"):
        return me
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


async def _board(request: web.Request, current: SignedIn, template: str, **page: object) -> web.StreamResponse:
    user = current.user
    person = _person(request, user.id)
    if person is None:
        return render(request, "message.html", 400, title="参数无效", message="assignee 须为 me 或用户 id。",
                      user=user, csrf=current.session.csrf)
    now = utcnow()
    day_end = datetime.combine(now.astimezone(CHINA).date() + timedelta(days=1), time(), CHINA)
    async with request.app[SESSIONS]() as session:
        people = await owner_ids(session, user.id, user.role, access.LEAD_READ)
        editable = await owner_ids(session, user.id, user.role, access.LEAD_EDIT)
        allowed = people is None or person in people
        rows = await list_tasks(session, TaskFilter(people, person), now, LIMIT, 0) if allowed else []
        choices = [] if people is not None and len(people) <= 1 else [
            (u.id, u.display_name or u.username) for u in await list_users(session, include_disabled=False)
            if people is None or u.id in people]
    if not allowed:  # audited in its own transaction, once this session is closed (SQLite has one connection)
        return await refuse(request, current, access.LEAD_READ)
    groups: dict[str, list[Item]] = {key: [] for key, _ in GROUPS}
    for row in rows:
        t = row.task
        visible = lead_visible(people, row.lead_owner_id)
        groups[_group(row, now, day_end)].append(Item(
            t.id, t.lead_id, lead_title(row) if visible else f"潜客 #{t.lead_id}", t.title,
            _due_text(t.due_at, day_end), _late(t.due_at, now) if is_overdue(t, now) and t.due_at else "",
            lead_visible(editable, row.lead_owner_id)))
    name = next((label for uid, label in choices if uid == person), "")
    return render(request, template, user=user, csrf=current.session.csrf, groups=GROUPS, items=groups,
                  person=person, mine=person == user.id, person_name=name, choices=choices,
                  full=len(rows) >= LIMIT, limit=LIMIT, **page)


@lead_action(access.LEAD_READ)  # the authorisation matrix reads the declared action from the route's handler
async def tasks_page(request: web.Request) -> web.StreamResponse:
    current = require_user(request)
    return await _board(request, current, "tasks.html", title="我的任务", nav=PATH)


@lead_action(access.LEAD_READ)
async def tasks_board(request: web.Request) -> web.StreamResponse:
    """The groups alone (htmx re-fetches them after a task is marked done)."""
    return await _board(request, require_user(request), "tasks_board.html")


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, tasks_page)
    app.router.add_get(PATH + "/board", tasks_board)
