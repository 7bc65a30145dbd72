"""Sales' answer to a routed MQL: ``POST /api/leads/{id}/accept``, ``POST /api/leads/{id}/return
{"reason", "text"}``, and ``GET /api/handoff/return-reasons`` for the forms.

The rules are storage/repos/handoff_decisions.py's (the card click and the mobile pages answer the same way):
the assignee, their team lead or a manager / admin may decide; 409 when nothing is pending (accepting twice
answers 409 "已接受"); a return's reason is one of ``handoff.return_reasons``. Who decided is the signed-in user
(a service token acts for nobody: 400). Refusals for someone else's lead are 403 and audited; they come before a
bad body's 400, so a refusal is never hidden behind a validation error.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import CONFIG, EVENTS, SCORING, SESSIONS
from bot.web.errors import ApiError
from bot.web.params import body_limit
from leads import access
from leads.access import LEAD_ACCEPT
from leads.handoff import RETURN_TEXT_MAX, DecisionRefused
from sdr_console.api.auth import Refused, actor_of, audit, lead_action, require_token
from sdr_console.api.lookup import lead_from_path
from sdr_console.api.models import Timestamp
from sdr_console.api.serialize import iso
from sdr_console.api.spec import RequestModel, ResponseModel, api_spec, parse_body, respond
from storage.models import User, utcnow
from storage.repos.assignments import AssignmentRow
from storage.repos.events import EventTx
from storage.repos.handoff_decisions import accept_lead, return_lead

MAX_BODY = 8 * 1024
USER_REQUIRED = "接受或退回线索须以用户身份操作（服务令牌不代表任何销售）"


class ReturnBody(RequestModel):
    reason: str = Field(max_length=40, description="退回原因：handoff.return_reasons 之一")
    text: str = Field("", max_length=4000, description=f"补充说明（不超过 {RETURN_TEXT_MAX} 字）")


class AssignmentOut(ResponseModel):
    id: int
    user_id: int
    team_id: int | None
    rule: str
    status: str
    assigned_at: Timestamp | None
    decided_at: Timestamp | None
    decided_by_user_id: int | None
    return_reason: str | None
    return_text: str | None

    @classmethod
    def of(cls, a: AssignmentRow) -> AssignmentOut:
        return cls(id=a.id, user_id=a.user_id, team_id=a.team_id, rule=a.rule, status=a.status,
                   assigned_at=iso(a.assigned_at), decided_at=iso(a.decided_at),
                   decided_by_user_id=a.decided_by_user_id, return_reason=a.return_reason, return_text=a.return_text)


class Decision(ResponseModel):
    lead_id: int
    stage: str
    owner_user_id: int | None
    assignment: AssignmentOut


class ReturnReasons(ResponseModel):
    reasons: list[str]
    text_max: int


async def _decider(request: web.Request, session: AsyncSession, lead_id: int) -> User:
    actor = actor_of(request)
    user = await session.get(User, actor.user_id) if actor.user_id is not None else None
    if user is None:  # an admin's service token may, by the rule table; but the decision must be someone's
        raise ApiError(400, "user_required", USER_REQUIRED)
    return user


def _refusal(refused: DecisionRefused, lead_id: int, what: str) -> ApiError:
    if refused.status == 403:  # audited by require_token, like every rule-table refusal
        return Refused(LEAD_ACCEPT, "lead", lead_id, {"decision": what}, refused.message)
    return ApiError(refused.status, refused.code, refused.message)


@require_token
@lead_action(LEAD_ACCEPT)
@body_limit(MAX_BODY)
@api_spec("销售接受线索（进入 SAL，推送到 CRM）", response=Decision, errors=(400, 404, 409), tags=("handoff",))
async def accept(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await lead_from_path(request, session, "accept")
        user = await _decider(request, session, lead.id)
        try:
            row = await accept_lead(EventTx(session, request.app[EVENTS]), lead.id, user, at=utcnow())
        except DecisionRefused as refused:
            raise _refusal(refused, lead.id, "accept") from refused
        await audit(request, "lead.accept", target_kind="lead", target_id=lead.id,
                    after={"assignment_id": row.id, "stage": lead.stage}, session=session)
        out = Decision(lead_id=lead.id, stage=lead.stage, owner_user_id=lead.owner_user_id,
                       assignment=AssignmentOut.of(row))
    return respond(out)


@require_token
@lead_action(LEAD_ACCEPT)
@body_limit(MAX_BODY)
@api_spec("销售退回线索（附原因，回到 SDR 队列）", body=ReturnBody, response=Decision, errors=(400, 404, 409),
          tags=("handoff",))
async def return_(request: web.Request) -> web.Response:
    invalid: ApiError | None = None
    try:
        body = await parse_body(request, ReturnBody)
    except ApiError as exc:  # answered once the caller may decide on this lead (else 403, as for any lead)
        body, invalid = ReturnBody(reason=""), exc
    reasons = request.app[CONFIG].handoff.return_reasons
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await lead_from_path(request, session, "return")
        user = await _decider(request, session, lead.id)
        try:
            row = await return_lead(EventTx(session, request.app[EVENTS]), lead.id, user, reason=body.reason,
                                    text=body.text, reasons=reasons, at=utcnow(), scoring=request.app[SCORING])
        except DecisionRefused as refused:
            if invalid is not None and refused.status == 400:  # "" is no reason: the body's own error says more
                raise invalid from refused
            raise _refusal(refused, lead.id, "return") from refused
        # The reason code only: the free text may name people.
        await audit(request, "lead.return", target_kind="lead", target_id=lead.id,
                    after={"assignment_id": row.id, "reason": row.return_reason, "stage": lead.stage}, session=session)
        out = Decision(lead_id=lead.id, stage=lead.stage, owner_user_id=lead.owner_user_id,
                       assignment=AssignmentOut.of(row))
    return respond(out)


@require_token
@lead_action(LEAD_ACCEPT)
@api_spec("退回原因列表（handoff.return_reasons）", response=ReturnReasons, tags=("handoff",))
async def return_reasons(request: web.Request) -> web.Response:
    if access.scope(actor_of(request).role, LEAD_ACCEPT) is None:  # SDRs never decide for sales
        raise Refused(LEAD_ACCEPT)
    reasons = request.app[CONFIG].handoff.return_reasons
    return respond(ReturnReasons(reasons=list(reasons), text_max=RETURN_TEXT_MAX))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/leads/{lead_id}/accept", accept)
    app.router.add_post("/api/leads/{lead_id}/return", return_)
    app.router.add_get("/api/handoff/return-reasons", return_reasons)
