"""The console's server-rendered pages (Simplified Chinese, desktop browser): one module per page or flow."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.keys import CONFIG, REDIS
from sdr_console.pages import (
    api_docs,
    batch_compose,
    batches,
    handoffs,
    journeys,
    lead,
    leads,
    login,
    start,
    tasks,
)
from sdr_console.web.assets import ASSETS, PREFIX, find_assets, static_file
from sdr_console.web.guard import STORE, console_guard
from sdr_console.web.sessions import SessionStore


async def _sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    app[STORE] = SessionStore(app[REDIS], cfg.redis.key_prefix, cfg.keyring, cfg.console)
    yield


def add_console_pages(app: web.Application) -> None:
    """Pages, their static files and the session middleware. After the rate limits: a sign-in is counted
    before its CSRF token or password is looked at. Needs REDIS (redis_ctx) before its own start-up runs."""
    app[ASSETS] = find_assets(app[CONFIG].console.assets_dir)
    app.cleanup_ctx.append(_sessions_ctx)
    app.router.add_get(PREFIX + "{path:.+}", static_file)
    start.add_routes(app)
    leads.add_routes(app)  # /console/leads: the list, saved filters, export
    lead.add_routes(app)  # /console/leads/{id}: the 360
    handoffs.add_routes(app)  # /console/handoffs: the hand-off queue
    tasks.add_routes(app)  # /console/tasks: 我的任务 across leads
    journeys.add_routes(app)  # /console/journeys: nurture journeys, their steps and enrolments
    batch_compose.add_routes(app)  # /console/batches/new: compose, preview, send (before {batch_id})
    batches.add_routes(app)  # /console/batches: batch messages and each one's report
    api_docs.add_routes(app)  # /api/docs: the browsable OpenAPI page
    login.add_routes(app)
    app.middlewares.append(console_guard)
