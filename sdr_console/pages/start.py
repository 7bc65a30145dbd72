"""``GET /`` (to the console) and ``GET /console/``: the start page. Today it shows who is signed in and what
storage already knows (leads by stage, the open hand-off queue); the per-role widgets come with their pages."""

from __future__ import annotations

from aiohttp import web

from bot.keys import SESSIONS
from leads.lifecycle import STAGE_LABELS, STAGES
from sdr_console.web.guard import require_user
from sdr_console.web.render import render
from storage.repos.console_stats import leads_by_stage, open_handoffs


async def root(request: web.Request) -> web.StreamResponse:
    """``/`` and ``/console`` (typed without its slash) lead to the console."""
    raise web.HTTPFound("/console/")


async def start_page(request: web.Request) -> web.StreamResponse:
    current = require_user(request)
    async with request.app[SESSIONS]() as db:
        counts = await leads_by_stage(db)
        handoffs = await open_handoffs(db)
    stages = [(STAGE_LABELS[s], counts.get(s, 0)) for s in STAGES]
    stages += [(stage, n) for stage, n in sorted(counts.items()) if stage not in STAGE_LABELS]  # never hide a row
    return render(request, "start.html", title="首页", nav="/console/", user=current.user, csrf=current.session.csrf,
                  stages=stages, total=sum(counts.values()), handoffs=handoffs)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", root)
    app.router.add_get("/console", root)
    app.router.add_get("/console/", start_page)
