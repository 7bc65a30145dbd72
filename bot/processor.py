"""After-ack processing of inbox rows: at-least-once delivery, exactly-once effects.

Each event is handled in one transaction that first locks its inbox row (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several processes never handle the same row) and re-checks that it is still pending; the
handler's writes and the row's ``done`` mark commit together. A process killed mid-way leaves the row
pending, and the periodic sweep (here or in any other process) picks it up again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import InboxConfig
from bot.context import HandlerContext, Services
from bot.dispatch import Router
from bot.inbound import InboundEvent, build_event
from bot.security import parse_xml
from storage.leads_repo import LeadRepository
from storage.models import InboxEvent, utcnow

log = logging.getLogger(__name__)
_table = InboxEvent.__table__
DONE, SKIPPED, RETRY, WAIT, FAILED = "done", "skipped", "retry", "wait", "failed"
# Conflicts and waits for a person's earlier event resolve within moments; past this the sweep takes over.
_SOON_RETRIES = 40


class InboxProcessor:
    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker, router: Router, services: Services,
                 cfg: InboxConfig, app_ids: dict[str, str], clock: Callable[[], datetime] = utcnow,
                 wait_for_ingest: Callable[[float], Awaitable[None]] | None = None) -> None:
        self._engine = engine
        self._sessions = sessions
        self._router = router
        self._services = services
        self._cfg = cfg
        self._app_ids = app_ids
        self._clock = clock
        self._wait_for_ingest = wait_for_ingest
        # Bounded: under a burst the overflow simply waits in the database for the sweep.
        self._queue: asyncio.Queue[int] = asyncio.Queue(maxsize=10_000)
        self._queued: set[int] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False
        self.processed = 0

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"inbox-worker-{i}")
                         for i in range(self._cfg.workers)]

    async def stop(self, drain_s: float = 10.0) -> None:
        """Finish the events being handled; what is still queued stays pending for the next start."""
        self._stopping = True
        for _ in self._workers:
            if not self._queue.full():
                self._queue.put_nowait(-1)
        if self._workers:
            _, pending = await asyncio.wait(self._workers, timeout=drain_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._workers = []
        log.info("inbox processor stopped: %d events handled by this process", self.processed)

    def notify(self, inbox_ids: list[int]) -> None:
        if not self._workers:
            return
        for inbox_id in inbox_ids:
            if inbox_id in self._queued or self._queue.full():
                continue
            self._queued.add(inbox_id)
            self._queue.put_nowait(inbox_id)

    async def sweep(self, grace_s: float | None = None) -> int:
        """Queue pending rows nobody is handling: left by a crash, a full queue or a failed attempt."""
        if not self._workers:
            return 0
        now = self._clock()
        cutoff = now - timedelta(seconds=self._cfg.sweep_grace_s if grace_s is None else grace_s)
        stmt = (select(_table.c.id)
                .where(_table.c.status == "pending", _table.c.received_at <= cutoff,
                       (_table.c.next_attempt_at.is_(None)) | (_table.c.next_attempt_at <= now))
                .order_by(_table.c.id).limit(2_000))
        async with self._engine.connect() as conn:
            ids = list((await conn.execute(stmt)).scalars())
        self.notify(ids)
        return len(ids)

    async def _work(self) -> None:
        while True:
            inbox_id = await self._queue.get()
            if inbox_id < 0 or self._stopping:
                return
            await self._give_way()
            try:
                for _ in range(_SOON_RETRIES):
                    if await self.process(inbox_id) not in (RETRY, WAIT):
                        break
                    await asyncio.sleep(0.05)
            except Exception:  # noqa: BLE001 - one bad event must not stop the worker
                log.exception("inbox row %s: recording the failure failed; the sweep will retry", inbox_id)
            finally:
                self._queued.discard(inbox_id)

    async def _give_way(self) -> None:
        """Answers first: while callbacks wait for their commit, wait (bounded, so work is never starved)."""
        if self._wait_for_ingest is not None and self._cfg.defer_max_ms:
            await self._wait_for_ingest(self._cfg.defer_max_ms / 1000)

    async def process(self, inbox_id: int) -> str:
        """Handle one inbox row if it is still pending and nobody else holds it."""
        try:
            async with self._sessions() as session, session.begin():
                row = (await session.execute(
                    select(InboxEvent).where(InboxEvent.id == inbox_id, InboxEvent.status == "pending")
                    .with_for_update(skip_locked=True)
                )).scalar_one_or_none()
                if row is None:
                    return SKIPPED
                if await self._has_earlier_pending(session, row):
                    return WAIT  # the same person's earlier event goes first, wherever it is handled
                event = self._rebuild(row)
                leads = LeadRepository(session, self._services.scoring, self._clock)
                ctx = HandlerContext(event=event, inbox_id=row.id, session=session, leads=leads,
                                     services=self._services, now=self._clock())
                handler = self._router.match(event)
                if handler is not None:
                    await handler(ctx)
                row.status = "done"
                row.attempts += 1
                row.processed_at = self._clock()
                row.last_error = None
        except (IntegrityError, OperationalError) as exc:
            # A concurrent event created the same identity, or a lock/serialisation conflict: retry soon.
            await self._record_failure(inbox_id, exc, retry_in=0.2)
            return RETRY
        except Exception as exc:  # noqa: BLE001 - recorded on the row, retried with backoff
            log.exception("inbox row %s failed", inbox_id)
            await self._record_failure(inbox_id, exc, retry_in=None)
            return FAILED
        self.processed += 1
        return DONE

    @staticmethod
    async def _has_earlier_pending(session: AsyncSession, row: InboxEvent) -> bool:
        earlier = await session.execute(
            select(InboxEvent.id).where(InboxEvent.source == row.source, InboxEvent.from_user == row.from_user,
                                        InboxEvent.status == "pending", InboxEvent.id < row.id).limit(1))
        return earlier.first() is not None

    def _rebuild(self, row: InboxEvent) -> InboundEvent:
        return build_event(row.source, self._app_ids[row.source], parse_xml(row.payload.encode("utf-8")))

    async def _record_failure(self, inbox_id: int, exc: BaseException, retry_in: float | None) -> None:
        async with self._engine.begin() as conn:
            attempts = (await conn.execute(
                select(_table.c.attempts).where(_table.c.id == inbox_id))).scalar_one() + 1
            delay = retry_in if retry_in is not None else min(2 ** attempts, 600)
            give_up = attempts >= self._cfg.max_attempts
            await conn.execute(update(_table).where(_table.c.id == inbox_id, _table.c.status == "pending").values(
                attempts=attempts, last_error=f"{type(exc).__name__}: {exc}"[:2000],
                status="failed" if give_up else "pending",
                next_attempt_at=self._clock() + timedelta(seconds=delay),
            ))
        if give_up:
            log.error("inbox row %s failed %d times; left as failed for an operator", inbox_id, attempts)
