"""Assignments over the JSON API: who holds which MQL, and reassigning one by hand.

``POST /api/leads/{id}/assign`` {"user": username or user id}: a team lead reassigns their team's leads to a
member of their own team; managers and admins any lead to anyone. The target must be an enabled salesperson or
team lead; the lead must be an MQL (accepted leads move through the CRM, returned ones back through the SDRs).
The new assignment (rule "manual") supersedes the pending one in the request's transaction and is heard by the
hand-off's subscribers (the card push, the SLA timers). ``GET /api/assignments`` lists them, newest first,
scoped like the lead list: a salesperson sees their own, a team lead their team's.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import Field, StrictInt, StrictStr
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import EVENTS, SESSIONS
from bot.people.accounts import USERNAME
from bot.web.errors import ApiError
from bot.web.params import body_limit
from leads.access import ADMIN, LEAD_ASSIGN, LEAD_READ, MANAGER
from leads.lifecycle import MQL
from sdr_console.api.auth import Refused, audit, authorize_lead, lead_action, require_token
from sdr_console.api.lookup import lead_from_path
from sdr_console.api.models import Limit, Offset, Timestamp
from sdr_console.api.scoping import owner_filter
from sdr_console.api.serialize import iso
from sdr_console.api.spec import QueryModel, RequestModel, ResponseModel, api_spec, parse_body, parse_query, respond
from storage.models import User, utcnow
from storage.repos import assignments as repo
from storage.repos.events import EventTx
from storage.repos.round_robin import ROUTABLE_ROLES
from storage.repos.teams import team_ids_of
from storage.repos.users import user_by_id, user_by_name

MAX_BODY = 4 * 1024
MANUAL = "manual"


class AssignBody(RequestModel):
    user: StrictInt | StrictStr = Field(description="接手的销售：用户名，或用户 ID（整数）")


class AssignmentItem(ResponseModel):
    id: int
    lead_id: int
    user_id: int
    username: str
    user_label: str
    team_id: int | None
    team: str | None
    rule: str
    reason: str
    status: Literal["pending", "accepted", "returned", "superseded"]
    assigned_at: Timestamp | None
    assigned_by_user_id: int | None
    assigned_by: str | None
    previous_id: int | None
    decided_at: Timestamp | None
    return_reason: str | None
    return_text: str | None
    sla_step: int

    @classmethod
    def of(cls, v: repo.AssignmentView) -> AssignmentItem:
        r = v.row
        return cls(id=r.id, lead_id=r.lead_id, user_id=r.user_id, username=v.username, user_label=v.user_label,
                   team_id=r.team_id, team=v.team, rule=r.rule, reason=r.reason, status=r.status,  # type: ignore[arg-type]
                   assigned_at=iso(r.assigned_at), assigned_by_user_id=r.assigned_by_user_id,
                   assigned_by=v.assigned_by, previous_id=r.previous_id, decided_at=iso(r.decided_at),
                   return_reason=r.return_reason, return_text=r.return_text, sla_step=r.sla_step)


class AssignmentQuery(QueryModel):
    status: Literal["pending", "accepted", "returned", "superseded"] | None = None
    user: int | None = Field(None, ge=1, le=2**62, description="只看分配给此用户 ID 的")
    lead: int | None = Field(None, ge=1, le=2**62, description="只看此潜客的")
    limit: Limit = 50
    offset: Offset = 0


class AssignmentList(ResponseModel):
    items: list[AssignmentItem]
    total: int


async def _target(session: AsyncSession, raw: int | str) -> User:
    """The enabled salesperson or team lead the body names; else a 400 that changes nothing."""
    if isinstance(raw, int):
        user = await user_by_id(session, raw) if 0 < raw < 2**63 else None
    else:
        user = await user_by_name(session, raw) if USERNAME.fullmatch(raw) else None
    if user is None:
        raise ApiError(400, "unknown_user", "接手人不存在，请填写正确的用户名或用户 ID")
    if user.disabled_at is not None:
        raise ApiError(400, "user_disabled", f"用户 {user.username} 已停用，不能分配潜客")
    if user.role not in ROUTABLE_ROLES:
        raise ApiError(400, "not_sales", f"用户 {user.username} 不是销售或团队主管，不能分配潜客")
    return user


async def _team_for(session: AsyncSession, actor_id: int | None, actor_role: str, target: User) -> int | None:
    """The team the assignment is made in: for a team lead, the one they share with the target (403 when none,
    unless they assign to themselves); for others, the target's first team (None when in no team)."""
    theirs = await team_ids_of(session, target.id)
    if actor_role in (MANAGER, ADMIN) or actor_id is None:
        return theirs[0] if theirs else None
    shared = sorted(set(theirs) & set(await team_ids_of(session, actor_id)))
    if not shared and target.id != actor_id:
        raise Refused(LEAD_ASSIGN, "user", target.id, message="只能分配给本团队的成员")
    return shared[0] if shared else (theirs[0] if theirs else None)


