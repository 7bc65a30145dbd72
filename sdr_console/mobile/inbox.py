"""``GET /m/?tab=pending|accepted|returned&before=<cursor>``: the salesperson's own assignments, newest first.

One indexed range per page (storage/repos/mobile_inbox.py, ix_assignments_user_status_assigned_at) and a keyset
cursor for 加载更多: a page costs the same with 1 M leads in the table. Returned leads are listed without a
link: they went back to the SDRs and are no longer the salesperson's to open.
"""

from __future__ import annotations

from aiohttp import web

from bot.keys import SESSIONS
from leads.lifecycle import STAGE_LABELS
from leads.scoring_rules import QUADRANT_LABELS
from sdr_console.mobile.web import HOME, message, page, require_user
from sdr_console.pages.lead_sections import clock
from storage.repos.mobile_inbox import STATUSES, InboxCursor, inbox_page, pending_count

PAGE_SIZE = 20
TABS = {"pending": "待处理", "accepted": "已接受", "returned": "已退回"}
EMPTY = {"pending": "暂无待处理的线索，新线索分配给您时会推送到企业微信。", "accepted": "还没有已接受的线索。",
         "returned": "还没有退回的线索。"}
assert tuple(TABS) == STATUSES


async def inbox(request: web.Request) -> web.StreamResponse:
    current = await require_user(request)
    if isinstance(current, web.Response):
        return current
    tab = request.query.get("tab", "pending")
    if tab not in TABS:
        return message(request, 400, "参数无效", "tab 只能是 pending、accepted 或 returned。", link=HOME)
    raw = request.query.get("before")
    before = InboxCursor.decode(raw) if raw else None
    if raw and before is None:
        return message(request, 400, "参数无效", "参数 before 无效，请从列表重新打开。", link=HOME)
    async with request.app[SESSIONS]() as session:
        result = await inbox_page(session, current.user.id, tab, before, PAGE_SIZE)
        waiting = await pending_count(session, current.user.id)
    rows = [{"row": r, "name": r.display_name or f"潜客 #{r.lead_id}",
             "quadrant": QUADRANT_LABELS.get(r.quadrant or "", ""), "stage": STAGE_LABELS.get(r.stage, r.stage),
             "score": None if r.ability is None else f"能力 {r.ability:.0f} · 意向 {(r.motivation or 0):.0f}"}
            for r in result.rows]
    return page(request, "inbox.html", title="我的线索", tabs=TABS, tab=tab, rows=rows, waiting=waiting,
                empty=EMPTY[tab], more=result.next.encode() if result.next else None, when=clock(request),
                user=current.user, csrf=current.session.csrf, nav="inbox")


def add_routes(app: web.Application) -> None:
    app.router.add_get(HOME, inbox)
