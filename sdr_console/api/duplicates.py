"""Duplicate suggestions for SDRs: ``GET /api/duplicates``, ``POST /api/duplicates/{id}/merge`` and ``/dismiss``.

A typed phone or email that another lead already holds never merges the two (a stranger can type anyone's
number); identity resolution records a suggestion instead, and a person decides here. Merging follows the
same rules as automatic merges (storage/repos/merges.py): the older lead survives, and two leads whose
WeChat-verified phones differ are never merged — that is recorded as a merge conflict and answered 409.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import EVENTS, SCORING, SESSIONS
from bot.logs.redact import mask_email, mask_phone, short_id
from bot.web.errors import ApiError
from bot.web.params import not_found, path_id
from leads.access import LEAD_MERGE
from leads.identity import EMAIL, PHONE, IdentityKey, Merge
from sdr_console.api.auth import actor_of, audit, requires
from sdr_console.api.models import PageQuery, Timestamp
from sdr_console.api.serialize import iso
from sdr_console.api.spec import ResponseModel, api_spec, parse_query, respond
from storage.models import DuplicateSuggestion, Lead, utcnow
from storage.repos.duplicates import (
    DISMISSED,
    MERGED,
    OPEN,
    STATUSES,
    current_lead,
    find_suggestion,
    list_suggestions,
    lock_leads,
    resolve_suggestion,
)
from storage.repos.leads import LeadRepository

WHAT = "重复建议"


def masked(kind: str, value: str) -> str:
    """The console shows which identity matched, not the person's number or address in full."""
    if kind == PHONE:
        return mask_phone(value)
    if kind == EMAIL:
        return mask_email(value)
    return short_id(value)


class DuplicateQuery(PageQuery):
    status: Literal[(*STATUSES, "all")] = Field(OPEN, description="按状态筛选")  # type: ignore[valid-type]


class LeadBrief(ResponseModel):
    id: int
    display_name: str
    stage: str
    merged_into_id: int | None
    erased: bool


class Suggestion(ResponseModel):
    id: int
    lead_id: int
    other_lead_id: int
    identity_kind: str
    identity_value: str = Field(description="已打码")
    status: str
    created_at: Timestamp | None
    resolved_at: Timestamp | None


class ListedSuggestion(Suggestion):
    lead: LeadBrief
    other_lead: LeadBrief


class SuggestionPage(ResponseModel):
    items: list[ListedSuggestion]
    limit: int
    offset: int


class Merged(Suggestion):
    survivor_id: int
    merged_id: int


def _lead_brief(lead: Lead) -> LeadBrief:
    return LeadBrief(id=lead.id, display_name=lead.display_name or f"潜客 #{lead.id}", stage=lead.stage,
                     merged_into_id=lead.merged_into_id, erased=lead.erased_at is not None)


def _json(s: DuplicateSuggestion) -> Suggestion:
    return Suggestion(id=s.id, lead_id=s.lead_id, other_lead_id=s.other_lead_id, identity_kind=s.identity_kind,
                      identity_value=masked(s.identity_kind, s.identity_value), status=s.status,
                      created_at=iso(s.created_at), resolved_at=iso(s.resolved_at))


@requires(LEAD_MERGE)
@api_spec("重复潜客建议", query=DuplicateQuery, response=SuggestionPage, tags=("duplicates",))
async def list_duplicates(request: web.Request) -> web.Response:
    query = parse_query(request, DuplicateQuery)
    status = None if query.status == "all" else query.status
    async with request.app[SESSIONS]() as session:
        rows = await list_suggestions(session, status, query.limit, query.offset)
        items = [ListedSuggestion(**_json(s).model_dump(), lead=_lead_brief(lead), other_lead=_lead_brief(other))
                 for s, lead, other in rows]
    return respond(SuggestionPage(items=items, limit=query.limit, offset=query.offset))


def _check_open(suggestion: DuplicateSuggestion | None, suggestion_id: int) -> DuplicateSuggestion:
    if suggestion is None:
        raise not_found(WHAT, suggestion_id)
    if suggestion.status != OPEN:
        done = "合并" if suggestion.status == MERGED else "忽略"
        raise ApiError(409, "already_resolved", f"该重复建议已{done}，无需再次处理",
                       resolution=suggestion.status)
    return suggestion