@require_token
@lead_action(LEAD_ASSIGN)
@body_limit(MAX_BODY)
@api_spec("手动分配潜客给销售（团队主管：本团队；经理/管理员：任意）", body=AssignBody, response=AssignmentItem,
          errors=(400, 404, 409), tags=("assignments",))
async def assign(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await lead_from_path(request, session, "assign", lock=True)  # one reassignment at a time
        actor = await authorize_lead(request, session, LEAD_ASSIGN, lead)  # a refusal before reading the body
        target = await _target(session, (await parse_body(request, AssignBody)).user)
        team_id = await _team_for(session, actor.user_id, actor.role, target)
        if lead.erased_at is not None:
            raise ApiError(409, "lead_erased", f"潜客 #{lead.id} 的个人信息已删除，不能分配")
        if lead.stage != MQL:
            raise ApiError(409, "not_mql", "只能分配处于 MQL 阶段的潜客（已接受的潜客请在 CRM 中转交）")
        current = await repo.pending_assignment(session, lead.id, lock=True)
        if current is not None and current.user_id == target.id:
            raise ApiError(409, "already_assigned", f"潜客 #{lead.id} 已分配给 {target.username}，等待其处理")
        before = {"owner_user_id": lead.owner_user_id, "assignment_id": current.id if current else None}
        reason = f"{actor.label} 手动分配" + (f"（原负责人：#{current.user_id}）" if current else "")
        row = await repo.assign_lead(EventTx(session, request.app[EVENTS]), lead.id, target.id, rule=MANUAL,
                                     reason=reason, at=utcnow(), team_id=team_id, by_user_id=actor.user_id)
        await audit(request, LEAD_ASSIGN, target_kind="lead", target_id=lead.id, before=before,
                    after={"owner_user_id": target.id, "assignment_id": row.id, "team_id": team_id},
                    session=session)
        views, _ = await repo.list_assignments(session, lead_id=lead.id, limit=1)
    return respond(AssignmentItem.of(views[0]))


@require_token
@lead_action(LEAD_READ)
@api_spec("潜客分配记录（按调用者可见范围：销售看自己的，团队主管看本团队的）", query=AssignmentQuery,
          response=AssignmentList, errors=(400,), tags=("assignments",))
async def list_assignments(request: web.Request) -> web.Response:
    q = parse_query(request, AssignmentQuery)
    async with request.app[SESSIONS]() as session:
        owners = await owner_filter(request, session, LEAD_READ)
        views, total = await repo.list_assignments(session, status=q.status, user_id=q.user, lead_id=q.lead,
                                                   owner_ids=owners, limit=q.limit, offset=q.offset)
    return respond(AssignmentList(items=[AssignmentItem.of(v) for v in views], total=total))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/leads/{lead_id}/assign", assign)
    app.router.add_get("/api/assignments", list_assignments)
