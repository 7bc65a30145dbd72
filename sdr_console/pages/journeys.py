"""``GET /console/journeys``: every nurture journey with its counts and its step tree, each step with the active
enrolments waiting for it (a flow, like a funnel); ``GET /console/journeys/{journey_id}``: the leads in one
journey (status tabs, a step filter, pages), each linked to its 360.

Both read what the JSON API answers (sdr_console/api/journeys.py) through the same repository functions
(storage/repos/journeys.py) and the same shaping (``journey_out``), so the page and ``GET /api/journeys`` cannot
disagree. Reading needs ``journey.read``; the enrolment list shows only leads the user may read.
"""

from __future__ import annotations

import re
from datetime import datetime

from aiohttp import web

from bot.keys import CONFIG, SESSIONS
from leads import access
from leads.lead_filters import CHINA  # the console's one clock for people: Beijing time
from leads.lifecycle import STAGE_LABELS
from sdr_console.api.auth import lead_action
from sdr_console.api.journeys import journey_out
from sdr_console.api.scoping import owner_ids
from sdr_console.pages.scope import may, refuse
from sdr_console.web.guard import SignedIn, require_user
from sdr_console.web.render import render
from storage.repos.journeys import JourneyCounts, enrolment_page, journey_counts

PATH = "/console/journeys"
PAGE_SIZE = 50
COUNTS = (("active", "进行中"), ("entered", "累计进入"), ("done", "已完成"), ("exited", "已退出"))
STATUSES = (("active", "进行中"), ("done", "已完成"), ("exited", "已退出"))
STATUS_BADGES = {"active": "text-bg-primary", "done": "text-bg-success", "exited": "text-bg-secondary"}
KIND_LABELS = {"action": "动作", "wait": "等待", "if": "条件"}
BRANCH_LABELS = {"yes": "是", "no": "否"}
REASONS = {"completed": "走完全程", "journey_removed": "旅程已下线", "journey_changed": "旅程已修改",
           "lead_gone": "潜客已删除或合并", "too_many_steps": "步骤异常"}
_POSITION = re.compile(r"[0-9]{1,4}(\.(yes|no)\.[0-9]{1,4}){0,20}")  # as the API's EnrolmentQuery
_BEFORE = re.compile(r"[0-9]{1,18}")


def reason_label(reason: str) -> str:
    if reason.startswith("stage:"):
        stage = reason.removeprefix("stage:")
        return f"阶段变为{STAGE_LABELS.get(stage, stage)}"
    return REASONS.get(reason, reason)


def when(at: str | None) -> str:
    return datetime.fromisoformat(at).astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if at else ""


async def _allowed(request: web.Request) -> tuple[SignedIn, web.StreamResponse | None]:
    current = require_user(request)
    if not may(current.user.role, access.JOURNEY_READ):
        return current, await refuse(request, current, access.JOURNEY_READ)
    return current, None


def _page(current: SignedIn, **context: object) -> dict[str, object]:
    return {"user": current.user, "csrf": current.session.csrf, "nav": PATH, "kind_labels": KIND_LABELS,
            "branch_labels": BRANCH_LABELS, **context}


@lead_action(access.JOURNEY_READ)  # the authorisation matrix reads the declared action from the route's handler
async def journeys_page(request: web.Request) -> web.StreamResponse:
    current, refused = await _allowed(request)
    if refused is not None:
        return refused
    async with request.app[SESSIONS]() as session:
        counts = await journey_counts(session)
    journeys = [journey_out(j, counts.get(j.id, JourneyCounts())).model_dump()
                for j in request.app[CONFIG].journeys]
    return render(request, "journeys.html", **_page(current, title="培育旅程", journeys=journeys, counts=COUNTS))


def _bad(request: web.Request, current: SignedIn, message: str, status: int = 400) -> web.Response:
    return render(request, "message.html", status, title="无法显示", message=message, user=current.user,
                  csrf=current.session.csrf, link=PATH, link_label="返回培育旅程")


@lead_action(access.JOURNEY_READ)
async def journey_page(request: web.Request) -> web.StreamResponse:
    current, refused = await _allowed(request)
    if refused is not None:
        return refused
    raw_id = request.match_info["journey_id"]
    journey = next((j for j in request.app[CONFIG].journeys if j.id == raw_id), None)
    if journey is None:
        return _bad(request, current, "没有这个培育旅程（可能已从配置中删除）。", 404)
    q = request.query
    status = q.get("status", "active")
    position, before = q.get("position") or None, q.get("before") or None
    if status not in dict(STATUSES) or (position is not None and not _POSITION.fullmatch(position)) or (
            before is not None and not _BEFORE.fullmatch(before)):
        return _bad(request, current, "筛选条件无效：status 须为 active、done 或 exited，position 须为旅程中的步骤。")
    user = current.user
    async with request.app[SESSIONS]() as session:
        owners = await owner_ids(session, user.id, user.role, access.LEAD_READ)
        counts = (await journey_counts(session)).get(journey.id, JourneyCounts())
        rows = await enrolment_page(session, journey.id, status=status, position=position,
                                    before=int(before) if before else None, limit=PAGE_SIZE + 1, owner_ids=owners)
    shown = journey_out(journey, counts).model_dump()
    steps = {s["position"]: s for s in shown["steps"]}
    more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
    items = [{"id": r.id, "lead_id": r.lead_id, "lead_name": r.lead_name, "status": r.status,
              "step_label": steps[r.position]["label"] if r.status == "active" and r.position in steps else "",
              "due_at": r.due_at.isoformat() if r.due_at and r.status == "active" else None,
              "enrolled_at": r.enrolled_at.isoformat(), "ended_at": r.ended_at.isoformat() if r.ended_at else None,
              "reason": reason_label(r.reason)} for r in rows]
    return render(request, "journey.html", **_page(
        current, title=journey.name, journey=shown, statuses=STATUSES, tab=status, rows=items,
        step=steps.get(position or ""), next=rows[-1].id if more and rows else None, when=when,
        status_labels=dict(STATUSES), status_badges=STATUS_BADGES))


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, journeys_page)
    app.router.add_get(PATH + "/{journey_id}", journey_page)
