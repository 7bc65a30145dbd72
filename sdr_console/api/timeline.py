"""``GET /api/leads/{lead_id}/timeline?before=&limit=``: a lead's touchpoints, messages in and out, stage
changes and hand-off steps, newest first, one keyset-paginated stream (storage/repos/timeline.py).
``next_before`` is the cursor of the next (older) page, null on the oldest. The 360 renders the same items as a
conversation view.

Item kinds: ``inbound`` (what the prospect wrote: a message touchpoint's text), ``outbound`` (what we sent
them: bot and customer-service messages, template messages, WeCom welcomes), ``internal`` (a WeCom notice to
a colleague about the lead, the CRM delivery), ``stage`` (a lifecycle move), ``handoff`` (a step of the hand-off to
sales: assigned, pushed, reminded, escalated, accepted, returned ...) and ``event`` (any other touchpoint). Texts are
returned verbatim; escaping is the renderer's job.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field

from bot.keys import SESSIONS
from bot.web.errors import ApiError
from leads.access import LEAD_READ
from leads.batches.reasons import outcome
from leads.journeys.labels import step_line
from leads.lifecycle import STAGE_LABELS
from sdr_console.api.auth import authorize_lead, lead_action, require_token
from sdr_console.api.lookup import lead_from_path
from sdr_console.api.models import Timestamp
from sdr_console.api.serialize import iso
from sdr_console.api.spec import QueryModel, ResponseModel, Text, api_spec, parse_query, respond
from storage.models import JourneyStep, OutboxMessage, StageTransition, Touchpoint
from storage.repos.timeline import (
    BATCH,
    HANDOFF,
    JOURNEY,
    OUTBOX,
    STAGE,
    BatchLine,
    Cursor,
    Entry,
    timeline_page,
)

DEFAULT_LIMIT, MAX_LIMIT = 30, 100
Kind = Literal["inbound", "outbound", "internal", "stage", "handoff", "event"]
MAX_TEXT = 2000
EVENT_LABELS = {
    "oa_subscribe": "关注公众号", "oa_unsubscribe": "取消关注公众号", "oa_scan": "扫描二维码", "oa_click": "点击菜单",
    "oa_view": "打开菜单链接", "oa_location": "上报位置", "form_submit": "提交表单",
    "wecom_add_contact": "添加企业微信", "wecom_del_contact": "删除企业微信好友",
    "wecom_del_follow_user": "被客户删除企业微信", "consent_granted": "同意接收消息",
    "consent_revoked": "退订消息", "data_erasure_request": "申请删除个人信息", "request_demo": "申请产品演示",
    "visit_pricing": "查看价格", "content_download": "下载资料", "content_view": "阅读内容",
    "webinar_register": "报名直播", "webinar_attend": "参加直播", "event_attend": "参加活动",
    "email_open": "打开邮件", "email_click": "点击邮件链接", "handoff_returned": "被销售退回",
}
MESSAGE_LABELS = {"text": "文字消息", "image": "图片", "voice": "语音", "video": "视频", "shortvideo": "小视频",
                  "location": "位置", "link": "链接", "file": "文件"}
OUTBOX_LABELS = {"oa.custom_text": "客服消息", "oa.template": "模板消息", "wecom.welcome": "企业微信欢迎语",
                 "wecom.app_text": "企业微信任务通知", "crm.lead_accepted": "推送到 CRM",
                 "wecom.template_card": "线索卡片（企业微信）", "wecom.textcard": "线索卡片（企业微信文本卡片）",
                 "wecom.update_template_card": "更新线索卡片"}
STATUS_LABELS = {"pending": "待发送", "sent": "已发送", "failed": "发送失败", "sandboxed": "沙箱（未发出）",
                 "suppressed": "已拦截（已退订）", "skipped": "未发送（超出48小时）", "fallback": "改用模板消息",
                 "cancelled": "已取消", "merged": "已合并到摘要卡片"}
INTERNAL_METHODS = frozenset({"wecom.app_text", "crm.lead_accepted", "wecom.template_card", "wecom.textcard",
                              "wecom.update_template_card"})
# A hand-off step's line (assignment_events.kind); "assigned" and "returned" are written out below.
HANDOFF_LABELS = {"pushed": "已推送到销售企业微信", "digest": "已合并推送（摘要卡片）", "reminded": "提醒",
                  "escalated": "升级至主管", "accepted": "销售接受", "card_updated": "卡片已更新",
                  "transfer": "企业微信客户已转接"}
RULE_LABELS = {"manual": "手动改派", "sla.reassign": "超时改派", "routing.default_owner": "默认负责人",
               "member_disabled": "成员停用后改派"}


class TimelineQuery(QueryModel):
    before: Annotated[Text | None, Field(max_length=60, description="上一页返回的 next_before")] = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="每页条数")] = DEFAULT_LIMIT


class TimelineItem(ResponseModel):
    id: str
    kind: Kind
    at: Timestamp
    title: str
    text: str | None
    author: str | None
    channel: str | None
    status: str | None


class TimelinePage(ResponseModel):
    lead_id: int
    items: list[TimelineItem]
    next_before: str | None


def _text(value: Any) -> str | None:
    return value[:MAX_TEXT] if isinstance(value, str) and value else None


def _touchpoint(t: Touchpoint) -> dict[str, Any]:
    detail = t.detail or {}
    if t.kind.startswith("oa_message_"):
        kind = t.kind.removeprefix("oa_message_")
        return {"kind": "inbound", "title": MESSAGE_LABELS.get(kind, "消息"), "text": _text(detail.get("content")),
                "author": None, "channel": t.channel, "status": None}
    return {"kind": "event", "title": EVENT_LABELS.get(t.kind, t.kind), "text": _text(detail.get("event_key")),
            "author": None, "channel": t.channel, "status": None}


def _outbox(m: OutboxMessage, author: str | None) -> dict[str, Any]:
    payload = m.payload or {}
    text = _text(payload.get("content")) or _text(payload.get("text"))
    if m.method == "oa.template":
        text = f"模板：{payload.get('template_id', '')}"[:MAX_TEXT]
    return {"kind": "internal" if m.method in INTERNAL_METHODS else "outbound",
            "title": OUTBOX_LABELS.get(m.method, m.method), "text": text, "author": author or "机器人",
            "channel": m.target, "status": STATUS_LABELS.get(m.status, m.status)}


def _stage(s: StageTransition) -> dict[str, Any]:
    title = f"阶段：{STAGE_LABELS.get(s.from_stage, s.from_stage)} → {STAGE_LABELS.get(s.to_stage, s.to_stage)}"
    return {"kind": "stage", "title": title, "text": _text(s.reason), "author": s.actor_id or s.actor,
            "channel": None, "status": None}


def _handoff(entry: Entry) -> dict[str, Any]:
    e, a = entry.row, entry.handoff
    assert a is not None  # storage/repos/timeline.py joins every step to its assignment
    text = None
    if e.kind == "assigned":
        title = f"分配给 {a.assignee}（规则：{RULE_LABELS.get(a.rule, a.rule)}）"
        text = _text(a.reason)
    elif e.kind == "returned":
        title = f"销售退回：{(e.detail or {}).get('reason') or a.return_reason or ''}"
        text = _text(a.return_text)
    else:
        title = HANDOFF_LABELS.get(e.kind, e.kind)
    return {"kind": "handoff", "title": title, "text": text, "author": entry.author or "系统", "channel": None,
            "status": None}


def _batch(line: BatchLine, author: str | None) -> dict[str, Any]:
    """A batch message's line: what the lead got (or why not), with the message as composed."""
    r = line.recipient
    _, label = outcome(r.status, r.reason, line.outbox_status)
    channel = {"wecom": "（企业微信）", "oa": "（公众号模板消息）"}.get(r.channel, "")
    return {"kind": "outbound", "title": f"群发消息 #{r.batch_id}{channel}", "text": _text(line.message.get("text")),
            "author": author or "系统", "channel": r.channel or None, "status": label}


