"""Queueing a batch message, in the caller's transaction: the whole audience into batch_recipients (one INSERT
... SELECT), then one WeCom task per member and ≤ 10,000 customers, each an outbox row "wecom.groupmsg_task"
sent by the outbox (live) or kept (sandbox). OA followers without a WeCom relationship are left "queued" for
the job's fan-out (fanout.py): one template message per recipient, which the request need not wait for.

No network here (the console imports it); ``enqueue`` comes in as a parameter, as in bot/handoff/transfer.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leads.batches.chunks import chunk_by_member
from leads.batches.message import Message
from leads.batches.render import render
from leads.content import ContentItem
from leads.lead_filters import LeadFilter
from storage.repos.batch_audience import AudienceRules, Preview, audience, preview
from storage.repos.batch_queue import add_batch, add_task, insert_recipients, member_names, set_counts, wecom_recipients
from storage.repos.batch_reports import counts_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

Enqueue = Callable[..., Awaitable[int | None]]  # bot.outbox.enqueue.enqueue
METHOD = "wecom.groupmsg_task"


@dataclass(frozen=True, slots=True)
class QueuedTask:
    id: int
    member: str
    chunk: int
    recipients: int
    outbox_id: int | None


@dataclass(frozen=True, slots=True)
class QueuedBatch:
    id: int
    counts: dict[str, dict[str, int]]
    tasks: list[QueuedTask]


def wecom_attachments(message: Message, item: ContentItem | None) -> list[dict[str, Any]]:
    """WeCom sends one message to all of a task's customers, so the link is the content's own URL (OA template
    messages carry a link tracked per recipient: fanout.py)."""
    if message.miniprogram is not None:
        mp = message.miniprogram
        return [{"msgtype": "miniprogram", "miniprogram": {"title": mp.title, "pic_media_id": mp.pic_media_id,
                                                          "appid": mp.appid, "page": mp.page}}]
    if item is not None:
        link: dict[str, Any] = {"title": item.title[:128], "url": item.url}
        if item.summary:
            link["desc"] = item.summary[:512]
        if item.cover:
            link["picurl"] = item.cover
        return [{"msgtype": "link", "link": link}]
    return []


async def preview_batch(session: AsyncSession, f: LeadFilter, owners: list[int] | None,
                        rules: AudienceRules) -> Preview:
    return await preview(session, await audience(session, f, owners, rules))


async def queue_batch(session: AsyncSession, enqueue: Enqueue, *, segment_id: int, user_id: int | None,
                      message: Message, item: ContentItem | None, f: LeadFilter, owners: list[int] | None,
                      rules: AudienceRules, sandbox: bool, at: datetime) -> QueuedBatch:
    stored = message.as_json() | ({"link": {"title": item.title, "url": item.url}} if item is not None else {})
    batch = await add_batch(session, segment_id, user_id, stored, sandbox, at)
    await insert_recipients(session, batch.id, await audience(session, f, owners, rules), sandbox=sandbox, at=at)
    rows = await wecom_recipients(session, batch.id)
    names = await member_names(session, [m for _, m, _ in rows])
    attachments = wecom_attachments(message, item)
    tasks: list[QueuedTask] = []
    for chunk in chunk_by_member((member, (rid, euid)) for rid, member, euid in rows):
        ids = [rid for rid, _ in chunk.items]
        task = await add_task(session, batch.id, chunk.member, chunk.n, ids,
                              status="sandboxed" if sandbox else "queued", at=at)
        payload: dict[str, Any] = {
            "sender": chunk.member, "external_userid": [euid for _, euid in chunk.items],
            "content": render(message.text, {"sender": names.get(chunk.member)}, per_customer=False),
            "batch_id": batch.id, "task_id": task.id}
        if attachments:
            payload["attachments"] = attachments
        task.outbox_id = await enqueue(session, target="wecom", method=METHOD, payload=payload,
                                       idempotency_key=f"batch:{batch.id}:task:{task.id}", sandbox=sandbox)
        tasks.append(QueuedTask(task.id, chunk.member, chunk.n, len(ids), task.outbox_id))
    counts = await counts_of(session, batch.id)
    await set_counts(session, batch.id, counts)
    return QueuedBatch(batch.id, counts, tasks)
