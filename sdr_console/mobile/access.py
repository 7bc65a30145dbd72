"""Who may open a lead on the phone: the console's rule (leads/access.py LEAD_READ — a salesperson their own
leads, a team lead their team's, SDRs and managers all), the same view object as the console's 360
(sdr_console/pages/lead_access.py LeadView), so the 360's section loaders serve the mobile page unchanged.

A refusal is a 403 page and an audit entry (outcome "denied", action lead.read), written after the page's own
database session is closed; an unknown id is a 404 page; a merged lead opens its survivor.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import SESSIONS
from leads import access
from sdr_console.api.auth import lead_action
from sdr_console.mobile.web import message, require_user
from sdr_console.pages.lead_access import Can, LeadView, audit_read_refused
from sdr_console.web.guard import ConsoleUser, SignedIn
from storage.models import Lead
from storage.repos.lead_views import find_lead
from storage.repos.teams import share_a_team

LEAD_PATH = "/m/leads/"
_MAX_ID = 2**63 - 1
PageHandler = Callable[[web.Request, LeadView], Awaitable[web.StreamResponse]]


async def may(session: AsyncSession, user: ConsoleUser, action: str, lead: Lead) -> bool:
    owner = lead.owner_user_id
    owns = owner == user.id
    same_team = (access.scope(user.role, action) is access.TEAM and not owns and owner is not None
                 and await share_a_team(session, user.id, owner))
    return access.allowed(user.role, action, owns=owns, same_team=same_team)


def parse_id(raw: str) -> int | None:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        return None
    value = int(raw)
    return value if 0 < value <= _MAX_ID else None


def not_found(request: web.Request) -> web.Response:
    return message(request, 404, "找不到该潜客", "该潜客不存在，或链接有误。")


async def refuse(request: web.Request, current: SignedIn, lead_id: int) -> web.Response:
    await audit_read_refused(request, current, lead_id)
    return message(request, 403, "无权查看", "该潜客不在您的名下，您没有权限查看。")


async def open_lead(request: web.Request, current: SignedIn, lead_id: int,
                    handler: PageHandler) -> web.StreamResponse:
    """``handler`` with the lead when the user may read it; else the 404 or the audited 403."""
    async with request.app[SESSIONS]() as session:
        lead = await find_lead(session, lead_id)
        if lead is None:
            return not_found(request)
        readable = await may(session, current.user, access.LEAD_READ, lead)
        if readable and lead.merged_into_id is not None:
            raise web.HTTPFound(f"{LEAD_PATH}{lead.merged_into_id}")
        if readable:
            # The mobile page edits nothing in place: the console's edit controls stay off.
            view = LeadView(current, session, lead, Can(edit=False, stage=False, transfer=False, merge=False))
            return await handler(request, view)
    return await refuse(request, current, lead_id)


def mobile_lead_page(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A GET page about the lead of the path's ``lead_id``, for a signed-in user who may read it."""

    @lead_action(access.LEAD_READ)
    @functools.wraps(handler)
    async def page(request: web.Request) -> web.StreamResponse:
        current = await require_user(request)
        if isinstance(current, web.Response):
            return current
        lead_id = parse_id(request.match_info.get("lead_id", ""))
        if lead_id is None:
            return not_found(request)
        return await open_lead(request, current, lead_id, handler)

    return page