def _journey(step: JourneyStep) -> dict[str, Any]:
    """A nurture journey's step: what it did to or for the lead, and why not when it did nothing."""
    title, status = step_line(step.kind, step.action, step.outcome, step.reason)
    text = step.reason if step.kind == "enrol" else None  # what enrolled it: "form:demo", "returned:预算不足"
    return {"kind": "outbound" if step.outcome == "sent" else "internal",
            "title": f"培育旅程 {step.journey_id}：{title}", "text": _text(text), "author": "培育旅程",
            "channel": step.channel or None, "status": status or None}


def describe(entry: Entry) -> TimelineItem:
    """How one entry reads in the API and on the 360."""
    if entry.source == OUTBOX:
        body = _outbox(entry.row, entry.author)
    elif entry.source == HANDOFF:
        body = _handoff(entry)
    elif entry.source == BATCH:
        body = _batch(entry.row, entry.author)
    elif entry.source == JOURNEY:
        body = _journey(entry.row)
    elif entry.source == STAGE:
        body = _stage(entry.row)
    else:
        body = _touchpoint(entry.row)
    return TimelineItem(id=f"{entry.source}-{entry.id}", at=iso(entry.at) or "", **body)


def parse_cursor(raw: str | None) -> Cursor | None:
    if raw is None:
        return None
    cursor = Cursor.decode(raw)
    if cursor is None:
        raise ApiError(400, "bad_parameter", "参数 before 无效：请使用上一页返回的 next_before")
    return cursor


@require_token
@lead_action(LEAD_READ)
@api_spec("潜客时间线：触点、收发消息、阶段变更与分配处理（新到旧，游标分页）", query=TimelineQuery,
          response=TimelinePage, errors=(400, 404), tags=("leads",))
async def get_timeline(request: web.Request) -> web.Response:
    query = parse_query(request, TimelineQuery)
    before = parse_cursor(query.before)
    async with request.app[SESSIONS]() as session:
        lead = await lead_from_path(request, session, "timeline")
        await authorize_lead(request, session, LEAD_READ, lead)
        page = await timeline_page(session, lead.id, before, query.limit)
        items = [describe(e) for e in page.entries]
    return respond(TimelinePage(lead_id=lead.id, items=items,
                                next_before=page.next.encode() if page.next else None))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/leads/{lead_id}/timeline", get_timeline)
