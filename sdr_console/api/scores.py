"""Scores and stages over the JSON API: the explained score, the stage history, and stage changes by people."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import EVENTS, SCORING, SESSIONS
from bot.web.errors import ApiError
from bot.web.params import body_limit
from leads.access import LEAD_READ, LEAD_STAGE, LIFECYCLE_ACTORS
from leads.lifecycle import SALES, SDR, STAGES, TransitionRefused, transition
from leads.scoring import Scorecard, ScoreModel
from leads.scoring_rules import QUADRANT_LABELS
from sdr_console.api.auth import Refused, actor_of, audit, authorize_lead, lead_action, require_token
from sdr_console.api.lookup import lead_from_path
from sdr_console.api.models import Timestamp, Transition
from sdr_console.api.serialize import iso
from sdr_console.api.spec import RequestModel, ResponseModel, api_spec, parse_body, respond
from storage.models import Lead, LeadScore, utcnow
from storage.repos.lead_views import latest_transition, stage_history, stored_score
from storage.repos.scores import apply_transition, current_state

MAX_BODY = 16 * 1024
PEOPLE = (SDR, SALES)


async def scorecard_for(session: AsyncSession, model: ScoreModel, lead: Lead) -> tuple[Scorecard, LeadScore | None]:
    """Exact now, from the stored state (or the touchpoints, when the rules changed since it was stored)."""
    row = await stored_score(session, lead.id)
    state = await current_state(session, model, lead.id, row)
    return model.scorecard(lead.profile or {}, state, utcnow()), row


Number = int | float


class Axis(ResponseModel):
    total: Number
    threshold: Number
    high: bool


class AbilityContribution(ResponseModel):
    score: Literal["ability"]
    rule: str
    points: Number
    current: Number
    attribute: str | None
    value: Any


class MotivationContribution(ResponseModel):
    score: Literal["motivation"]
    rule: str
    points: Number
    current: Number
    touchpoint_id: int | None
    event: str | None
    occurred_at: Timestamp | None


class StoredScore(ResponseModel):
    ability: Number
    motivation: Number
    quadrant: str
    scored_at: Timestamp | None
    current_rules: bool


class ScoreCard(ResponseModel):
    lead_id: int
    stage: str
    computed_at: Timestamp | None
    rules: str
    ability: Axis
    motivation: Axis
    quadrant: str
    quadrant_label: str
    contributions: list[Annotated[AbilityContribution | MotivationContribution, Field(discriminator="score")]]
    stored: StoredScore | None


class StageHistory(ResponseModel):
    lead_id: int
    stage: str
    history: list[Transition]


class StageChanged(ResponseModel):
    lead_id: int
    stage: str
    transition: Transition


@require_token
@lead_action(LEAD_READ)
@api_spec("潜客评分及其明细（能力 × 意愿）", response=ScoreCard, errors=(404,), tags=("scores",))
async def get_score(request: web.Request) -> web.Response:
    model = request.app[SCORING]
    async with request.app[SESSIONS]() as session:
        lead = await lead_from_path(request, session, "score")
        await authorize_lead(request, session, LEAD_READ, lead)
        card, row = await scorecard_for(session, model, lead)
    events = {r.id: r.event for r in model.rules.motivation}
    rules = model.rules
    return respond(ScoreCard.model_validate({
        "lead_id": lead.id, "stage": lead.stage, "computed_at": iso(card.at), "rules": model.fingerprint,
        "ability": {"total": card.ability, "threshold": rules.ability_threshold,
                    "high": card.ability >= rules.ability_threshold},
        "motivation": {"total": card.motivation, "threshold": rules.motivation_threshold,
                       "high": card.motivation >= rules.motivation_threshold},
        "quadrant": card.quadrant, "quadrant_label": QUADRANT_LABELS[card.quadrant],
        "contributions": [
            {"score": c.score, "rule": c.rule_id, "points": c.points, "current": c.current,
             **({"attribute": c.attribute, "value": c.value} if c.score == "ability" else
                {"touchpoint_id": c.touchpoint_id, "event": events.get(c.rule_id), "occurred_at": iso(c.occurred_at)})}
            for c in card.contributions],
        "stored": None if row is None else {"ability": row.ability, "motivation": row.motivation,
                                            "quadrant": row.quadrant, "scored_at": iso(row.scored_at),
                                            "current_rules": row.rules == model.fingerprint},
    }))


@require_token
@lead_action(LEAD_READ)
@api_spec("潜客阶段变更历史", response=StageHistory, errors=(404,), tags=("scores",))
async def get_stages(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        lead = await lead_from_path(request, session, "stages")
        await authorize_lead(request, session, LEAD_READ, lead)
        history = await stage_history(session, lead.id)
    return respond(StageHistory(lead_id=lead.id, stage=lead.stage, history=[Transition.of(t) for t in history]))


def _bad_field(message: str) -> ApiError:
    return ApiError(400, "bad_field", message)


def _check(body: dict[str, Any]) -> dict[str, Any]:
    for name in ("to", "reason"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            raise _bad_field(f"{name} 为必填项（非空字符串）")
    if body["to"] not in STAGES:
        raise _bad_field(f"to 须为以下之一：{', '.join(STAGES)}")
    if "actor" in body and body["actor"] not in PEOPLE:
        raise _bad_field("actor 须为 sdr 或 sales")
    if "actor_id" in body:  # the actor is the authenticated user: a client cannot name someone else
        raise _bad_field("actor_id 由访问令牌确定，请勿在请求体中提供")
    if len(body["reason"]) > 2000:
        raise _bad_field("reason 不能超过 2000 个字符")
    return body


class StageChange(RequestModel):
    """Other fields are ignored, as they always were; ``actor_id`` is refused (the token says who acts)."""

    model_config = ConfigDict(extra="ignore")
    to: Literal[STAGES] = Field(description="目标阶段")  # type: ignore[valid-type]
    reason: str = Field(min_length=1, max_length=2000, description="变更原因")
    actor: Literal["sdr", "sales"] | None = Field(None, description="以哪种身份操作（经理、管理员须填写）")

    @model_validator(mode="before")
    @classmethod
    def _same_errors(cls, raw: Any) -> Any:
        return _check(raw)  # the 400 bad_field answers the API has always given


def _capacity(request: web.Request, body: StageChange, lead: Lead) -> str:
    """The lifecycle actor the user moves the lead as: their role's (an SDR as "sdr", a salesperson or team lead
    as "sales"); managers, admins and service tokens may act as either and say which in ``actor``."""
    role = actor_of(request).role
    mine = LIFECYCLE_ACTORS.get(role, frozenset())
    wanted = body.actor
    if wanted is None:
        if len(mine) != 1:
            raise _bad_field("actor 为必填项：以 sdr 或 sales 身份操作")
        return next(iter(mine))
    if wanted not in mine:
        raise Refused(LEAD_STAGE, "lead", lead.id, {"actor": wanted}, f"当前角色不能以 {wanted} 身份变更阶段")
    return str(wanted)


@require_token
@lead_action(LEAD_STAGE)
@body_limit(MAX_BODY)
@api_spec("人工变更潜客阶段", body=StageChange, response=StageChanged, errors=(404, 409), tags=("scores",))
async def change_stage(request: web.Request) -> web.Response:
    """A person moves a lead: {"to", "reason", "actor"?: "sdr"|"sales"}. Who moved it is the authenticated user
    (their username is the transition's actor_id); a body ``actor_id`` is refused, never believed."""
    body = await parse_body(request, StageChange)
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await lead_from_path(request, session, "stage", lock=True)
        user = await authorize_lead(request, session, LEAD_STAGE, lead)
        capacity = _capacity(request, body, lead)
        try:
            move = transition(lead.stage, body.to, capacity, body.reason, user.label)
        except TransitionRefused as exc:
            raise ApiError(409, "transition_refused", str(exc)) from exc
        before = {"stage": lead.stage}
        await apply_transition(session, lead, move, at=utcnow(), touchpoint_id=None, events=request.app[EVENTS])
        await audit(request, LEAD_STAGE, target_kind="lead", target_id=lead.id, before=before,
                    after={"stage": lead.stage, "actor": capacity, "reason": move.reason}, session=session)
        latest = await latest_transition(session, lead.id)
        assert latest is not None  # apply_transition has just written one
        payload = StageChanged(lead_id=lead.id, stage=lead.stage, transition=Transition.of(latest))
    return respond(payload)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/leads/{lead_id}/score", get_score)
    app.router.add_get("/api/leads/{lead_id}/stages", get_stages)
    app.router.add_post("/api/leads/{lead_id}/stage", change_stage)
