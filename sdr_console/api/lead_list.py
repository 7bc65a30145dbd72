"""``GET /api/leads``: the lead list the console shows, filtered, searched, sorted and paginated."""

from __future__ import annotations

from aiohttp import web

from bot.keys import SESSIONS
from bot.web.errors import json_response
from bot.web.params import int_param
from leads.access import LEAD_READ
from sdr_console.api.auth import lead_action, require_token
from sdr_console.api.scoping import owner_filter
from sdr_console.api.serialize import MAX_LIMIT, lead_summary
from storage.repos.leads import search_leads


@require_token
@lead_action(LEAD_READ)
async def list_leads(request: web.Request) -> web.Response:
    """Only the leads the caller may read: a salesperson's own, a team lead's team's (filtered in SQL)."""
    limit = int_param(request, "limit", 50, 1, MAX_LIMIT)
    offset = int_param(request, "offset", 0, 0, 10_000_000)
    q = request.query.get("q", "").strip()[:200] or None
    async with request.app[SESSIONS]() as session:
        owners = await owner_filter(request, session, LEAD_READ)
        leads = await search_leads(session, q, limit, offset, owner_ids=owners)
    return json_response({"items": [lead_summary(lead) for lead in leads], "limit": limit, "offset": offset})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/leads", list_leads)
