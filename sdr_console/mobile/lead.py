"""``GET /m/leads/{lead_id}``: one lead on the phone — profile, BANT, score explanation, conversation and
timeline (the console 360's own section loaders, sdr_console/pages/lead_sections.py), the hand-off decision
(接受 / 退回, through the JSON API: POST /api/leads/{id}/accept and /return with the session's CSRF token) and
the content toolbox (sdr_console/mobile/share.py makes each item's tracked link).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.keys import CONFIG, CONVERSATION
from leads import access
from leads.identity import EMAIL, PHONE
from leads.lifecycle import STAGE_LABELS
from sdr_console.mobile.access import LEAD_PATH, may, mobile_lead_page
from sdr_console.mobile.web import page
from sdr_console.pages.lead_access import LeadView
from sdr_console.pages.lead_sections import (
    IDENTITY_LABELS,
    bant_section,
    clock,
    profile_section,
    score_section,
    timeline_section,
)
from storage.repos.mobile_inbox import latest_assignment

STATUS_LABELS = {"pending": "待处理", "accepted": "已接受", "returned": "已退回", "superseded": "已改派"}
CONTENT_KINDS = {"article": "文章", "case_study": "客户案例", "video": "视频", "whitepaper": "白皮书",
                 "livestream": "直播"}
CONVERSATION_KINDS = frozenset({"inbound", "outbound"})
TOOLBOX_MAX = 30
CONTACT_LABELS = frozenset({IDENTITY_LABELS[PHONE], IDENTITY_LABELS[EMAIL]})


def toolbox(request: web.Request) -> list[dict[str, Any]]:
    """The content library by kind, in CONTENT_KINDS' order (articles, cases, videos first)."""
    items = request.app[CONVERSATION].content.all()
    groups = []
    for kind, label in CONTENT_KINDS.items():
        chosen = [i for i in items if i.kind == kind][:TOOLBOX_MAX]
        if chosen:
            groups.append({"kind": kind, "label": label, "entries": chosen})
    return groups


async def _decision(view: LeadView) -> dict[str, Any]:
    assignment = await latest_assignment(view.session, view.lead.id)
    if assignment is None:
        return {"assignment": None, "can_decide": False}
    mine = assignment.user_id == view.current.user.id
    can = assignment.status == "pending" and await may(view.session, view.current.user, access.LEAD_ACCEPT,
                                                       view.lead)
    return {"assignment": {"status": assignment.status, "label": STATUS_LABELS.get(assignment.status, ""),
                           "reason": assignment.reason, "at": assignment.assigned_at, "mine": mine,
                           "return_reason": assignment.return_reason, "return_text": assignment.return_text},
            "can_decide": can}


@mobile_lead_page
async def lead_page(request: web.Request, view: LeadView) -> web.StreamResponse:
    lead = view.lead
    context: dict[str, Any] = {}
    for loader in (profile_section, score_section, bant_section, timeline_section):
        context |= await loader(request, view)
    items = context.pop("items")
    # How to reach the person (phone, email); platform ids mean nothing on a phone screen.
    context["identities"] = [i for i in context["identities"] if i["label"] in CONTACT_LABELS]
    context |= await _decision(view)
    name = lead.display_name or f"潜客 #{lead.id}"
    return page(request, "lead.html", title=name, lead_name=name, lead=lead, when=clock(request),
                stage_label=STAGE_LABELS.get(lead.stage, lead.stage), erased=lead.erased_at is not None,
                conversation=[i for i in reversed(items) if i.kind in CONVERSATION_KINDS],  # a chat reads down
                events=[i for i in items if i.kind not in CONVERSATION_KINDS],
                reasons=request.app[CONFIG].handoff.return_reasons, toolbox=toolbox(request),
                user=view.current.user, csrf=view.current.session.csrf, nav="lead", **context)


def add_routes(app: web.Application) -> None:
    app.router.add_get(LEAD_PATH + "{lead_id}", lead_page)
