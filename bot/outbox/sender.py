"""The outbox: every outbound WeChat / WeCom send is first a row, then (live mode only) a call.

``enqueue`` writes the row inside the caller's transaction, so a send exists exactly when the business
change that caused it was committed, and wakes this process's sender right after that commit (see
storage/outbox_wake.py). In live mode ``OutboxSender`` sends "pending" rows: "sent" on success, retried with
exponential backoff on failure (45009, the quota error, waits at least ``quota_backoff_s``), "failed" after
``max_attempts`` or on an error no retry can fix. Before sending, the rules of bot/outbox/rules.py may end a
row as "suppressed" (marketing to a lead who revoked consent), "skipped" or "fallback" (the OA's 48-hour
customer-service window is closed), and WeCom app messages wait for a per-member rate-limit slot
(bot/outbox/rate_limit.py) instead of being dropped by WeCom.

In sandbox mode nothing leaves: rows are "sandboxed", or already "suppressed" / "skipped" / "fallback" when
the rules can decide at enqueue time (they see the caller's session, so record the user's interaction
before enqueueing the answer to it). ``GET /api/outbox`` lists the rows (sdr_console/api/outbox.py).

Delivery is at least once: a crash (or an HTTP timeout) after WeChat acted but before the row is marked
"sent" sends it again, since WeChat's send APIs take no idempotency key (a reused welcome code answers
41051, which counts as sent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from bot.config.outbound import OutboundConfig
from bot.outbox.attempt import Attempter, Backoff, Outcome
from bot.outbox.digest import merge_waiting
from bot.outbox.enqueue import enqueue
from bot.outbox.methods import METHODS, ApiClients, OutboxMethod
from bot.outbox.rate_limit import MemberRateLimiter
from bot.outbox.rules import LeadFacts, needs_lead_facts
from storage.db import session_factory
from storage.models import OutboxMessage, utcnow
from storage.outbox_wake import register_sender
from storage.repos.outbox import due_messages, get_message, load_lead_facts, record_outcome
from storage.repos.webhooks import record_attempt

if TYPE_CHECKING:  # sessions come from storage.db.session_factory and go to storage/repos/outbox.py
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

log = logging.getLogger(__name__)

__all__ = ["OutboxSender", "enqueue"]


class OutboxSender:
    """Sends pending rows; several processes may run one each on PostgreSQL, one per SQLite database.

    ``outbound``: the window, fallback template and per-member limits. ``redis`` (+ ``key_prefix``): the
    shared per-member rate limiter for WeCom app messages; without it they are sent unthrottled.
    """

    def __init__(self, engine: AsyncEngine, apis: ApiClients, *, methods: dict[str, OutboxMethod] | None = None,
                 max_attempts: int = 8, backoff_base_s: float = 5.0, backoff_max_s: float = 3600.0,
                 quota_backoff_s: float = 60.0, jitter: float = 0.1, concurrency: int = 4,
                 poll_interval_s: float = 1.0, clock: Callable[[], datetime] = utcnow,
                 outbound: OutboundConfig | None = None, redis: aioredis.Redis | None = None,
                 key_prefix: str = "") -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self._locking = engine.dialect.name == "postgresql"
        self._methods = methods if methods is not None else METHODS
        self._targets = sorted(apis.targets)
        self.outbound = outbound or OutboundConfig()
        limiter = None
        if redis is not None:
            limits = ((self.outbound.wecom_member_per_minute, 60.0), (self.outbound.wecom_member_per_hour, 3600.0))
            # WeCom counts per app and member.
            agent = apis.wecom.agent_id if apis.wecom is not None else 0
            limiter = MemberRateLimiter(redis, f"{key_prefix}outbox:wecom_member:{agent}:", limits)
        backoff = Backoff(max_attempts, backoff_base_s, backoff_max_s, quota_backoff_s, jitter)
        self._attempter = Attempter(apis, self._methods, self.outbound, limiter, backoff)
        self._concurrency = concurrency
        self._poll = poll_interval_s
        self._clock = clock
        self._inflight: set[int] = set()  # SQLite only: rows this process is sending right now
        self._wake = asyncio.Event()

    @property
    def max_attempts(self) -> int:
        return self._attempter.backoff.max_attempts

    @max_attempts.setter
    def max_attempts(self, value: int) -> None:
        self._attempter.backoff.max_attempts = value

    def wake(self) -> None:
        """Look for work now (called after commits that enqueued rows; see storage/outbox_wake.py)."""
        self._wake.set()

    async def run(self) -> None:
        """Send until cancelled."""
        unregister = register_sender(self._engine, self.wake)
        try:
            while True:
                self._wake.clear()
                limit = 100
                try:
                    done = await self.run_once(limit)
                except Exception:
                    log.exception("outbox pass failed")
                    done = 0
                if done < limit:
                    try:
                        await asyncio.wait_for(self._wake.wait(), self._poll)
                    except TimeoutError:
                        pass
        finally:
            unregister()

    async def run_once(self, limit: int = 100) -> int:
        """Attempt up to ``limit`` due rows; how many were handled (sent, decided, failed or deferred)."""
        if not self._targets:
            return 0
        budget, done = limit, 0

        async def worker(lane: bool | None) -> None:
            nonlocal budget, done
            while budget > 0:
                budget -= 1
                if not await self._process_next(lane):
                    return
                done += 1

        # Rate-limited methods go through one sequential lane: a member's messages take their slots, and
        # so leave, in the order they were enqueued. Everything else is sent ``concurrency`` at a time.
        lanes: list[bool | None] = [None] * self._concurrency
        if self._attempter.limiter is not None:
            lanes = [False] * self._concurrency + [True]
        results = await asyncio.gather(*(worker(lane) for lane in lanes), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return done

    async def _due(self, session: AsyncSession, limit: int, lane: bool | None = None, *,
                   skip_locked: bool = False) -> list[OutboxMessage]:
        # lane True: only rate-limited methods; False: only the others; None: all of them.
        limited = None if lane is None else {n for n, m in self._methods.items() if m.rate_limited_by}
        return await due_messages(session, targets=self._targets, now=self._clock(), limit=limit, methods=limited,
                                  exclude_methods=lane is False, skip_locked=skip_locked)

    async def _process_next(self, lane: bool | None = None) -> bool:
        if self._locking:
            # The row lock is held while sending: a crashed sender's rows unlock at once, and no
            # second process can pick a row up between our claim and our update.
            async with self._sessions() as session, session.begin():
                claimed = await self._due(session, 1, lane, skip_locked=True)
                if not claimed:
                    return False
                row = claimed[0]
                facts = await self._facts(session, row)
                await self._apply(session, row, await self._attempter.attempt(row, facts, self._clock()))
            return True
        # SQLite has one writer and one pooled connection: never hold it across an HTTP call.
        async with self._sessions() as session, session.begin():
            rows = await self._due(session, self._concurrency + 2, lane)
            row = next((r for r in rows if r.id not in self._inflight), None)
            if row is None:
                return False
            self._inflight.add(row.id)  # no await since the pick: no other worker can take it
            try:
                facts = await self._facts(session, row)
            except BaseException:
                self._inflight.discard(row.id)
                raise
        try:
            outcome = await self._attempter.attempt(row, facts, self._clock())
            async with self._sessions() as session, session.begin():
                fresh = await get_message(session, row.id)
                if fresh is not None:
                    await self._apply(session, fresh, outcome)
        finally:
            self._inflight.discard(row.id)
        return True

    async def _facts(self, session: AsyncSession, row: OutboxMessage) -> LeadFacts | None:
        # Read at send time, in the sending transaction: consent may have been revoked since the enqueue.
        if row.lead_id is None or not needs_lead_facts(self._methods.get(row.method), row.payload):
            return None
        return await load_lead_facts(session, row.lead_id)

    async def _apply(self, session: AsyncSession, row: OutboxMessage, outcome: Outcome) -> None:
        spec = self._methods.get(row.method)
        if spec is not None and spec.log_attempts and outcome.counts:
            # The delivery log (webhook_attempts): every try's answer, not only the row's last one.
            answer = outcome.response or {}
            await record_attempt(session, row.id, at=self._clock(), status_code=answer.get("status_code"),
                                 error=outcome.last_error, duration_ms=int(answer.get("duration_ms") or 0))
        record_outcome(row, counts=outcome.counts, status=outcome.status, response=outcome.response,
                       last_error=outcome.last_error, next_attempt_at=outcome.next_attempt_at,
                       sent_at=outcome.sent_at)
        if outcome.follow_up is not None:
            # In the same transaction as the original's new status: the fallback exists iff it is recorded.
            f = outcome.follow_up
            await enqueue(session, target=f.target, method=f.method, payload=f.payload,
                          idempotency_key=f.idempotency_key, sandbox=False, lead_id=row.lead_id)
        if spec is not None and spec.digest is not None and outcome.status == "pending" and not outcome.counts:
            # Pending without an attempt is a wait for a rate-limit slot: merge the member's waiting cards.
            await merge_waiting(session, row, self._methods, outcome.next_attempt_at, now=self._clock(),
                                locking=self._locking)
