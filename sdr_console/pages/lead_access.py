"""Who may see one lead's 360 (and its fragments), and which of its controls they get.

The same rule table as the JSON API (leads/access.py through ``authorize_lead``'s logic): the lead's owner, a
team mate for a team scope, anyone for an ALL scope. A refusal is a 403 page and an audit entry (outcome
"denied"), written after the page's own database session is closed; an unknown id is a 404 page; a merged lead
redirects to its survivor (the URL a colleague shared still works).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import SESSIONS
from bot.limits.web import LIMITER
from leads import access
from sdr_console.api.auth import lead_action
from sdr_console.web.guard import SignedIn, require_user
from sdr_console.web.render import render
from storage.models import Lead
from storage.repos import audit as audit_repo
from storage.repos.lead_views import find_lead
from storage.repos.teams import share_a_team
from storage.tx import in_transaction

PAGE_PREFIX = "/console/leads/"
_MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Can:
    """The controls the user gets on this lead: what the rule table lets them do to it."""

    edit: bool
    stage: bool
    transfer: bool
    merge: bool


@dataclass(frozen=True, slots=True)
class LeadView:
    current: SignedIn
    session: AsyncSession
    lead: Lead
    can: Can


PageHandler = Callable[[web.Request, LeadView], Awaitable[web.StreamResponse]]


async def _may(session: AsyncSession, user_id: int, role: str, action: str, lead: Lead) -> bool:
    owner = lead.owner_user_id
    owns = owner == user_id
    same_team = (access.scope(role, action) is access.TEAM and not owns and owner is not None
                 and await share_a_team(session, user_id, owner))
    return access.allowed(role, action, owns=owns, same_team=same_team)


def _lead_id(request: web.Request) -> int | None:
    raw = request.match_info.get("lead_id", "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        return None
    value = int(raw)
    return value if 0 < value <= _MAX_ID else None


def not_found_page(request: web.Request, current: SignedIn) -> web.Response:
    return render(request, "message.html", 404, title="找不到该潜客", message="该潜客不存在，或链接有误。",
                  user=current.user, csrf=current.session.csrf, nav="/console/leads", link="/console/leads",
                  link_label="返回线索列表")


async def audit_read_refused(request: web.Request, current: SignedIn, lead_id: int) -> None:
    """A lead page refused to this user, in the audit log (the console's pages and the mobile inbox's)."""
    ip = request.app[LIMITER].clients.of(request)

    async def work(session: AsyncSession) -> None:
        await audit_repo.record(session, action=access.LEAD_READ, actor_user_id=current.user.id,
                                actor_label=current.user.username, target_kind="lead", target_id=lead_id,
                                after={"page": request.path[:200]}, ip=ip, outcome=audit_repo.DENIED)

    await in_transaction(request.app[SESSIONS], work)


async def _refuse(request: web.Request, current: SignedIn, lead_id: int) -> web.Response:
    await audit_read_refused(request, current, lead_id)
    return render(request, "message.html", 403, title="无权查看", message="您没有权限查看该潜客。",
                  user=current.user, csrf=current.session.csrf, nav="/console/leads", link="/console/leads",
                  link_label="返回线索列表")


def lead_page(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A GET route about one lead, for users who may read it: the handler gets the open session, the lead
    and the user's controls."""

    @lead_action(access.LEAD_READ)  # the authorisation matrix reads the declared action from the route's handler
    @functools.wraps(handler)
    async def page(request: web.Request) -> web.StreamResponse:
        current = require_user(request)
        lead_id = _lead_id(request)
        if lead_id is None:
            return not_found_page(request, current)
        user = current.user
        async with request.app[SESSIONS]() as session:
            lead = await find_lead(session, lead_id)
            if lead is None:
                return not_found_page(request, current)
            readable = await _may(session, user.id, user.role, access.LEAD_READ, lead)
            if readable and lead.merged_into_id is not None:  # checked first: the redirect names the survivor
                tail = request.path.removeprefix(f"{PAGE_PREFIX}{request.match_info['lead_id']}")
                raise web.HTTPFound(f"{PAGE_PREFIX}{lead.merged_into_id}{tail}")
            if readable:
                can = Can(*[await _may(session, user.id, user.role, a, lead) for a in
                            (access.LEAD_EDIT, access.LEAD_STAGE, access.LEAD_TRANSFER, access.LEAD_MERGE)])
                return await handler(request, LeadView(current, session, lead, can))
        return await _refuse(request, current, lead_id)

    return page
