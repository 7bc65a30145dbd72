"""The SDR hand-off queue: questions the bot had no answer for; claimed and answered from the console.

A reply is an outbox row written in the request's transaction (the outbox sends it later; WeChat is never
called here), and it closes the question: one reply per question, so a double click sends once. What kind
of row it becomes is decided by leads/handoff_reply.py: an OA customer-service text inside the 48-hour
window, a template message on request, a WeCom message task for the member who owns the contact.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.outbound import OutboundConfig
from bot.keys import CONFIG, ENQUEUE, SESSIONS
from bot.web.errors import ApiError
from bot.web.params import body_limit, not_found, path_id
from leads import handoff_reply as hr
from leads.access import HANDOFF_READ, HANDOFF_REPLY
from leads.lead_filters import CHINA  # the console's one clock for people: Beijing time
from sdr_console.api.auth import actor_of, audit, authorize_lead, lead_action, require_token
from sdr_console.api.handoff_items import HandoffItem, HandoffList, QueueQuery, ReplyBody, ReplyResult, item_of
from sdr_console.api.scoping import owner_filter
from sdr_console.api.spec import api_spec, parse_body, parse_query, respond
from storage.models import Handoff, utcnow
from storage.repos import handoffs as repo
from storage.repos.lead_views import find_lead

WHAT = "待回复问题"
MAX_BODY = 16 * 1024  # 1,000 characters escaped as \uXXXX, and the form's other fields


def _outbound(request: web.Request) -> OutboundConfig:
    return request.app[CONFIG].capture.outbound


@require_token
@lead_action(HANDOFF_READ)
@api_spec("待人工回复的问题列表（按调用者可见的线索范围）", query=QueueQuery, response=HandoffList, errors=(400,),
          tags=("handoffs",))
async def handoff_queue(request: web.Request) -> web.Response:
    """Only questions about leads the caller may see: a salesperson's own, a team lead's team's."""
    q = parse_query(request, QueueQuery)
    status = None if q.status == "all" else q.status
    async with request.app[SESSIONS]() as session:
        owners = await owner_filter(request, session, HANDOFF_READ)
        mine = actor_of(request).user_id if q.mine else None
        if q.mine and mine is None:  # a service token claims nothing
            mine = 0
        views = await repo.list_handoffs(session, status, q.limit, q.offset, owner_ids=owners, claimed_by=mine)
        total = await repo.count_handoffs(session, status, owner_ids=owners, claimed_by=mine)
        now, outbound = utcnow(), _outbound(request)
        items = [await item_of(session, v, outbound, now) for v in views]
    return respond(HandoffList(items=items, total=total))


async def _held(request: web.Request, session: AsyncSession) -> Handoff:
    """The question of the URL, locked, when the caller may answer its lead and it is still open."""
    handoff_id = path_id(request, "handoff_id", what=WHAT)
    handoff = await repo.get_handoff(session, handoff_id, lock=True)
    lead = None if handoff is None else await find_lead(session, handoff.lead_id)
    if handoff is None or lead is None:
        raise not_found(WHAT, handoff_id)
    await authorize_lead(request, session, HANDOFF_REPLY, lead)
    if handoff.status != "open":
        raise ApiError(409, "handoff_closed", "该问题已回复并关闭，无需再次回复。")
    if lead.erased_at is not None:
        raise ApiError(409, "lead_erased", f"潜客 #{lead.id} 的个人信息已删除，无法回复")
    user_id = actor_of(request).user_id
    if handoff.claimed_by_user_id is not None and handoff.claimed_by_user_id != user_id:
        holder = await repo.user_label(session, handoff.claimed_by_user_id) or "其他同事"
        raise ApiError(409, "claimed_by_other", f"该问题已由 {holder} 认领，请勿重复处理。")
    return handoff


async def _item(session: AsyncSession, request: web.Request, handoff_id: int) -> HandoffItem:
    view = await repo.handoff_view(session, handoff_id)
    assert view is not None  # the caller holds it, locked
    return await item_of(session, view, _outbound(request), utcnow())


