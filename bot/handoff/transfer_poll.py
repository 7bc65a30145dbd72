"""Polling WeCom's ``transfer_result`` until every customer of every sent transfer batch has a final outcome.

Run by the job "customer_transfer_poll" (one process of the cluster). A pass reads the recent transfers (a
short read), asks WeCom once per (handover, takeover) pair with a batch due — outside any transaction — and
then writes what it learnt in one transaction: each customer's status on its batch row, and on 接替完毕 the
lead's owner moved to the colleague (with a "transfer" event on the lead's latest assignment). A batch is
due right after it was sent, then every ``RECHECK``; with nothing waiting a pass is one indexed query.
A customer WeCom still has no final answer for after ``GIVE_UP`` is recorded as 无接替记录 (status 5).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.errors import WeChatAPIError
from bot.wechat.clients import WeChatTransportError
from bot.wechat.tokens import TokenUnavailable
from leads.customer_transfer import FINAL, NO_RECORD, TAKEN_OVER, latest_results, started
from storage.models import utcnow
from storage.repos.transfers import BatchRow, TransferRecord, batch_rows, move_owner, save_poll, transfers_since

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.wechat.api import WeComAPI

log = logging.getLogger(__name__)

POLL_EVERY_S = 300.0  # the job's interval
RECHECK = timedelta(hours=1)  # WeCom takes over after 24 h; a refusal may come any time before
GIVE_UP = timedelta(days=7)
MAX_PAGES = 100  # ≤ 1,000 entries a page
Pair = tuple[str, str, bool]  # handover_userid, takeover_userid, resigned


def _pair(batch: BatchRow) -> Pair:
    p = batch.payload
    return str(p["handover_userid"]), str(p["takeover_userid"]), bool(p.get("resigned"))


def _due(batch: BatchRow, now: datetime) -> bool:
    if batch.status != "sent":
        return False
    poll = (batch.response or {}).get("poll") or {}
    return not poll.get("done") and float(poll.get("next_at", 0)) <= now.timestamp()


async def _fetch(api: WeComAPI, pair: Pair) -> dict[str, dict[str, int]]:
    handover, takeover, resigned = pair
    customers: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(MAX_PAGES):
        page = await api.transfer_result(handover, takeover, cursor=cursor, resigned=resigned)
        customers.extend(c for c in page.get("customer") or [] if isinstance(c, dict))
        cursor = str(page.get("next_cursor") or "")
        if not cursor:
            break
    return latest_results(customers)


async def poll_transfers(sessions: async_sessionmaker, api: WeComAPI | None, *, now: datetime | None = None) -> int:
    """One pass; how many batch rows it updated. Without a live WeCom API (sandbox) nothing was sent."""
    if api is None:
        return 0
    now = now or utcnow()
    async with sessions() as session:
        transfers = await transfers_since(session, now - GIVE_UP - timedelta(days=1))
    due = [(t, b) for t in transfers for b in t.batches if _due(b, now)]
    if not due:
        return 0
    results: dict[Pair, dict[str, dict[str, int]]] = {}
    for pair in {_pair(b) for _, b in due}:
        try:
            results[pair] = await _fetch(api, pair)
        except (WeChatAPIError, WeChatTransportError, TokenUnavailable, OSError) as exc:
            # The type and errcode only: an exception's text can quote WeCom's message (people's names).
            log.warning("transfer_result failed, retried on the next pass: %s%s", type(exc).__name__,
                        f" errcode={exc.errcode}" if isinstance(exc, WeChatAPIError) else "")
    updated = 0
    async with sessions() as session, session.begin():
        for transfer, stale in due:
            if _pair(stale) not in results:
                continue
            fresh = await batch_rows(session, [stale.id], lock=True)
            if fresh and _due(fresh[0], now):
                await _apply(session, transfer, fresh[0], results[_pair(stale)], now)
                updated += 1
    return updated


async def _apply(session: AsyncSession, transfer: TransferRecord, batch: BatchRow,
                 results: dict[str, dict[str, int]], now: datetime) -> None:
    response = dict(batch.response or {})
    answered = {str(c.get("external_userid")): c.get("errcode", 0) for c in response.get("customer") or []}
    takeover: dict[str, Any] = dict(response.get("takeover") or {})
    moved: list[int] = list(response.get("moved") or [])
    expired = batch.sent_at is not None and now - batch.sent_at > GIVE_UP
    done = True
    p = batch.payload
    for lead_id, euid in zip(p.get("lead_ids", []), p.get("external_userid", []), strict=False):
        errcode = answered.get(euid, 0)
        if not isinstance(errcode, int) or not started(errcode, batch.attempts):
            continue  # WeCom refused this one at once: final already
        if takeover.get(euid, {}).get("status") in FINAL:
            continue
        result = results.get(euid)
        if result is None or result["status"] not in FINAL:
            if not expired:
                done = False
                if result is not None:
                    takeover[euid] = result
                continue
            result = {"status": NO_RECORD, "takeover_time": 0}
        takeover[euid] = result
        if result["status"] == TAKEN_OVER:
            detail = {"transfer_id": transfer.id, "from_user_id": p.get("from_user_id"),
                      "to_user_id": p.get("to_user_id"), "status": TAKEN_OVER}
            if await move_owner(session, int(lead_id), int(p["to_user_id"]), str(p["takeover_userid"]),
                                at=now, detail=detail) is not None:
                moved.append(int(lead_id))
    response.update(takeover=takeover, moved=moved,
                    poll={"next_at": (now + RECHECK).timestamp(), "done": done, "checked_at": now.timestamp()})
    await save_poll(session, batch.id, response)
