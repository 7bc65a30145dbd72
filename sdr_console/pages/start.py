"""``GET /`` (to the console) and ``GET /console/``: the start page — what the signed-in person should look at
today, each figure scoped by the rule table (a salesperson sees their own leads, a team lead their team's):
today's new leads, MQLs waiting, open hand-off questions, my tasks (due today and overdue), leads by stage.
Every widget links to the list it summarises."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from aiohttp import web

from bot.keys import SESSIONS
from leads.access import HANDOFF_READ, LEAD_READ, SALES
from leads.lead_filters import CHINA  # the console's one clock for people: Beijing time
from leads.lifecycle import STAGE_LABELS, STAGES
from sdr_console.api.scoping import owner_ids
from sdr_console.pages.scope import may
from sdr_console.web.guard import require_user
from sdr_console.web.render import render
from storage.models import utcnow
from storage.repos.console_stats import due_tasks, leads_by_stage, leads_in_stage, new_leads, open_handoffs

WAITING_STAGE = "mql"  # MQLs wait for an SDR to qualify them


async def root(request: web.Request) -> web.StreamResponse:
    """``/`` and ``/console`` (typed without its slash) lead to the console."""
    raise web.HTTPFound("/console/")


def _today(now: datetime) -> tuple[datetime, datetime]:
    """Today's start and end in China's time zone (as aware datetimes; the database compares instants)."""
    day = now.astimezone(CHINA).date()
    start = datetime.combine(day, time(), CHINA)
    return start, start + timedelta(days=1)


def _when(at: datetime | None) -> str:
    return at.astimezone(CHINA).strftime("%m-%d %H:%M") if at else ""


async def start_page(request: web.Request) -> web.StreamResponse:
    current = require_user(request)
    user = current.user
    now = utcnow()
    day_start, day_end = _today(now)
    sees_leads, sees_handoffs = may(user.role, LEAD_READ), may(user.role, HANDOFF_READ)
    async with request.app[SESSIONS]() as db:
        leads_scope = await owner_ids(db, user.id, user.role, LEAD_READ) if sees_leads else []
        handoff_scope = await owner_ids(db, user.id, user.role, HANDOFF_READ) if sees_handoffs else []
        counts = await leads_by_stage(db, leads_scope) if sees_leads else {}
        fresh = await new_leads(db, day_start, owner_ids=leads_scope) if sees_leads else (0, [])
        waiting = await leads_in_stage(db, WAITING_STAGE, owner_ids=leads_scope) if sees_leads else (0, [])
        handoffs = await open_handoffs(db, handoff_scope) if sees_handoffs else 0
        tasks = await due_tasks(db, user.id, day_end)
    stages = [(s, STAGE_LABELS[s], counts.get(s, 0)) for s in STAGES]
    stages += [(s, s, n) for s, n in sorted(counts.items()) if s not in STAGE_LABELS]  # never hide a row
    scope_note = "全部线索" if leads_scope is None else ("我的线索" if user.role == SALES else "我和团队的线索")
    return render(request, "start.html", title="首页", nav="/console/", user=user, csrf=current.session.csrf,
                  stages=stages, total=sum(counts.values()), handoffs=handoffs, sees_leads=sees_leads,
                  sees_handoffs=sees_handoffs, fresh=fresh, waiting=waiting, tasks=tasks, now=now, when=_when,
                  stage_labels=STAGE_LABELS, scope_note=scope_note if sees_leads else "")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", root)
    app.router.add_get("/console", root)
    app.router.add_get("/console/", start_page)
