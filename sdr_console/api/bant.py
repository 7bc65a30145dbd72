"""BANT and the hand-off to sales over the JSON API.

``PUT /api/leads/{id}/bant`` is a partial update: the fields present are set, ``null`` clears one, absent ones
keep their value (the 360 edits one field at a time). ``POST /api/leads/{id}/transfer`` {"note"?} is the SDR's
"ready for sales": refused with 409 ``bant_incomplete`` (``missing`` names the fields) while a field that
``[bant] required`` lists is empty or unknown. A lead in nurture (lead, returned, recycled) becomes an MQL through
the stage-change path of every person's move (the transition, its history row, StageChanged + BecameMQL for
the hand-off's subscribers); a lead that already is an MQL (the score made it one) keeps its stage and the SDR's
confirmation is recorded in the audit log; any other stage is a 409 ``transition_refused``. The audit log outlives
an erasure: it keeps BANT choice codes, never free text (a need, a budget in words, the note).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field, model_validator

from bot.keys import CONFIG, EVENTS, SESSIONS
from bot.web.errors import ApiError
from bot.web.params import body_limit
from leads.access import LEAD_EDIT, LEAD_TRANSFER, LIFECYCLE_ACTORS
from leads.bant import (
    FIELD_LABELS,
    BantError,
    label_of,
    missing,
    missing_message,
    parse_update,
    without_free_text,
)
from leads.lifecycle import MQL, SALES, SDR, TransitionRefused, transition
from sdr_console.api.auth import actor_of, audit, authorize_lead, lead_action, require_token
from sdr_console.api.lookup import lead_from_path
from sdr_console.api.models import Transition
from sdr_console.api.spec import RequestModel, ResponseModel, api_spec, parse_body, respond
from storage.models import Lead, utcnow
from storage.repos.bant import bant_of, update_bant
from storage.repos.lead_views import latest_transition
from storage.repos.stages import apply_transition

MAX_BODY = 16 * 1024
MAX_NOTE = 2000
DEFAULT_REASON = "SDR 完成 BANT 资格确认，移交销售"


class BantUpdate(RequestModel):
    """Fields present are set, ``null`` clears one; at least one field."""

    budget: str | None = Field(None, description="预算区间代码或文字")
    authority: str | None = Field(None, description="决策权代码")
    need: str | None = Field(None, description="需求（文字）")
    timeline: str | None = Field(None, description="采购时间代码")

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, raw: Any) -> Any:
        try:
            return parse_update(raw)  # leads/bant.py's own checks and 400 bad_field messages
        except BantError as exc:
            raise ApiError(400, "bad_field", str(exc), field=exc.field) from exc


class TransferNote(RequestModel):
    note: str | None = Field(None, max_length=MAX_NOTE, description="移交说明（阶段变更原因）")

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, raw: Any) -> Any:
        _check_note(raw)
        return raw


class BantState(ResponseModel):
    bant: dict[str, str]
    labels: dict[str, str]
    required: list[str]
    missing: list[str]


class BantSaved(BantState):
    lead_id: int


class Transferred(BantState):
    lead_id: int
    stage: str
    stage_changed: bool
    transition: Transition | None


def bant_json(record: dict[str, str], required: tuple[str, ...]) -> dict[str, Any]:
    return {"bant": record, "labels": {k: label_of(k, v) for k, v in record.items()},
            "required": list(required), "missing": missing(record, required)}


def _refuse_erased(lead: Lead) -> None:
    if lead.erased_at is not None:
        raise ApiError(409, "lead_erased", f"潜客 #{lead.id} 的个人信息已删除，不能修改")


@require_token
@lead_action(LEAD_EDIT)
@body_limit(MAX_BODY)
@api_spec("更新潜客 BANT（部分更新）", body=BantUpdate, response=BantSaved, errors=(404, 409), tags=("bant",))
async def put_bant(request: web.Request) -> web.Response:
    """{"budget"?, "authority"?, "need"?, "timeline"?}: a value sets the field, null clears it."""
    update = (await parse_body(request, BantUpdate)).model_dump(exclude_unset=True)
    required = request.app[CONFIG].bant.required
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await lead_from_path(request, session, "bant", lock=True)
        await authorize_lead(request, session, LEAD_EDIT, lead)
        _refuse_erased(lead)
        before = bant_of(lead)
        record = await update_bant(session, lead, update)
        await audit(request, "lead.bant", target_kind="lead", target_id=lead.id, before=without_free_text(before),
                    after=without_free_text(record), session=session)
    return respond(BantSaved(lead_id=lead.id, **bant_json(record, required)))


def _check_note(body: dict[str, Any]) -> None:
    """The 400 bad_field answers the transfer has always given."""
    for name in body:
        if name != "note":
            raise ApiError(400, "bad_field", f"未知字段：{str(name)[:40]}（可选 note）")
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise ApiError(400, "bad_field", "note 须为字符串")
    if note is not None and len(note) > MAX_NOTE:
        raise ApiError(400, "bad_field", f"note 不能超过 {MAX_NOTE} 个字符")


def _capacity(role: str) -> str:
    """The lifecycle actor of a hand-off: the SDR's, or "sales" for a role that only acts as sales (a team lead);
    both may make a nurtured lead an MQL."""
    mine = LIFECYCLE_ACTORS.get(role, frozenset())
    return SDR if SDR in mine or not mine else SALES


@require_token
@lead_action(LEAD_TRANSFER)
@body_limit(MAX_BODY)
@api_spec("移交销售（须 BANT 完整）", body=TransferNote, response=Transferred, errors=(404, 409), tags=("bant",))
async def transfer(request: web.Request) -> web.Response:
    """The SDR marks the lead ready for sales: {"note"?} (the stage change's reason). BANT enforced."""
    note = ((await parse_body(request, TransferNote)).note or "").strip()
    required = request.app[CONFIG].bant.required
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await lead_from_path(request, session, "transfer", lock=True)
        user = await authorize_lead(request, session, LEAD_TRANSFER, lead)
        _refuse_erased(lead)
        capacity = _capacity(actor_of(request).role)
        move = None
        if lead.stage != MQL:
            try:
                move = transition(lead.stage, MQL, capacity, note or DEFAULT_REASON, user.label)
            except TransitionRefused as exc:
                raise ApiError(409, "transition_refused", str(exc)) from exc
        record = bant_of(lead)
        lacking = missing(record, required)
        if lacking:
            raise ApiError(409, "bant_incomplete", missing_message(lacking), missing=lacking,
                           labels=[FIELD_LABELS[n] for n in lacking])
        before = {"stage": lead.stage}
        if move is not None:
            await apply_transition(session, lead, move, at=utcnow(), touchpoint_id=None,
                                   events=request.app[EVENTS])
        await audit(request, LEAD_TRANSFER, target_kind="lead", target_id=lead.id, before=before,
                    after={"stage": lead.stage, "actor": capacity, "with_note": bool(note),
                           "bant": without_free_text(record)}, session=session)
        latest = await latest_transition(session, lead.id) if move is not None else None
        payload = Transferred(lead_id=lead.id, stage=lead.stage, stage_changed=move is not None,
                              transition=None if latest is None else Transition.of(latest),
                              **bant_json(record, required))
    return respond(payload)


def add_routes(app: web.Application) -> None:
    app.router.add_put("/api/leads/{lead_id}/bant", put_bant)
    app.router.add_post("/api/leads/{lead_id}/transfer", transfer)
