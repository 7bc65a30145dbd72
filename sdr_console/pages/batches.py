"""``GET /console/batches``: 群发消息 — the batches the user may see, newest first, with their channel and outcome
counts; ``GET /console/batches/{batch_id}``: one batch with its per-member WeCom tasks (msgid, status, reminders)
and a keyset page of every recipient's outcome. Composing a new one is sdr_console/pages/batch_compose.py.

Both read through the JSON API's own functions (``batch_list``) and repository (storage/repos/batch_reports.py),
so the pages and ``GET /api/batches`` cannot disagree. Reading needs ``batch.read`` (salespeople: the 403 page,
audited; the nav has no link for them).
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import ValidationError

from bot.keys import SESSIONS
from leads import access
from leads.batches.reasons import EXCLUSIONS, outcome
from leads.lead_filters import CHINA  # the console's one clock for people: Beijing time
from sdr_console.api.auth import ACTOR, Actor, lead_action
from sdr_console.api.batch_models import BatchListQuery
from sdr_console.api.batches import batch_list
from sdr_console.api.scoping import owner_ids
from sdr_console.pages.scope import may, refuse
from sdr_console.web.guard import SignedIn, require_user
from sdr_console.web.render import render
from storage.repos.batch_queue import member_names
from storage.repos.batch_reports import counts_of, get_batch, recipients_page, tasks_of
from storage.repos.segments import get_segment
from storage.repos.users import user_by_id

PATH = "/console/batches"
PAGE_SIZE = 50
CHANNELS = {"wecom": "企业微信", "oa": "公众号"}
# Outcome codes (leads/batches/reasons.py) in the order the list shows them, with short labels for its columns.
OUTCOMES = (("sent", "已发送"), ("waiting", "待成员确认"), ("queued", "排队中"), ("sandboxed", "沙箱未发出"),
            ("unsent", "成员未发送"), ("not_friend", "非好友"), ("over_limit", "超接收上限"), ("failed", "失败"),
            ("expired", "已过期"), ("excluded", "已排除"))
OUTCOME_BADGES = {"sent": "text-bg-success", "waiting": "text-bg-warning", "queued": "text-bg-info",
                  "excluded": "text-bg-secondary", "failed": "text-bg-danger", "not_friend": "text-bg-danger",
                  "over_limit": "text-bg-danger", "expired": "text-bg-dark"}
BATCH_STATUS = {"queued": "公众号消息分发中", "sent": "已全部交付发送"}
TASK_STATUS = {"queued": "排队中", "sandboxed": "沙箱模式：未发出", "waiting": "等待成员确认", "done": "成员已发送",
               "failed": "创建失败", "expired": "长时间未确认，已放弃"}
TASK_BADGES = {"done": "text-bg-success", "waiting": "text-bg-warning", "failed": "text-bg-danger",
               "expired": "text-bg-dark", "sandboxed": "text-bg-secondary", "queued": "text-bg-info"}


def when(at: datetime | str | None) -> str:
    if at is None:
        return ""
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


def act_as(request: web.Request, current: SignedIn) -> None:
    """The JSON API's functions act for ``request[ACTOR]``: on a page that is the signed-in user (their scope,
    their name in the audit log), as when the same browser calls the API with its session cookie."""
    user = current.user
    request[ACTOR] = Actor(user.id, user.username, user.role)


async def allowed(request: web.Request, action: str) -> tuple[SignedIn, web.StreamResponse | None]:
    current = require_user(request)
    if not may(current.user.role, action):
        return current, await refuse(request, current, action)
    act_as(request, current)
    return current, None


def page(current: SignedIn, **context: object) -> dict[str, object]:
    return {"user": current.user, "csrf": current.session.csrf, "nav": PATH, "channels": CHANNELS,
            "outcomes": OUTCOMES, "outcome_badges": OUTCOME_BADGES, "when": when, **context}


def bad(request: web.Request, current: SignedIn, message: str, status: int = 400) -> web.Response:
    return render(request, "message.html", status, title="无法显示", message=message, user=current.user,
                  csrf=current.session.csrf, link=PATH, link_label="返回群发消息")


def _keyset(raw: str | None) -> int | None:
    """A keyset bound from the query (None: absent); -1 when malformed."""
    if not raw:
        return None
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 and int(raw) > 0 else -1


@lead_action(access.BATCH_READ)  # the authorisation matrix reads the declared action from the route's handler
async def batches_page(request: web.Request) -> web.StreamResponse:
    current, refused = await allowed(request, access.BATCH_READ)
    if refused is not None:
        return refused
    before = _keyset(request.query.get("before"))
    try:
        query = BatchListQuery(limit=PAGE_SIZE, before=before)
    except ValidationError:
        return bad(request, current, "分页参数无效：before 须为正整数。")
    found = await batch_list(request, query)
    return render(request, "batches.html", **page(
        current, title="群发消息", items=found.items, next_before=found.next_before, first=before is None,
        can_send=may(current.user.role, access.BATCH_SEND), batch_status=BATCH_STATUS))


@lead_action(access.BATCH_READ)
async def batch_page(request: web.Request) -> web.StreamResponse:
    current, refused = await allowed(request, access.BATCH_READ)
    if refused is not None:
        return refused
    raw_id = request.match_info["batch_id"]
    batch_id, after = _keyset(raw_id), _keyset(request.query.get("after"))
    if batch_id is None or batch_id < 0 or (after is not None and after < 0):
        return bad(request, current, "参数无效：批次编号和 after 须为正整数。")
    async with request.app[SESSIONS]() as session:
        batch = await get_batch(session, batch_id)
        if batch is None:
            return bad(request, current, f"群发 #{batch_id} 不存在。", 404)
        segment = await get_segment(session, batch.segment_id)
        creator = await user_by_id(session, batch.created_by_user_id) if batch.created_by_user_id else None
        tasks, counts = await tasks_of(session, batch.id), await counts_of(session, batch.id)
        readable = await owner_ids(session, current.user.id, current.user.role, access.LEAD_READ)
        rows = await recipients_page(session, batch.id, after or 0, PAGE_SIZE + 1, readable=readable)
        names = await member_names(session, [t.member_userid for t in tasks])
    recipients = []
    for row in rows[:PAGE_SIZE]:
        r = row.recipient
        code, label = outcome(r.status, r.reason, row.outbox_status)
        recipients.append({"id": r.id, "lead_id": r.lead_id, "name": row.display_name, "channel": r.channel,
                           "code": code, "label": label, "member": r.member_userid, "errcode": r.errcode,
                           "reason": EXCLUSIONS.get(r.reason, r.reason) if r.reason else ""})
    message = batch.message or {}
    return render(request, "batch.html", **page(
        current, title=f"群发 #{batch.id}", batch=batch, text=str(message.get("text", "")),
        link=message.get("link") if isinstance(message.get("link"), dict) else None,
        segment=segment.name if segment else f"分群 #{batch.segment_id}",
        creator=(creator.display_name or creator.username) if creator else "服务令牌",
        tasks=tasks, counts=counts, recipients=recipients, member_names=names, exclusions=EXCLUSIONS,
        batch_status=BATCH_STATUS, task_status=TASK_STATUS, task_badges=TASK_BADGES, first=after is None,
        just_sent=request.query.get("sent") == "1",
        next_after=recipients[-1]["id"] if len(rows) > PAGE_SIZE else None))


def add_routes(app: web.Application) -> None:
    """After batch_compose's routes: /console/batches/new must be matched before {batch_id}."""
    app.router.add_get(PATH, batches_page)
    app.router.add_get(PATH + "/{batch_id}", batch_page)