@require_token
@lead_action(HANDOFF_REPLY)
@api_spec("认领一个待回复问题（他人已认领时 409）", response=HandoffItem, errors=(404, 409), tags=("handoffs",))
async def claim_handoff(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session, session.begin():
        handoff = await _held(request, session)
        before = {"claimed_by_user_id": handoff.claimed_by_user_id}
        repo.claim(handoff, actor_of(request).user_id, utcnow())
        await audit(request, "handoff.claim", target_kind="handoff", target_id=handoff.id, before=before,
                    after={"claimed_by_user_id": handoff.claimed_by_user_id, "lead_id": handoff.lead_id},
                    session=session)
        item = await _item(session, request, handoff.id)
    return respond(item)


def _refusal(plan: hr.Plan, reach: hr.Reach, request: web.Request) -> ApiError:
    outbound = _outbound(request)
    if plan.refusal == hr.OUTSIDE_WINDOW:
        window = hr.service_window(reach.oa_last_interaction_at, utcnow(), outbound.customer_service_window_h)
        since = ("该潜客在公众号没有任何互动记录" if window.closes_at is None else
                 f"客服消息窗口已于 {_local(window.closes_at)} 关闭（潜客最后一次互动后 "
                 f"{outbound.customer_service_window_h} 小时）")
        offer = ("请改用模板消息发送。" if outbound.fallback_template_id else
                 "只能发送模板消息，但尚未配置模板（outbound.fallback_template_id），请联系管理员。")
        return ApiError(409, hr.OUTSIDE_WINDOW, f"{since}，微信不再允许发送客服消息。{offer}",
                        template_available=bool(outbound.fallback_template_id),
                        window_closed_at=window.closes_at.isoformat() if window.closes_at else None)
    messages = {
        hr.NO_TEMPLATE: "尚未配置模板消息（outbound.fallback_template_id），无法发送模板消息，请联系管理员。",
        hr.NO_CHANNEL: "该潜客没有可用的公众号或企业微信联系方式，无法从工作台回复。",
        hr.NO_MEMBER: "不知道该企业微信客户由哪位成员负责，无法创建消息任务。",
    }
    return ApiError(409, plan.refusal or "cannot_reply", messages.get(plan.refusal or "", "无法回复"))


def _local(at: datetime) -> str:
    return at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


async def _send(request: web.Request, session: AsyncSession, plan: hr.Plan, reach: hr.Reach, handoff: Handoff,
                text: str) -> tuple[int | None, str]:
    """The outbox row for the plan, and what the console tells the user."""
    cfg = request.app[CONFIG]
    sandbox, outbound, enqueue = cfg.wechat.mode == "sandbox", cfg.capture.outbound, request.app[ENQUEUE]
    key = f"handoff:{handoff.id}:{plan.kind}"
    if plan.kind == hr.OA_TEXT:
        row = await enqueue(session, target="oa", method="oa.custom_text",
                            payload={"openid": reach.openid, "content": text}, idempotency_key=key, sandbox=sandbox,
                            lead_id=handoff.lead_id, outbound=outbound)
        return row, "已通过公众号客服消息回复，消息已进入发送队列。"
    if plan.kind == hr.OA_TEMPLATE:
        assert reach.openid is not None  # plan_reply chose OA for it
        payload = hr.template_payload(reach.openid, text, outbound.fallback_template_id,
                                      outbound.fallback_template_url)
        row = await enqueue(session, target="oa", method="oa.template", payload=payload, idempotency_key=key,
                            sandbox=sandbox, lead_id=handoff.lead_id, outbound=outbound)
        return row, "已通过模板消息回复，消息已进入发送队列。"
    assert reach.wecom_owner is not None and reach.external_userid is not None
    payload = {"sender": reach.wecom_owner, "external_userid": reach.external_userid, "content": text}
    row = await enqueue(session, target="wecom", method="wecom.add_msg_template", payload=payload,
                        idempotency_key=key, sandbox=sandbox, lead_id=handoff.lead_id, outbound=outbound)
    member = await repo.member_label(session, reach.wecom_owner)
    return row, f"已为负责成员 {member} 创建消息任务，需其在企业微信中确认发送。"


@require_token
@lead_action(HANDOFF_REPLY)
@body_limit(MAX_BODY)
@api_spec("回复一个待回复问题：窗口内发公众号客服消息，窗口外可改用模板消息，企业微信客户创建成员消息任务",
          body=ReplyBody, response=ReplyResult, errors=(400, 404, 409), tags=("handoffs",))
async def reply_handoff(request: web.Request) -> web.Response:
    body = await parse_body(request, ReplyBody)
    async with request.app[SESSIONS]() as session, session.begin():
        handoff = await _held(request, session)
        outbound = _outbound(request)
        reach = await repo.reach_of(session, handoff.lead_id)
        plan = hr.plan_reply(reach, body.mode, utcnow(), outbound.customer_service_window_h,
                             outbound.fallback_template_id)
        if plan.kind is None:
            raise _refusal(plan, reach, request)
        row_id, message = await _send(request, session, plan, reach, handoff, body.text)
        actor = actor_of(request)
        await repo.close_with_reply(session, handoff, user_id=actor.user_id, outbox_id=row_id, now=utcnow())
        await audit(request, "handoff.reply", target_kind="handoff", target_id=handoff.id,
                    before={"status": "open"},
                    after={"status": "closed", "lead_id": handoff.lead_id, "channel": plan.channel,
                           "kind": plan.kind, "outbox_id": row_id, "chars": len(body.text)}, session=session)
        status = None if row_id is None else await repo.outbox_status(session, row_id)
        item = await _item(session, request, handoff.id)
    return respond(ReplyResult(handoff=item, kind=plan.kind, outbox_id=row_id,  # type: ignore[arg-type]
                               outbox_status=status, message=message))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/handoffs", handoff_queue)
    app.router.add_post("/api/handoffs/{handoff_id}/claim", claim_handoff)
    app.router.add_post("/api/handoffs/{handoff_id}/reply", reply_handoff)
