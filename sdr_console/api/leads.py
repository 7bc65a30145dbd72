"""``GET /api/leads/{id}``: one lead and its history (identities, touchpoints, merges)."""

from __future__ import annotations

from aiohttp import web

from bot.keys import SESSIONS
from leads.access import LEAD_READ
from sdr_console.api.auth import authorize_lead, lead_action, require_token
from sdr_console.api.lookup import lead_from_path
from sdr_console.api.models import JsonObject, LeadSummary, Timestamp
from sdr_console.api.serialize import iso, lead_summary
from sdr_console.api.spec import ResponseModel, api_spec, respond
from storage.repos.leads import lead_detail


class Identity(ResponseModel):
    kind: str
    app: str
    value: str
    verified: bool
    created_at: Timestamp | None


class Touchpoint(ResponseModel):
    id: int
    kind: str
    scene: str | None
    channel: str | None
    source_code: str | None
    occurred_at: Timestamp | None
    inbox_id: int | None
    detail: JsonObject | None


class MergeRecord(ResponseModel):
    survivor_id: int
    merged_id: int
    identity_kind: str | None
    identity_value: str | None
    moved: JsonObject | list[object] | None
    created_at: Timestamp | None


class MergeConflict(ResponseModel):
    id: int
    lead_id: int
    other_lead_id: int
    identity_kind: str | None
    identity_value: str | None
    reason: str | None
    status: str
    created_at: Timestamp | None


class LeadDetail(LeadSummary):
    profile: JsonObject | None
    consent_updated_at: Timestamp | None
    tags: list[str]
    identities: list[Identity]
    touchpoints: list[Touchpoint]
    merges: list[MergeRecord]
    merge_conflicts: list[MergeConflict]


@require_token
@lead_action(LEAD_READ)
@api_spec("潜客详情：身份、触点、合并记录", response=LeadDetail, errors=(404,), tags=("leads",))
async def get_lead(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        lead = await lead_from_path(request, session)
        await authorize_lead(request, session, LEAD_READ, lead)
        detail = await lead_detail(session, lead.id)
    return respond(LeadDetail(
        **lead_summary(lead),
        profile=lead.profile,
        consent_updated_at=iso(lead.consent_updated_at),
        tags=detail["tags"],
        identities=[Identity(kind=i.kind, app=i.app, value=i.value, verified=i.verified,
                             created_at=iso(i.created_at)) for i in detail["identities"]],
        touchpoints=[Touchpoint(id=t.id, kind=t.kind, scene=t.scene, channel=t.channel, source_code=t.source_code,
                                occurred_at=iso(t.occurred_at), inbox_id=t.inbox_id, detail=t.detail)
                     for t in detail["touchpoints"]],
        merges=[MergeRecord(survivor_id=m.survivor_id, merged_id=m.merged_id, identity_kind=m.identity_kind,
                            identity_value=m.identity_value, moved=m.moved, created_at=iso(m.created_at))
                for m in detail["merges"]],
        merge_conflicts=[MergeConflict(id=c.id, lead_id=c.lead_id, other_lead_id=c.other_lead_id,
                                       identity_kind=c.identity_kind, identity_value=c.identity_value,
                                       reason=c.reason, status=c.status, created_at=iso(c.created_at))
                         for c in detail["conflicts"]],
    ))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/leads/{lead_id}", get_lead)