async def _current(session: AsyncSession, lead_id: int) -> Lead:
    lead = await current_lead(session, lead_id)
    if lead is None:
        raise not_found("潜客", lead_id)
    if lead.erased_at is not None:
        raise ApiError(409, "lead_erased", f"潜客 #{lead.id} 的个人信息已删除，不能合并")
    return lead


async def _lock_pair(session: AsyncSession, suggestion_id: int) -> tuple[DuplicateSuggestion, Lead, Lead]:
    """The open suggestion and its two current leads, locked leads first (the order resolution and erasure use)."""
    suggestion = _check_open(await find_suggestion(session, suggestion_id), suggestion_id)
    lead = await _current(session, suggestion.lead_id)
    other = await _current(session, suggestion.other_lead_id)
    if lead.id == other.id:
        raise ApiError(409, "already_merged", f"两个潜客已合并为潜客 #{lead.id}，无需再次合并")
    locked = await lock_leads(session, [lead.id, other.id])
    if any(x.merged_into_id is not None or x.erased_at is not None for x in locked):
        raise ApiError(409, "changed", "潜客刚刚被合并或删除，请刷新后重试")
    suggestion = _check_open(await find_suggestion(session, suggestion_id, lock=True), suggestion_id)
    return suggestion, lead, other


@requires(LEAD_MERGE)
@api_spec("合并重复建议中的两个潜客", response=Merged, errors=(404, 409), tags=("duplicates",))
async def merge(request: web.Request) -> web.Response:
    suggestion_id = path_id(request, "suggestion_id", what=WHAT)
    now = utcnow()
    async with request.app[SESSIONS]() as session, session.begin():
        suggestion, lead, other = await _lock_pair(session, suggestion_id)
        repo = LeadRepository(session, request.app[SCORING], lambda: now, events=request.app[EVENTS])
        via = IdentityKey(suggestion.identity_kind, "", suggestion.identity_value)
        outcome = await repo.merges.merge_pair(lead.id, other.id, via, now=now)
        if isinstance(outcome, Merge):
            resolve_suggestion(suggestion, MERGED, now, actor_of(request).label)
            after = {"status": MERGED, "survivor_id": outcome.survivor_id, "merged_id": outcome.merged_id}
        else:
            after = {"status": OPEN, "conflict": True}
        await audit(request, LEAD_MERGE, target_kind="duplicate", target_id=suggestion.id,
                    before={"status": OPEN, "lead_id": lead.id, "other_lead_id": other.id}, after=after,
                    session=session)
        body = _json(suggestion)
    # Outside the transaction: a conflict is answered 409 but stays recorded for the console to show.
    if not isinstance(outcome, Merge):
        raise ApiError(409, "merge_conflict", "两个潜客都有经微信验证的手机号且号码不同，不能合并；已记录为合并冲突",
                       lead_id=outcome.lead_id, other_lead_id=outcome.other_lead_id)
    return respond(Merged(**body.model_dump(), survivor_id=outcome.survivor_id, merged_id=outcome.merged_id))


@requires(LEAD_MERGE)
@api_spec("忽略重复建议", response=Suggestion, errors=(404, 409), tags=("duplicates",))
async def dismiss(request: web.Request) -> web.Response:
    suggestion_id = path_id(request, "suggestion_id", what=WHAT)
    async with request.app[SESSIONS]() as session, session.begin():
        suggestion = _check_open(await find_suggestion(session, suggestion_id, lock=True), suggestion_id)
        resolve_suggestion(suggestion, DISMISSED, utcnow(), actor_of(request).label)
        await audit(request, f"{LEAD_MERGE}.dismiss", target_kind="duplicate", target_id=suggestion.id,
                    before={"status": OPEN}, after={"status": DISMISSED}, session=session)
        body = _json(suggestion)
    return respond(body)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/duplicates", list_duplicates)
    app.router.add_post("/api/duplicates/{suggestion_id}/merge", merge)
    app.router.add_post("/api/duplicates/{suggestion_id}/dismiss", dismiss)
