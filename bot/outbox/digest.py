"""Merging a member's waiting app messages into one, so WeCom's per-member limits never drop any of them.

WeCom accepts 30 app messages a minute and 1,000 an hour per member and silently drops the rest; the sender's
rate limiter (rate_limit.py) makes rows wait for a slot instead. For methods with a ``digest`` (the hand-off's
cards), waiting is not enough: a burst of MQLs would reach the salesperson as a backlog of stale cards. So
when such a row is told to wait and the same member has other rows of the same digest waiting too, they all
become one new row of ``digest.method`` (a digest card listing the leads), enqueued in the sender's
transaction; each merged row ends "merged" with ``{"merged_into": <digest row id>}`` as its response. Nothing
is lost: the digest lists every merged row's lead, and the digest itself waits for the next slot (a later
burst merges an unsent digest again, with its items).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from bot.outbox.enqueue import enqueue
from bot.outbox.methods import OutboxMethod
from storage.models import OutboxMessage
from storage.repos.handoff_cards import delay_row, mark_merged, waiting_for_member

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)


async def merge_waiting(session: AsyncSession, row: OutboxMessage, methods: dict[str, OutboxMethod],
                        free_at: datetime | None, *, now: datetime, locking: bool) -> int | None:
    """Merge ``row`` (just told to wait for a slot) with its member's other waiting rows of the same digest;
    the digest row's id, or None when there was nothing to merge it with."""
    spec = methods.get(row.method)
    if spec is None or spec.digest is None or not spec.rate_limited_by:
        return None
    member = str(row.payload.get(spec.rate_limited_by, ""))
    if not member:
        return None
    mergeable = [name for name, m in methods.items() if m.digest is not None and m.digest == spec.digest]
    others = await waiting_for_member(session, methods=mergeable, key=spec.rate_limited_by, member_id=member,
                                      exclude_id=row.id, skip_locked=locking)
    if not others:
        return None
    rows = sorted([row, *others], key=lambda r: r.id)
    payload = spec.digest.build([dict(r.payload) for r in rows])
    # The oldest merged row is merged only once: its id makes the digest's key unique.
    digest_id = await enqueue(session, target=row.target, method=spec.digest.method, payload=payload,
                              idempotency_key=f"digest:{rows[0].id}", sandbox=False)
    if digest_id is None:  # cannot happen (see above); never mark rows merged into nothing
        return None
    if free_at is not None:
        await delay_row(session, digest_id, free_at)  # no slot before then: no need to look earlier
    mark_merged(rows, digest_id)
    if spec.digest.merged is not None:
        await spec.digest.merged(session, rows, digest_id, now)
    log.info("outbox rows %s merged into digest row %s (member over the rate limit)", [r.id for r in rows], digest_id)
    return digest_id
