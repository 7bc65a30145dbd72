"""Collecting a batch's WeCom results, on the schedule (job "batch_messages"), never only on a button.

A task is looked at when due (``next_check_at``). Queued: has the outbox made the call? WeCom's answer gives the
``msgid`` (kept on the task) and the ``fail_list`` (customers refused at once); a failed call fails only that
member's task — the others go on. Waiting: ``get_groupmsg_task`` says whether the member has sent; once they
have, ``get_groupmsg_send_result`` (1,000 a page, following ``next_cursor``) gives each customer's status. Until
then reminders.py decides: remind (≤ ``remind_max_per_day`` per 24 h), fall back to one SDR task, or give up.

WeCom's results are read outside any transaction; what was learnt is written in one transaction per task, on
the task read afresh under its lock (a reminder is sent under that lock, so it is counted exactly once).
Errors are logged by type and errcode only (WeCom's messages can quote names).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import WeChatAPIError
from bot.wechat.api import WeComAPI
from bot.wechat.clients import WeChatTransportError
from bot.wechat.tokens import TokenUnavailable
from leads.batches import reasons as r
from leads.batches.reminders import EXPIRE, FALLBACK, REMIND, next_step
from storage.repos.batch_results import (
    DueTask,
    add_sdr_task,
    due_tasks,
    first_lead_of,
    lock_task,
    set_recipient_status,
    set_task_recipients,
)

log = logging.getLogger(__name__)

CHECK_EVERY = timedelta(minutes=10)  # a waiting task: has the member sent?
OUTBOX_RECHECK = timedelta(minutes=1)  # a queued task whose call is not made yet
ERROR_RETRY = timedelta(minutes=5)
TASKS_PER_PASS = 200
MAX_PAGES = 100  # ≤ 100,000 rows: far above one task's 10,000 customers
FAILED_ROWS = frozenset({"failed", "cancelled", "suppressed", "skipped"})
API_ERRORS = (WeChatAPIError, WeChatTransportError, TokenUnavailable, OSError)


def _why(exc: BaseException) -> str:
    return type(exc).__name__ + (f" errcode={exc.errcode}" if isinstance(exc, WeChatAPIError) else "")


async def _member_sent(api: WeComAPI, msgid: str, member: str) -> bool:
    cursor = ""
    for _ in range(MAX_PAGES):
        page = await api.get_groupmsg_task(msgid, cursor=cursor)
        for entry in page.get("task_list") or []:
            if isinstance(entry, dict) and entry.get("userid") == member:
                return entry.get("status") == r.MEMBER_SENT
        cursor = str(page.get("next_cursor") or "")
        if not cursor:
            break
    return False


async def _send_results(api: WeComAPI, msgid: str, member: str) -> dict[str, int]:
    """external_userid -> status, every page."""
    out: dict[str, int] = {}
    cursor = ""
    for _ in range(MAX_PAGES):
        page = await api.get_groupmsg_send_result(msgid, member, cursor=cursor)
        for row in page.get("send_list") or []:
            if isinstance(row, dict) and isinstance(row.get("external_userid"), str):
                out[row["external_userid"]] = row.get("status", -1)
        cursor = str(page.get("next_cursor") or "")
        if not cursor:
            break
    return out


async def _apply_call(session: AsyncSession, due: DueTask, now: datetime) -> bool:
    """A queued task: the outbox's answer. True when it now waits for the member."""
    task = due.task
    if due.outbox_status in FAILED_ROWS:
        errcode = (due.outbox_response or {}).get("errcode")
        task.status, task.errcode = "failed", errcode if isinstance(errcode, int) else None
        task.next_check_at = None
        await set_task_recipients(session, task.id, r.FAILED, now, only=(r.QUEUED,), errcode=task.errcode)
        return False
    if due.outbox_status != "sent":
        task.next_check_at = now + OUTBOX_RECHECK
        return False
    response = due.outbox_response or {}
    task.msgid = str(response.get("msgid") or "") or None
    refused = [str(e) for e in response.get("fail_list") or []]
    await set_recipient_status(session, task.id, refused, r.NOT_FRIEND, now, only=(r.QUEUED,))
    await set_task_recipients(session, task.id, r.WAITING, now, only=(r.QUEUED,))
    task.status, task.next_check_at = "waiting", now
    return task.msgid is not None


