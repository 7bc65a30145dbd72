"""The SDR hand-off queue: questions the bot had no answer for; claimed and answered from the console."""

from __future__ import annotations

from aiohttp import web

from bot.keys import SESSIONS
from bot.web.errors import json_response
from bot.web.params import choice_param, int_param
from leads.access import HANDOFF_READ
from sdr_console.api.auth import lead_action, require_token
from sdr_console.api.scoping import owner_filter
from sdr_console.api.serialize import MAX_LIMIT, iso
from storage.repos.handoffs import list_handoffs


@require_token
@lead_action(HANDOFF_READ)
async def handoff_queue(request: web.Request) -> web.Response:
    """Only questions about leads the caller may see: a salesperson's own, a team lead's team's."""
    status = choice_param(request, "status", ("open", "closed", "all"), default="open")
    limit = int_param(request, "limit", 50, 1, MAX_LIMIT)
    offset = int_param(request, "offset", 0, 0, 10_000_000)
    async with request.app[SESSIONS]() as session:
        owners = await owner_filter(request, session, HANDOFF_READ)
        rows = await list_handoffs(session, None if status == "all" else status, limit, offset, owner_ids=owners)
    return json_response({"items": [
        {"id": h.id, "lead_id": h.lead_id, "reason": h.reason, "message": h.message, "status": h.status,
         "created_at": iso(h.created_at)} for h in rows]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/handoffs", handoff_queue)
