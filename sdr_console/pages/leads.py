"""``GET /console/leads``: the lead list page — filters (a GET form: the URL is the filter), search, sortable
columns, pages, masked phones, the user's saved filters and the CSV export (sdr_console/static/leads.js).

The same filters and scope as ``GET /api/leads``: a salesperson sees only their own leads, a team lead their
team's, in SQL. The export button shows only for roles the rule table lets export.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import SESSIONS
from bot.web.errors import ApiError
from leads import access
from leads.lead_filters import CHINA, CONSENT_LABELS, CONSENTS, OWNER_NONE, count_label, mask_phone
from leads.lifecycle import STAGE_LABELS, STAGES
from leads.scoring_rules import QUADRANT_LABELS, QUADRANTS
from sdr_console.api.auth import lead_action
from sdr_console.api.lead_list import LeadListQuery, query_from
from sdr_console.api.saved_filters import filter_item
from sdr_console.api.scoping import owner_ids
from sdr_console.web.guard import ConsoleUser, require_user
from sdr_console.web.render import render
from storage.repos.lead_search import count_capped, lead_page
from storage.repos.saved_filters import filters_of
from storage.repos.teams import list_teams, team_ids_of
from storage.repos.users import list_users

PATH = "/console/leads"
COLUMNS = (("display_name", "姓名"), (None, "公司"), (None, "手机号"), ("stage", "阶段"), (None, "象限"),
           ("ability", "能力分"), ("motivation", "意向分"), (None, "负责人"), (None, "标签"),
           ("last_activity_at", "最近活动"))
STAGE_BADGES = {"lead": "secondary", "mql": "info", "sal": "primary", "sql": "primary", "opportunity": "warning",
                "customer": "success", "returned": "danger", "recycled": "dark", "disqualified": "light",
                "unsubscribed": "light"}


async def _choices(session: AsyncSession, owners: list[int] | None, user: ConsoleUser) -> tuple[list[Any], list[Any]]:
    """The owner and team options the user may filter by."""
    users = [u for u in await list_users(session, include_disabled=False, limit=500)
             if owners is None or u.id in owners]
    if owners is None:
        teams = await list_teams(session)
    else:
        mine = set(await team_ids_of(session, user.id))
        teams = [t for t in await list_teams(session) if t.id in mine]
    return [(u.id, u.display_name or u.username) for u in users], [(t.id, t.name) for t in teams]


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _when(value: datetime | None) -> str:
    return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if value else ""


def _linker(params: dict[str, Any]) -> Any:
    def link(**changes: Any) -> str:
        merged = {**params, **{k: v for k, v in changes.items()}}
        clean = {k: v for k, v in merged.items() if v not in (None, "", [])}
        return PATH + ("?" + urlencode(clean, doseq=True) if clean else "")
    return link


@lead_action(access.LEAD_READ)
async def leads_page(request: web.Request) -> web.StreamResponse:
    current = require_user(request)
    user = current.user
    error = None
    try:
        query = query_from(request.query)
    except ApiError as exc:
        error, query = exc.message, LeadListQuery()
    params = query.params()
    async with request.app[SESSIONS]() as session:
        owners = await owner_ids(session, user.id, user.role, access.LEAD_READ)
        f = query.to_filter()
        rows, has_more = await lead_page(session, f, owners, query.limit, query.offset)
        total, capped = await count_capped(session, f, owners)
        owner_choices, team_choices = await _choices(session, owners, user)
        saved = [filter_item(s) for s in await filters_of(session, user.id)]
    link = _linker(params)
    return render(
        request, "leads.html", title="线索", nav=PATH, user=user, csrf=current.session.csrf, error=error,
        query=query, rows=rows, has_more=has_more, total_label=count_label(total, capped), link=link,
        page_params=params, query_string=urlencode(params, doseq=True), saved=saved,
        owner_choices=owner_choices, team_choices=team_choices, can_export=access.scope(
            user.role, access.LEAD_EXPORT) is not None, stages=[(s, STAGE_LABELS[s]) for s in STAGES],
        quadrants=[(q, QUADRANT_LABELS[q]) for q in QUADRANTS], consents=[(c, CONSENT_LABELS[c]) for c in CONSENTS],
        stage_labels=STAGE_LABELS, stage_badges=STAGE_BADGES, quadrant_labels=QUADRANT_LABELS, columns=COLUMNS,
        owner_none=OWNER_NONE, mask=mask_phone, when=_when, num=_num, page_no=query.offset // query.limit + 1)


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, leads_page)
