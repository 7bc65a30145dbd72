"""After-ack processing of inbox rows: at-least-once delivery, exactly-once effects.

Rows this process stored are queued here; worker tasks take what is queued, up to ``inbox.process_batch``
events at a time, and handle them in one transaction (``bot/inbox/tx.py``). Rows nobody queued (a process
killed mid-way, a full queue, a failed attempt, a process that only answers) are found by the periodic sweep,
here or in any other process: then the workers, once their queue is empty, claim the oldest due rows directly
with ``FOR UPDATE SKIP LOCKED``, so a backlog is shared by every worker of every process without two of them
reaching for the same rows. Events of leads that more intent would hand to sales skip the queue
(bot/inbox/fast_lane.py).
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
from bot.inbox.rows import due_for_handling
from bot.inbox.tx import DONE, RETRY, WAIT, InboxHandling
from storage.models import InboxEvent, utcnow

log = logging.getLogger(__name__)
_table = InboxEvent.__table__
# Conflicts and waits for a person's earlier event resolve within moments; past this the sweep takes over.
_SOON_RETRIES = 40
_SWEEP_PAGE = 2_000
# Under a flood, each wait lets this many events through: recorded together they cost a few milliseconds (one at a
# time, as before, they cost several times more each, enough to keep the process looking flooded).
_FLOOD_BATCH = 8
_PASSED_MAX = 5_000
_WAKE = 0  # queued by the sweep: a worker waiting on the queue looks at the backlog (inbox ids start at 1)


class InboxProcessor:
    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker, router: Router, services: Services,
                 cfg: InboxConfig, app_ids: dict[str, str], clock: Callable[[], datetime] = utcnow,
                 gauge: IngestGauge | None = None, queue_size: int = 10_000) -> None:
        self._engine = engine
        self._cfg = cfg
        self._clock = clock
        self._gauge = gauge
        self._handling = InboxHandling(engine, sessions, router, services, cfg, app_ids, clock)
        self.fast_lane = FastLane(engine, self._handling, services.scoring.rules, app_ids,
                                  interval_s=cfg.fast_lane_ms / 1000, batch=cfg.process_batch, clock=clock)
        # Bounded: under a burst the overflow simply waits in the database for the sweep.
        self._queue: asyncio.Queue[int] = asyncio.Queue(maxsize=queue_size)
        self._queued: set[int] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False
        self._backlog = False  # the last sweep found due rows nobody queued: workers claim them (_take_backlog)
        self._grace_s = cfg.sweep_grace_s
        self._waking = 0  # _WAKE tokens in the queue
        self._overflowed = False  # the queue was full: rows are left to the backlog until it is worked off

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
        log.info("inbox processor stopped: %d events handled by this process, %d of them recorded together",
                 self.processed, self._handling.together)

    def notify(self, inbox_ids: list[int]) -> None:
        """Rows just stored by this process: the fast lane looks at them first, even when the queue is full."""
        if not self._workers:
            return
        self.fast_lane.notify(inbox_ids)
        self._enqueue(inbox_ids)

    def _enqueue(self, inbox_ids: list[int]) -> None:
        """Queue fresh rows, unless the queue overflowed: from then on nothing is queued until the workers have
        claimed the whole backlog in id order. Queuing a row while an older row of its sender waits unqueued in
        the database would leave the newer one waiting for it, so after an overflow every queued row is older
        than every row left to the backlog."""
        for inbox_id in inbox_ids:
            if self._overflowed:
                return
            if inbox_id in self._queued:
                continue
            if self._queue.full():
                self._overflowed = self._backlog = True
                return
            self._queued.add(inbox_id)
            self._queue.put_nowait(inbox_id)

    async def sweep(self, grace_s: float | None = None) -> int:
        """Wake the workers for due rows received more than the grace ago that are still pending: left by a
        crash, a full queue or a failed attempt, or stored by a process that only answers. The workers claim
        them directly, oldest first (``_take_backlog``), so the backlog spreads over every worker of every
        process. The number of such rows, up to a page."""
        if not self._workers:
            return 0
        now = self._clock()
        # After an overflow nothing new is queued: every pending row is the backlog's, however young.
        grace = 0.0 if self._overflowed else self._cfg.sweep_grace_s if grace_s is None else grace_s
        stmt = (select(_table.c.id).where(due_for_handling(now), _table.c.received_at <= now - timedelta(seconds=grace))
                .limit(_SWEEP_PAGE))
        async with self._engine.connect() as conn:
            found = len((await conn.execute(stmt)).all())
        if found:
            self._grace_s, self._backlog = grace, True
            while self._waking < len(self._workers) and not self._queue.full():  # idle workers wait on the queue
                self._waking += 1
                self._queue.put_nowait(_WAKE)
        return found

    async def _take_backlog(self) -> None:
        """Claim and handle the oldest due rows, a batch at a time, until there are none this worker can take."""
        # Rows waiting behind an earlier row of their sender that another worker holds, or that backs off after a
        # failure: tried once, then passed over for the rest of this pass (the next sweep brings them back), so
        # that they do not stand in front of the backlog behind them at every claim.
        passed: set[int] = set()
        while self._backlog and not self._stopping:
            size = self._cfg.process_batch if await self._give_way() else min(_FLOOD_BATCH, self._cfg.process_batch)
            cutoff = self._clock() - timedelta(seconds=0.0 if self._overflowed else self._grace_s)
            outcome = await self._handling.oldest(size, cutoff, skip=self._handling.lookups.holding | passed,
                                                  stop=self._answers_pile_up)
            progress = outcome.handled  # rows handled or passed over: the next claim reaches further
            for inbox_id in outcome.waiting:
                if await self._handling.one(inbox_id) != DONE:
                    passed.add(inbox_id)
                progress += 1
            if len(passed) > _PASSED_MAX:
                self._backlog = False  # a long queue behind one failing sender: the next sweep starts afresh
            elif outcome.claimed < size:
                self._backlog = self._overflowed = False  # caught up: fresh rows are queued again
            elif not progress and self._overflowed:
                await asyncio.sleep(0.05)  # the rows ahead are in other workers' hands: done in a moment
            elif not progress:
                self._backlog = False  # all held elsewhere, or waiting for such rows: the next sweep looks again

    async def _work(self) -> None:
        carry: list[int] = []  # taken from the queue, not yet handled: they go before anything newer
        try:
            while not self._stopping:
                if not carry:
                    if self._backlog and self._queue.empty():
                        await self._take_backlog()
                        continue
                    first = await self._queue.get()
                    if first < 0:
                        return
                    if first == _WAKE:
                        self._waking -= 1
                        continue
                    carry = [first]
                # A batch of what has queued; under a flood of callbacks, a small one per wait.
                size = self._cfg.process_batch if await self._give_way() else min(_FLOOD_BATCH, self._cfg.process_batch)
                batch, carry = self._take_queued(carry, size)
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
            self._queued.difference_update(carry)  # still pending in the database: the sweep finds them again

    def _take_queued(self, carry: list[int], size: int) -> tuple[list[int], list[int]]:
        """A batch: what this worker carries, then what else is queued; and what did not fit."""
        batch, rest = carry[:size], carry[size:]
        while len(batch) < size and not self._queue.empty():
            inbox_id = self._queue.get_nowait()
            if inbox_id == _WAKE:  # this worker looks at the backlog anyway once the queue is empty
                self._waking -= 1
                continue
            if inbox_id < 0:  # stopping: keep the sentinel for after this batch
                self._queue.put_nowait(inbox_id)
                break
            batch.append(inbox_id)
        return batch, rest

    def _answers_pile_up(self) -> bool:
        return self._gauge is not None and self._gauge.piling_up()

    async def _process_soon(self, inbox_id: int) -> bool:
        """Handle the row alone, trying again for a moment while it conflicts or waits; whether it was handled."""
        try:
            for _ in range(_SOON_RETRIES):
                if (status := await self._handling.one(inbox_id)) not in (RETRY, WAIT):
                    return status == DONE
                await asyncio.sleep(0.05)
        except Exception:  # noqa: BLE001 - one bad event must not stop the worker
            log.exception("inbox row %s: recording the failure failed; the sweep will retry", inbox_id)
        return False

    async def _give_way(self) -> bool:
        """Answers first: while they compete for this process, wait (bounded, so work is never starved).

        False when the wait ran out with answers still competing."""
        if self._gauge is None or not self._cfg.defer_max_ms:
            return True
        return await self._gauge.wait_for_room(self._cfg.defer_max_ms / 1000)