async def _apply_results(session: AsyncSession, due: DueTask, results: dict[str, int], now: datetime) -> None:
    task = due.task
    by_status: dict[str, list[str]] = {}
    for euid, code in results.items():
        by_status.setdefault(r.result_status(code, member_done=True), []).append(euid)
    for status, euids in by_status.items():
        await set_recipient_status(session, task.id, euids, status, now, only=(r.WAITING,))
    await set_task_recipients(session, task.id, r.UNSENT, now, only=(r.WAITING,))
    task.status, task.confirmed_at, task.next_check_at = "done", now, None


async def _unconfirmed(session: AsyncSession, api: WeComAPI, due: DueTask, now: datetime, max_per_day: int) -> None:
    task = due.task
    reminders = [datetime.fromtimestamp(float(t), UTC) for t in task.reminders or []]
    step = next_step(task.created_at, reminders, now, max_per_day, fallen_back=task.sdr_task_id is not None)
    if step == REMIND and task.msgid:
        try:
            await api.remind_groupmsg_send(task.msgid)
            task.reminders = [*(task.reminders or []), now.timestamp()]
        except API_ERRORS as exc:
            log.warning("remind_groupmsg_send failed for batch task %s: %s", task.id, _why(exc))
    elif step == FALLBACK:
        lead_id, n = await first_lead_of(session, task.id, (r.WAITING,))
        if lead_id is not None:
            title = f"群发消息未确认：成员 {task.member_userid} 有 {n} 位客户尚未发送（批次 #{due.batch.id}），请跟进"
            task.sdr_task_id = await add_sdr_task(session, lead_id, title, due.batch.created_by_user_id, now)
    elif step == EXPIRE:
        await set_task_recipients(session, task.id, r.EXPIRED, now, only=(r.WAITING,))
        task.status, task.next_check_at = "expired", None
        return
    task.next_check_at = now + CHECK_EVERY


async def _one(sessions: async_sessionmaker, api: WeComAPI, due: DueTask, now: datetime, max_per_day: int) -> None:
    msgid, member = due.task.msgid, due.task.member_userid
    if due.task.status == "queued":
        async with sessions() as session, session.begin():
            fresh = await lock_task(session, due.task.id)
            if fresh is None or fresh.status != "queued":
                return
            if not await _apply_call(session, DueTask(fresh, due.batch, due.outbox_status, due.outbox_response),
                                     now):
                return
            msgid = fresh.msgid
    if not msgid:
        return
    results: dict[str, int] | None = None
    if await _member_sent(api, msgid, member):
        results = await _send_results(api, msgid, member)
    async with sessions() as session, session.begin():
        fresh = await lock_task(session, due.task.id)
        if fresh is None or fresh.status != "waiting":
            return
        current = DueTask(fresh, due.batch, due.outbox_status, due.outbox_response)
        if results is not None:
            await _apply_results(session, current, results, now)
        else:  # the reminder is sent under the task's lock: two passes cannot both spend one
            await _unconfirmed(session, api, current, now, max_per_day)


async def collect(sessions: async_sessionmaker, api: WeComAPI | None, *, now: datetime,
                  max_per_day: int) -> int:
    """One pass over the due tasks; how many were looked at. Without a live WeCom API nothing was sent."""
    if api is None:
        return 0
    async with sessions() as session:
        due = await due_tasks(session, now, TASKS_PER_PASS)
    for item in due:
        try:
            await _one(sessions, api, item, now, max_per_day)
        except API_ERRORS as exc:  # this member's task only: the others go on
            log.warning("batch task %s: WeCom call failed, retried later: %s", item.task.id, _why(exc))
            async with sessions() as session, session.begin():
                fresh = await lock_task(session, item.task.id)
                if fresh is not None and fresh.status in ("queued", "waiting"):
                    fresh.next_check_at = now + ERROR_RETRY
    return len(due)
