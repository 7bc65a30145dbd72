"""``PATCH /api/leads/{lead_id}/profile``: a person edits the lead's display name and profile fields (the 360).

A partial update: the fields present are set, ``null`` or ``""`` clears one (a console form sends its emptied
inputs as ""), absent ones keep their value. Validation is leads/profile.py's; a refused field changes nothing.
An edit of a field the ability rules read re-scores the lead in the same transaction. The audit entry (action
``lead.edit``) names the changed fields with their before and after, free text masked (leads.profile.audit_view):
the 360's profile history is read from these entries.
"""

from __future__ import annotations

from aiohttp import web

from bot.keys import EVENTS, SCORING, SESSIONS
from bot.web.errors import ApiError
from bot.web.params import body_limit
from leads.access import LEAD_EDIT
from leads.profile import DISPLAY_NAME, ProfileError, apply, audit_view, changes, current, parse_update
from sdr_console.api.auth import audit, authorize_lead, lead_action, require_token
from sdr_console.api.lookup import lead_from_path
from sdr_console.api.spec import RequestModel, ResponseModel, api_spec, parse_body, respond
from storage.models import utcnow
from storage.repos.lead_history import PROFILE_EDIT as PROFILE_AUDIT
from storage.repos.scores import LeadScorer

MAX_BODY = 16 * 1024


class ProfileUpdate(RequestModel):
    """Each field: a new value, or null / "" to clear it. Choice fields take the form catalogue's codes."""

    display_name: str | None = None
    name: str | None = None
    company: str | None = None
    job_title: str | None = None
    department: str | None = None
    company_size: str | None = None
    company_type: str | None = None
    industry: str | None = None
    region: str | None = None
    product_interest: str | None = None
    city: str | None = None
    website: str | None = None


class ProfileAnswer(ResponseModel):
    lead_id: int
    display_name: str | None
    profile: dict[str, str | None]
    changed: list[str]


@require_token
@lead_action(LEAD_EDIT)
@body_limit(MAX_BODY)
@api_spec("修改潜客资料（显示名称与资料字段）", body=ProfileUpdate, response=ProfileAnswer, errors=(400, 404, 409),
          tags=("leads",))
async def patch_profile(request: web.Request) -> web.Response:
    body = await parse_body(request, ProfileUpdate)
    try:
        update = parse_update({name: getattr(body, name) for name in body.model_fields_set})
    except ProfileError as exc:
        raise ApiError(400, "bad_field", str(exc), field=exc.field) from exc
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await lead_from_path(request, session, "profile", lock=True)
        await authorize_lead(request, session, LEAD_EDIT, lead)
        if lead.erased_at is not None:
            raise ApiError(409, "lead_erased", f"潜客 #{lead.id} 的个人信息已删除，不能修改")
        found = changes(current(lead.display_name, lead.profile or {}), update)
        if found:
            before_profile = dict(lead.profile or {})
            if DISPLAY_NAME in update:
                lead.display_name = update[DISPLAY_NAME]
            lead.profile = apply(before_profile, update)  # a new dict: the JSON column sees the change
            scorer = LeadScorer(session, request.app[SCORING], utcnow, request.app[EVENTS])
            if any(before_profile.get(a) != lead.profile.get(a) for a in scorer.attributes):
                await scorer.profile_changed(lead)
            before, after = audit_view(found)
            await audit(request, PROFILE_AUDIT, target_kind="lead", target_id=lead.id, before=before, after=after,
                        session=session)
        values = current(lead.display_name, lead.profile or {})
        answer = ProfileAnswer(lead_id=lead.id, display_name=values.pop(DISPLAY_NAME), profile=values,
                               changed=[c.field for c in found])
    return respond(answer)


def add_routes(app: web.Application) -> None:
    app.router.add_patch("/api/leads/{lead_id}/profile", patch_profile)
