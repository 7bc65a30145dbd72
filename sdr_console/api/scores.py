"""Scores and stages over the JSON API: the explained score, the stage history, and stage changes by people."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import SCORING, SESSIONS
from leads.lifecycle import ACTORS, STAGES, TransitionRefused, transition
from leads.scoring import Scorecard, ScoreModel
from leads.scoring_rules import QUADRANT_LABELS
from sdr_console.api.leads import error, iso, require_token
from storage.models import Lead, LeadScore, StageTransition, utcnow
from storage.repos.scores import apply_transition, current_state

MAX_BODY = 16 * 1024


async def _lead_or_error(request: web.Request, session: AsyncSession, suffix: str,
                         lock: bool = False) -> Lead | web.Response:
    raw = request.match_info["lead_id"]
    if not raw.isdigit() or len(raw) > 18:
        return error(404, "not_found", f"no lead {raw!r}")
    locking = lock and session.bind is not None and session.bind.dialect.name == "postgresql"
    lead = await session.get(Lead, int(raw), with_for_update=locking)
    if lead is None:
        return error(404, "not_found", f"no lead {raw}")
    if lead.merged_into_id is not None:
        raise web.HTTPPermanentRedirect(f"/api/leads/{lead.merged_into_id}/{suffix}")
    return lead


async def scorecard_for(session: AsyncSession, model: ScoreModel, lead: Lead) -> tuple[Scorecard, LeadScore | None]:
    """Exact now, from the stored state (or the touchpoints, when the rules changed since it was stored)."""
    row = await session.get(LeadScore, lead.id)
    state = await current_state(session, model, lead.id, row)
    return model.scorecard(lead.profile or {}, state, utcnow()), row


@require_token
async def get_score(request: web.Request) -> web.Response:
    model = request.app[SCORING]
    async with request.app[SESSIONS]() as session:
        lead = await _lead_or_error(request, session, "score")
        if isinstance(lead, web.Response):
            return lead
        card, row = await scorecard_for(session, model, lead)
    events = {r.id: r.event for r in model.rules.motivation}
    rules = model.rules
    return web.json_response({
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
    })


def _transition_json(t: StageTransition) -> dict[str, Any]:
    return {"id": t.id, "from": t.from_stage, "to": t.to_stage, "actor": t.actor, "actor_id": t.actor_id,
            "reason": t.reason, "touchpoint_id": t.touchpoint_id, "occurred_at": iso(t.occurred_at)}


@require_token
async def get_stages(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        lead = await _lead_or_error(request, session, "stages")
        if isinstance(lead, web.Response):
            return lead
        history = (await session.execute(select(StageTransition).where(StageTransition.lead_id == lead.id)
                                         .order_by(StageTransition.id))).scalars().all()
    return web.json_response({"lead_id": lead.id, "stage": lead.stage,
                              "history": [_transition_json(t) for t in history]})


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return error(413, "too_large", "body too large")
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        return error(400, "bad_json", "the body must be a JSON object")
    if not isinstance(body, dict):
        return error(400, "bad_json", "the body must be a JSON object")
    for name in ("to", "actor", "reason"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            return error(400, "bad_field", f"{name} is required (a non-empty string)")
    if body["to"] not in STAGES:
        return error(400, "bad_field", f"to must be one of {', '.join(STAGES)}")
    if body["actor"] not in ACTORS or body["actor"] == "system":
        return error(400, "bad_field", "actor must be sdr or sales")
    if not isinstance(body.get("actor_id", ""), str) or len(body.get("actor_id", "")) > 100:
        return error(400, "bad_field", "actor_id must be a string of at most 100 characters")
    if len(body["reason"]) > 2000:
        return error(400, "bad_field", "reason must be at most 2000 characters")
    return body


@require_token
async def change_stage(request: web.Request) -> web.Response:
    """An SDR or salesperson moves a lead: {"to", "actor": "sdr"|"sales", "actor_id", "reason"}."""
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await _lead_or_error(request, session, "stage", lock=True)
        if isinstance(lead, web.Response):
            return lead
        try:
            move = transition(lead.stage, body["to"], body["actor"], body["reason"], body.get("actor_id", ""))
        except TransitionRefused as exc:
            return error(409, "transition_refused", str(exc))
        await apply_transition(session, lead, move, at=utcnow(), touchpoint_id=None)
        latest = (await session.execute(select(StageTransition).where(StageTransition.lead_id == lead.id)
                                        .order_by(StageTransition.id.desc()).limit(1))).scalar_one()
        payload = {"lead_id": lead.id, "stage": lead.stage, "transition": _transition_json(latest)}
    return web.json_response(payload)


def add_score_routes(app: web.Application) -> None:
    app.router.add_get("/api/leads/{lead_id}/score", get_score)
    app.router.add_get("/api/leads/{lead_id}/stages", get_stages)
    app.router.add_post("/api/leads/{lead_id}/stage", change_stage)
