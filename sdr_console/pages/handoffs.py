"""``GET /console/handoffs``: the hand-off queue page (tabs 待处理 / 我认领的 / 已关闭), and its list fragment
``GET /console/handoffs/list`` that the page re-fetches after a claim or a reply.

The buttons and forms call the JSON API (sdr_console/api/handoffs.py) directly; this page only shows what the
API would answer: the question, its lead, the channel and, for the Official Account, the 48-hour window —
outside it the page explains why and offers a template message instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.keys import CONFIG, SESSIONS
from leads.access import HANDOFF_READ, HANDOFF_REPLY
from leads.lead_filters import CHINA  # the console's one clock for people: Beijing time
from sdr_console.api.handoff_items import MAX_REPLY, HandoffItem, item_of
from sdr_console.api.scoping import owner_ids
from sdr_console.pages.scope import may, refuse
from sdr_console.web.guard import SignedIn, require_user
from sdr_console.web.render import render
from storage.models import utcnow
from storage.repos.handoffs import count_handoffs, list_handoffs

TABS = (("open", "待处理"), ("mine", "我认领的"), ("closed", "已关闭"))
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Card:
    """One question as the page shows it (times in China's time zone)."""

    item: HandoffItem
    created: str
    closes: str
    closed: str
    mine: bool  # claimed by the viewer


def local(at: str | datetime | None) -> str:
    if at is None:
        return ""
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    return when.astimezone(CHINA).strftime("%m-%d %H:%M")


async def _cards(request: web.Request, current: SignedIn, tab: str) -> tuple[list[Card], dict[str, int]]:
    user = current.user
    async with request.app[SESSIONS]() as session:
        owners = await owner_ids(session, user.id, user.role, HANDOFF_READ)
        status, claimed = ("closed", None) if tab == "closed" else ("open", user.id if tab == "mine" else None)
        views = await list_handoffs(session, status, PAGE_SIZE, 0, owner_ids=owners, claimed_by=claimed)
        now, outbound = utcnow(), request.app[CONFIG].capture.outbound
        items = [await item_of(session, v, outbound, now) for v in views]
        counts = {"open": await count_handoffs(session, "open", owner_ids=owners),
                  "mine": await count_handoffs(session, "open", owner_ids=owners, claimed_by=user.id)}
    cards = [Card(i, local(i.created_at), local(i.window_closes_at), local(i.closed_at),
                  i.claimed_by_user_id == user.id) for i in items]
    return cards, counts


def _tab(request: web.Request) -> str:
    tab = request.query.get("tab", "open")
    return tab if tab in dict(TABS) else "open"


def _context(request: web.Request, current: SignedIn, tab: str) -> dict[str, object]:
    outbound = request.app[CONFIG].capture.outbound
    return {"tab": tab, "tabs": TABS, "can_reply": may(current.user.role, HANDOFF_REPLY),
            "template_ready": bool(outbound.fallback_template_id), "window_h": outbound.customer_service_window_h,
            "max_reply": MAX_REPLY, "user": current.user, "csrf": current.session.csrf}


async def _queue(request: web.Request, template: str, **page: Any) -> web.StreamResponse:
    current = require_user(request)
    if not may(current.user.role, HANDOFF_READ):
        return await refuse(request, current, HANDOFF_READ)
    tab = _tab(request)
    cards, counts = await _cards(request, current, tab)
    return render(request, template, cards=cards, counts=counts, **page, **_context(request, current, tab))


async def handoffs_page(request: web.Request) -> web.StreamResponse:
    return await _queue(request, "handoffs.html", title="待人工回复", nav="/console/handoffs")


async def handoff_list(request: web.Request) -> web.StreamResponse:
    """The list alone (htmx re-fetches it after a claim or a reply)."""
    return await _queue(request, "handoffs_list.html")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/handoffs", handoffs_page)
    app.router.add_get("/console/handoffs/list", handoff_list)
