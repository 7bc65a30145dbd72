"""After-ack processing of inbox rows: at-least-once delivery, exactly-once effects.

Stored rows are queued here; worker tasks take what is queued, up to ``inbox.process_batch`` events at a time,
and handle them in one transaction (``bot/inbox/tx.py``). A process killed mid-way leaves its rows pending, and
the periodic sweep (here or in any other process) picks them up again. Events of leads that more intent would
hand to sales skip the queue (bot/inbox/fast_lane.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

# This module keeps its own SQL instead of calling storage/repos/: it is the callback hot path, and its
# statements are tuned for the callback benchmark (bench/README.md).
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.config.core import InboxConfig
from bot.dispatch.context import Services
from bot.dispatch.router import Router
from bot.inbox.fast_lane import FastLane
from bot.inbox.gauge import IngestGauge
from bot.inbox.tx import RETRY, WAIT, InboxHandling, due_for_handling
from storage.models import InboxEvent, utcnow

log = logging.getLogger(__name__)
_table = InboxEvent.__table__
# Conflicts and waits for a person's earlier event resolve within moments; past this the sweep takes over.
_SOON_RETRIES = 40


class InboxProcessor:
    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker, router: Router, services: Services,
                 cfg: InboxConfig, app_ids: dict[str, str], clock: Callable[[], datetime] = utcnow,
                 gauge: IngestGauge | None = None) -> None:
        self._engine = engine
        self._cfg = cfg
        self._clock = clock
        self._gauge = gauge
        self._handling = InboxHandling(engine, sessions, router, services, cfg, app_ids, clock)
        self.fast_lane = FastLane(engine, self._handling, services.scoring.rules, app_ids,
                                  interval_s=cfg.fast_lane_ms / 1000, batch=cfg.process_batch, clock=clock)
        # Bounded: under a burst the overflow simply waits in the database for the sweep.
        self._queue: asyncio.Queue[int] = asyncio.Queue(maxsize=10_000)
        self._queued: set[int] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def processed(self) -> int:
        return self._handling.processed

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"inbox-worker-{i}")
                         for i in range(self._cfg.workers)]
        if self._workers and self._cfg.fast_lane_ms:
            self.fast_lane.start()

    async def stop(self, drain_s: float = 10.0) -> None:
        """Finish the events being handled; what is still queued stays pending for the next start."""
        self._stopping = True
        await self.fast_lane.stop(drain_s)
        await self._handling.lookups.stop(drain_s)
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
        """Rows just stored by this process: the fast lane looks at them first, even when the queue is full."""
        if not self._workers:
            return
        self.fast_lane.notify(inbox_ids)
        self._enqueue(inbox_ids)

    def _enqueue(self, inbox_ids: list[int]) -> None:
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
                .where(due_for_handling(now), _table.c.received_at <= cutoff)
                .order_by(_table.c.id).limit(2_000))
        async with self._engine.connect() as conn:
            ids = list((await conn.execute(stmt)).scalars())
        self._enqueue(ids)  # old rows: the lane looks only at fresh ones, in the narrow id span they occupy
        return len(ids)

    async def _work(self) -> None:
        carry: list[int] = []  # taken from the queue, not yet handled: they go before anything newer
        try:
            while True:
                if not carry:
                    first = await self._queue.get()
                    if first < 0:
                        return
                    carry = [first]
                if self._stopping:
                    return
                # Under a flood of callbacks, one event per wait; otherwise a batch of what has queued.
                batch, carry = self._take_queued(carry) if await self._give_way() else (carry[:1], carry[1:])
                try:
                    if len(batch) > 1:
                        outcome = await self._handling.many(batch, stop=self._answers_pile_up)
                        carry = outcome.unstarted + carry
                        alone = outcome.waiting
                    else:
                        alone = batch
                    for inbox_id in alone:
                        await self._process_soon(inbox_id)
                finally:
                    self._queued.difference_update(set(batch) - set(carry))
        finally:
            self._queued.difference_update(carry)  # still pending in the database: the sweep queues them again

    def _take_queued(self, carry: list[int]) -> tuple[list[int], list[int]]:
        """A batch: what this worker carries, then what else is queued; and what did not fit."""
        size = self._cfg.process_batch
        batch, rest = carry[:size], carry[size:]
        while len(batch) < size and not self._queue.empty():
            inbox_id = self._queue.get_nowait()
            if inbox_id < 0:  # stopping: keep the sentinel for after this batch
                self._queue.put_nowait(inbox_id)
                break
            batch.append(inbox_id)
        return batch, rest

    def _answers_pile_up(self) -> bool:
        return self._gauge is not None and self._gauge.piling_up()

    async def _process_soon(self, inbox_id: int) -> None:
        try:
            for _ in range(_SOON_RETRIES):
                if await self._handling.one(inbox_id) not in (RETRY, WAIT):
                    return
                await asyncio.sleep(0.05)
        except Exception:  # noqa: BLE001 - one bad event must not stop the worker
            log.exception("inbox row %s: recording the failure failed; the sweep will retry", inbox_id)

    async def _give_way(self) -> bool:
        """Answers first: while they compete for this process, wait (bounded, so work is never starved).

        False when the wait ran out with answers still competing."""
        if self._gauge is None or not self._cfg.defer_max_ms:
            return True
        return await self._gauge.wait_for_room(self._cfg.defer_max_ms / 1000)
