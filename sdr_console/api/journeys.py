"""Nurture journeys in the console: ``GET /api/journeys`` (each configured journey with live counts per step) and
``GET /api/journeys/{journey_id}/enrolments`` (who is in it, where, and why they left).

Reading needs ``journey.read``; the enrolment list shows only leads the caller may read (a team lead: the team's).
An unknown journey id is a 404, like an unknown lead.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from aiohttp import web
from pydantic import Field

from bot.keys import CONFIG, SESSIONS
from bot.web.params import not_found
from leads.access import JOURNEY_READ, LEAD_READ
from leads.journeys.definition import Journey
from leads.journeys.labels import flatten, trigger_label
from sdr_console.api.auth import requires
from sdr_console.api.models import Limit, Timestamp
from sdr_console.api.scoping import owner_filter
from sdr_console.api.serialize import iso
from sdr_console.api.spec import QueryModel, ResponseModel, api_spec, parse_query, respond
from storage.repos.journeys import JourneyCounts, enrolment_page, journey_counts

_POSITION = r"^[0-9]{1,4}(\.(yes|no)\.[0-9]{1,4}){0,20}$"
_ID = re.compile(r"^[a-z0-9_\-]{1,64}$")


class StepOut(ResponseModel):
    position: str
    depth: int
    kind: str
    branch: str
    label: str
    waiting: int


class JourneyOut(ResponseModel):
    id: str
    name: str
    trigger: str
    active: int
    entered: int
    done: int
    exited: int
    steps: list[StepOut]


class Journeys(ResponseModel):
    items: list[JourneyOut]


class EnrolmentQuery(QueryModel):
    status: Literal["active", "done", "exited"] | None = Field(None, description="按状态筛选")
    position: Annotated[str, Field(pattern=_POSITION, max_length=200)] | None = Field(
        None, description="只看等待这一步的（步骤的 position）")
    limit: Limit = 50
    before: Annotated[int, Field(ge=1, le=2**62)] | None = Field(None, description="翻页：上一页最后一条的 id")


class EnrolmentOut(ResponseModel):
    id: int
    lead_id: int
    lead_name: str
    status: str
    position: str
    step_label: str
    trigger: str
    reason: str
    due_at: Timestamp | None
    enrolled_at: Timestamp | None
    ended_at: Timestamp | None
    attempts: int
    last_error: str | None


class Enrolments(ResponseModel):
    items: list[EnrolmentOut]
    next: int | None


def journey_out(journey: Journey, counts: JourneyCounts) -> JourneyOut:
    waiting = counts.waiting or {}
    return JourneyOut(id=journey.id, name=journey.name, trigger=trigger_label(journey.trigger), active=counts.active,
                      entered=counts.entered, done=counts.done, exited=counts.exited,
                      steps=[StepOut(position=s.position, depth=s.depth, kind=s.kind, branch=s.branch, label=s.label,
                                     waiting=waiting.get(s.position, 0)) for s in flatten(journey.steps)])


@requires(JOURNEY_READ)
@api_spec("培育旅程及每一步的实时人数", response=Journeys, tags=("journeys",))
async def list_journeys(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        counts = await journey_counts(session)
    journeys = request.app[CONFIG].journeys
    return respond(Journeys(items=[journey_out(j, counts.get(j.id, JourneyCounts())) for j in journeys]))


@requires(JOURNEY_READ)
@api_spec("旅程中的潜客（位置、下一步时间、退出原因）", query=EnrolmentQuery, response=Enrolments, errors=(404,),
          tags=("journeys",))
async def list_enrolments(request: web.Request) -> web.Response:
    raw = request.match_info["journey_id"]
    journey = next((j for j in request.app[CONFIG].journeys if j.id == raw), None) if _ID.match(raw) else None
    if journey is None:
        raise not_found("培育旅程", raw)
    query = parse_query(request, EnrolmentQuery)
    labels = {s.position: s.label for s in flatten(journey.steps)}
    async with request.app[SESSIONS]() as session:
        owners = await owner_filter(request, session, LEAD_READ)
        rows = await enrolment_page(session, journey.id, status=query.status, position=query.position,
                                    before=query.before, limit=query.limit + 1, owner_ids=owners)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    items = [EnrolmentOut(id=r.id, lead_id=r.lead_id, lead_name=r.lead_name, status=r.status, position=r.position,
                          step_label=labels.get(r.position, "旅程结束") if r.status == "active" else "",
                          trigger=r.trigger, reason=r.reason, due_at=iso(r.due_at), enrolled_at=iso(r.enrolled_at),
                          ended_at=iso(r.ended_at), attempts=r.attempts, last_error=r.last_error) for r in rows]
    return respond(Enrolments(items=items, next=rows[-1].id if more and rows else None))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/journeys", list_journeys)
    app.router.add_get("/api/journeys/{journey_id}/enrolments", list_enrolments)
