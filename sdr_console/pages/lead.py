"""``GET /console/leads/{lead_id}``: one lead whole (the 360), and its sections' fragments under
``/console/leads/{lead_id}/<section>`` (re-rendered after an action; the timeline's takes ``?before=<cursor>``
for older pages).

Only what a first look needs is loaded: the newest timeline page (keyset cursor, storage/repos/timeline.py),
the latest notes and tasks. Every form on the page calls the JSON API (sdr_console/api/) with the session cookie
and the CSRF header; the rule table decides which controls are shown, and the API decides again.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.keys import CONFIG
from leads import bant as bant_rules
from leads.lifecycle import STAGE_LABELS
from sdr_console.pages.lead_access import LeadView, lead_page
from sdr_console.pages.lead_sections import SECTIONS, clock, timeline_section
from sdr_console.web.render import render
from storage.repos.timeline import Cursor


def _common(request: web.Request, view: LeadView) -> dict[str, Any]:
    lead = view.lead
    return {"lead": lead, "can": view.can, "erased": lead.erased_at is not None, "when": clock(request),
            "stage_label": STAGE_LABELS.get(lead.stage, lead.stage), "user": view.current.user,
            "csrf": view.current.session.csrf, "bant_required": request.app[CONFIG].bant.required,
            "bant_labels": bant_rules.FIELD_LABELS}


@lead_page
async def lead_360(request: web.Request, view: LeadView) -> web.StreamResponse:
    context = _common(request, view)
    for _, loader in SECTIONS.values():
        loaded = await loader(request, view)
        assert not loaded.keys() & context.keys(), "two sections name a template variable alike"
        context |= loaded
    name = view.lead.display_name or f"潜客 #{view.lead.id}"
    return render(request, "lead.html", title=name, nav="/console/leads", **context)


def _fragment(section: str) -> Any:
    template, loader = SECTIONS[section]

    @lead_page
    async def fragment(request: web.Request, view: LeadView) -> web.StreamResponse:
        return render(request, template, **(_common(request, view) | await loader(request, view)))

    fragment.__name__ = fragment.__qualname__ = f"lead_{section}_fragment"
    return fragment


@lead_page
async def timeline_fragment(request: web.Request, view: LeadView) -> web.StreamResponse:
    """Without ``before``: the whole section afresh; with it, the older items and the next button (swapped in
    for the button that asked)."""
    raw = request.query.get("before")
    if raw is None or raw == "":
        return render(request, "lead_timeline.html", **_common(request, view),
                      **await timeline_section(request, view))
    cursor = Cursor.decode(raw)
    if cursor is None:
        return web.Response(status=400, text="参数 before 无效", content_type="text/plain", charset="utf-8")
    return render(request, "lead_timeline_items.html", **_common(request, view),
                  **await timeline_section(request, view, cursor))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/leads/{lead_id}", lead_360)
    app.router.add_get("/console/leads/{lead_id}/timeline", timeline_fragment)
    for section in SECTIONS:
        if section != "timeline":
            app.router.add_get(f"/console/leads/{{lead_id}}/{section}", _fragment(section))
