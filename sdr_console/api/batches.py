"""Batch messages to a segment: ``POST /api/batches/preview``, ``POST /api/batches``, ``GET /api/batches`` (the
list, newest first, with outcome counts) and ``GET /api/batches/{id}``.

The preview counts the recipients per channel and member and lists the exclusions with their reasons
(unsubscribed, frequency cap, the customer's WeCom receive limit, no WeCom relationship, not an OA follower);
sending queues exactly that (bot/batches/queue.py): one WeCom task per member and ≤ 10,000 customers, OA
template messages for followers without a WeCom relationship; the job "batch_messages" collects the results.
The report pages every recipient's outcome. Bad input is a 4xx that writes nothing; no personal data is logged.
The console's pages (sdr_console/pages/batches.py) call ``preview_of``, ``send`` and ``batch_list`` too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.batches.queue import preview_batch, queue_batch
from bot.batches.rules import audience_rules
from bot.keys import CONFIG, CONVERSATION, ENQUEUE, SESSIONS
from bot.web.errors import ApiError
from bot.web.params import not_found, path_id
from leads.access import BATCH_READ, BATCH_SEND, LEAD_READ
from leads.batches.chunks import MAX_PER_TASK
from leads.batches.message import BadMessage, Message, check_link_url, check_miniprogram, check_text
from leads.batches.reasons import EXCLUSIONS, outcome
from leads.batches.render import render
from leads.content import ContentItem
from sdr_console.api.auth import actor_of, audit, requires
from sdr_console.api.batch_models import (
    BatchCreated,
    BatchIn,
    BatchList,
    BatchListItem,
    BatchListQuery,
    BatchOut,
    BatchPreview,
    BatchQuery,
    Exclusion,
    MemberCount,
    RecipientOut,
    TaskOut,
)
from sdr_console.api.scoping import owner_filter
from sdr_console.api.segments import segment_scope
from sdr_console.api.serialize import iso
from sdr_console.api.spec import api_spec, parse_body, parse_query, respond
from storage.models import BatchTask, utcnow
from storage.repos.batch_list import batch_counts, list_batches
from storage.repos.batch_reports import counts_of, get_batch, recipients_page, tasks_of
from storage.repos.users import user_by_id

WHAT = "群发"


def _compose(request: web.Request, body: BatchIn) -> tuple[Message, ContentItem | None]:
    """The message checked (400 with a code), and its content item."""
    try:
        text = check_text(body.text)
        if body.content_id is not None and body.miniprogram is not None:
            raise BadMessage("bad_link", "链接与小程序卡片只能选一个")
        item = None
        if body.content_id is not None:
            item = request.app[CONVERSATION].content.get(body.content_id)
            if item is None:
                raise BadMessage("bad_link", f"内容库中没有 {body.content_id[:40]!r}")
            check_link_url(item.url)
        mp = body.miniprogram
        card = check_miniprogram(mp.title, mp.appid, mp.page, mp.pic_media_id) if mp is not None else None
    except BadMessage as exc:
        raise ApiError(400, exc.code, exc.message) from exc
    return Message(text, item.id if item else None, card), item


def _task_out(t: BatchTask) -> TaskOut:
    return TaskOut(id=t.id, member=t.member_userid, chunk=t.chunk, recipients=t.recipients, status=t.status,
                   msgid=t.msgid, errcode=t.errcode, reminders=len(t.reminders or []), sdr_task_id=t.sdr_task_id)


async def preview_of(request: web.Request, body: BatchIn) -> BatchPreview:
    """The preview for the request's actor (400 / 404 as ApiError); writes nothing."""
    message, _ = _compose(request, body)
    cfg, now = request.app[CONFIG], utcnow()
    rules = audience_rules(cfg, now, tuple(body.channels))
    async with request.app[SESSIONS]() as session:
        segment, f, owners = await segment_scope(request, session, body.segment_id)
        found = await preview_batch(session, f, owners, rules)
    members = [MemberCount(member=m, customers=n, tasks=-(-n // MAX_PER_TASK))
               for m, n in sorted(found.by_member.items())]
    exclusions = [Exclusion(reason=reason, label=EXCLUSIONS.get(reason, reason), count=n,
                            sample=[{"lead_id": i, "display_name": name} for i, name in found.samples.get(reason, [])])
                  for reason, n in sorted(found.by_reason.items(), key=lambda x: -x[1])]
    return BatchPreview(
        segment_id=segment.id, total=found.total, recipients=sum(found.by_channel.values()),
        by_channel=found.by_channel, members=members, exclusions=exclusions,
        text_sample=render(message.text, {}, per_customer=False),
        receive_limit={"period": cfg.batch.customer_limit_period, "limit": rules.receive_limit,
                       "period_start": iso(rules.period_start) or ""})


@requires(BATCH_SEND)
@api_spec("群发预览：收件人数、按成员的任务、排除的潜客及原因", body=BatchIn, response=BatchPreview,
          errors=(400, 404), tags=("batches",))
async def post_preview(request: web.Request) -> web.Response:
    return respond(await preview_of(request, await parse_body(request, BatchIn)))


@requires(BATCH_SEND)
@api_spec("群发给分群：每位成员一个企业微信群发任务（每个最多 10,000 位客户），公众号粉丝收模板消息",
          body=BatchIn, response=BatchCreated, status=202, errors=(400, 404), tags=("batches",))
async def post_batch(request: web.Request) -> web.Response:
    return respond(await send(request, await parse_body(request, BatchIn)), status=202)


async def send(request: web.Request, body: BatchIn) -> BatchCreated:
    """Queues the batch for the request's actor, audited in the same transaction (400 / 404 as ApiError)."""
    message, item = _compose(request, body)
    cfg, now = request.app[CONFIG], utcnow()
    sandbox = cfg.wechat.mode == "sandbox"
    actor = actor_of(request)
    async with request.app[SESSIONS]() as session, session.begin():
        segment, f, owners = await segment_scope(request, session, body.segment_id)
        queued = await queue_batch(session, request.app[ENQUEUE], segment_id=segment.id, user_id=actor.user_id,
                                   message=message, item=item, f=f, owners=owners,
                                   rules=audience_rules(cfg, now, tuple(body.channels)), sandbox=sandbox, at=now)
        await audit(request, "batch.send", target_kind="batch", target_id=queued.id,
                    after={"segment_id": segment.id, "channels": queued.counts["channel"],
                           "excluded": queued.counts["reason"], "tasks": len(queued.tasks), "sandbox": sandbox},
                    session=session)
        tasks = await tasks_of(session, queued.id)
        return BatchCreated(id=queued.id, sandbox=sandbox, counts=queued.counts, tasks=[_task_out(t) for t in tasks])


async def batch_list(request: web.Request, query: BatchListQuery) -> BatchList:
    """The batches the request's actor may see: the rule table's scope of ``batch.read`` on their creators
    (everyone's, or those of the actor's teams' members), newest first."""
    async with request.app[SESSIONS]() as session:
        creators = await owner_filter(request, session, BATCH_READ)
        rows = await list_batches(session, creators, query.before, query.limit + 1)
        counts = await batch_counts(session, [r.batch.id for r in rows[:query.limit]])
    items = []
    for r in rows[:query.limit]:
        b, n = r.batch, counts[r.batch.id]
        items.append(BatchListItem(
            id=b.id, segment_id=b.segment_id, segment=r.segment_name, created_by=r.creator,
            created_by_name=r.creator_name, created_at=iso(b.created_at), status=b.status, sandbox=b.sandbox,
            text=str((b.message or {}).get("text", "")), total=n.total, channels=n.channels, outcomes=n.outcomes))
    return BatchList(items=items, next_before=items[-1].id if len(rows) > query.limit else None)


@requires(BATCH_READ)
@api_spec("群发列表（最新在前；分页：before、limit），每批的渠道人数和结果人数", query=BatchListQuery,
          response=BatchList, tags=("batches",))
async def get_batches(request: web.Request) -> web.Response:
    return respond(await batch_list(request, parse_query(request, BatchListQuery)))


async def _creator(session: AsyncSession, user_id: int | None) -> str | None:
    user = await user_by_id(session, user_id) if user_id is not None else None
    return user.username if user is not None else None


@requires(BATCH_READ)
@api_spec("群发结果：每位收件人的结果（分页：after、limit）", query=BatchQuery, response=BatchOut, errors=(404,),
          tags=("batches",))
async def get_batch_view(request: web.Request) -> web.Response:
    batch_id = path_id(request, "batch_id", what=WHAT)
    query = parse_query(request, BatchQuery)
    async with request.app[SESSIONS]() as session:
        batch = await get_batch(session, batch_id)
        if batch is None:
            raise not_found(WHAT, batch_id)
        readable = await owner_filter(request, session, LEAD_READ)  # names of other teams' leads stay hidden
        rows = await recipients_page(session, batch.id, query.after, query.limit + 1, readable=readable)
        tasks, counts = await tasks_of(session, batch.id), await counts_of(session, batch.id)
        creator = await _creator(session, batch.created_by_user_id)
    recipients = []
    for row in rows[:query.limit]:
        r = row.recipient
        code, label = outcome(r.status, r.reason, row.outbox_status)
        recipients.append(RecipientOut(id=r.id, lead_id=r.lead_id, display_name=row.display_name, channel=r.channel,
                                       code=code, message=label, reason=r.reason or None, member=r.member_userid,
                                       errcode=r.errcode))
    message: dict[str, Any] = batch.message or {}
    created: datetime = batch.created_at
    return respond(BatchOut(
        id=batch.id, segment_id=batch.segment_id, created_by=creator, created_at=iso(created), status=batch.status,
        sandbox=batch.sandbox, text=str(message.get("text", "")), counts=counts, tasks=[_task_out(t) for t in tasks],
        recipients=recipients, next_after=recipients[-1].id if len(rows) > query.limit else None))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/batches/preview", post_preview)
    app.router.add_post("/api/batches", post_batch)
    app.router.add_get("/api/batches", get_batches)
    app.router.add_get("/api/batches/{batch_id}", get_batch_view)
