"""The lead a ``/api/leads/{lead_id}/...`` URL names: parsed once, 404 when unknown, 308 to a merge survivor."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.params import not_found, path_id
from storage.models import Lead
from storage.repos.lead_views import find_lead


async def lead_from_path(request: web.Request, session: AsyncSession, suffix: str = "", *,
                         lock: bool = False) -> Lead:
    lead_id = path_id(request, "lead_id")
    lead = await find_lead(session, lead_id, lock=lock)
    if lead is None:
        raise not_found("潜客", lead_id)
    if lead.merged_into_id is not None:
        tail = f"/{suffix}" if suffix else ""
        raise web.HTTPPermanentRedirect(f"/api/leads/{lead.merged_into_id}{tail}")
    return lead
