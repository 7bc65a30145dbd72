"""The transactions that handle inbox rows: one event alone, or several queued events together.

Each event's handler writes and its row's ``done`` mark commit together. A row is claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (several processes never handle the same row) and re-checked to be
still pending. A person's events are handled in arrival order: a row whose sender has an earlier pending row
elsewhere waits for it.

Handling several events in one transaction saves the per-event session, claim, order check, ``done`` update
and commit: over a third of the CPU per event in the benchmark (bench/README.md). If anything in a batch
fails, the whole batch rolls back and its events are handled one by one, where a failure is recorded on its
own row and retried with backoff.

No transaction here waits on WeChat: an event whose handler needs lookups first (a prepare handler,
bot/dispatch/router.py) is left pending and unlocked, with its sender's later events of the batch, and
handed to bot/inbox/lookups.py, which looks up and then handles it through ``one`` with the result (and
then those later events).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# This module keeps its own SQL instead of calling storage/repos/: it is the callback hot path, and its
# statements are tuned for the callback benchmark (bench/README.md).
from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config.core import InboxConfig
from bot.dispatch.context import HandlerContext, PrepareContext, Services
from bot.dispatch.router import Router
from bot.inbox.lookups import Lookups
from bot.inbox.plain import PlainRuns
from bot.inbox.rows import CLAIM, due_for_handling, first_pending_elsewhere, record_failure
from bot.ingress.events import InboundEvent, build_event
from bot.ingress.security import parse_xml
from storage.models import InboxEvent, utcnow
from storage.repos.leads import LeadRepository
from storage.tx import Retry

log = logging.getLogger(__name__)
_table = InboxEvent.__table__
DONE, SKIPPED, RETRY, WAIT, FAILED = "done", "skipped", "retry", "wait", "failed"
DEFERRED = "deferred"  # handed to its lookups (bot/inbox/lookups.py), which handle it afterwards


@dataclass(frozen=True, slots=True)
class Batch:
    waiting: list[int]  # to be handled one by one
    unstarted: list[int]  # stopped before these; still pending and unlocked once the batch commits
    handled: int = 0  # events handled and committed by the batch
    deferred: tuple[int, ...] = ()  # handed to the lookups (bot/inbox/lookups.py), which handle them
    together: int = field(default=0, compare=False)  # of ``handled``: plain events recorded together
    claimed: int = field(default=0, compare=False)  # rows the batch locked


class InboxHandling:
    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker, router: Router, services: Services,
                 cfg: InboxConfig, app_ids: dict[str, str], clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._sessions = sessions
        self._router = router
        self._services = services
        self._cfg = cfg
        self._app_ids = app_ids
        self._clock = clock
        self.processed = 0
        self.together = 0  # of ``processed``: plain events recorded together (bot/inbox/plain.py)
        self.lookups = Lookups(self.prepare, self.one, self._failed, done=DONE, again=(RETRY, WAIT))

    async def one(self, inbox_id: int, prepared: Mapping[str, Any] | None = None) -> str:
        """Handle one inbox row if it is still pending and nobody else holds it.

        ``prepared``: what its prepare handler looked up; without it, a row that needs lookups is deferred.
        """
        deferred = False
        try:
            async with self._sessions() as session, session.begin():
                row = (await session.execute(
                    select(InboxEvent).where(InboxEvent.id == inbox_id, InboxEvent.status == "pending")
                    .with_for_update(skip_locked=True)
                )).scalar_one_or_none()
                if row is None:
                    return SKIPPED
                earlier = await first_pending_elsewhere(session, [row])
                if earlier:  # the same person's earlier event goes first, wherever it is handled ...
                    first = next(iter(earlier.values()))
                    # ... right before this one if it is in its lookups, or soon by whoever holds it.
                    return DEFERRED if self.lookups.follow(first, inbox_id) else WAIT
                if await self._handle(session, row, prepared):
                    row.status = "done"
                    row.attempts += 1
                    row.processed_at = self._clock()
                    row.last_error = None
                else:
                    deferred = True  # nothing written: the transaction ends at once, releasing the row
        except (IntegrityError, OperationalError, Retry) as exc:
            # A concurrent event created the same identity, a lock/serialisation conflict, or a lead it waited
            # for was erased or merged meanwhile (storage.tx.Retry): retry soon.
            await self._record_failure(inbox_id, exc, retry_in=0.2)
            return RETRY
        except Exception as exc:  # noqa: BLE001 - recorded on the row, retried with backoff
            log.exception("inbox row %s failed", inbox_id)
            await self._record_failure(inbox_id, exc, retry_in=None)
            return FAILED
        if deferred:
            self.lookups.start(inbox_id)
            return DEFERRED
        self.processed += 1
        return DONE

    async def many(self, inbox_ids: Sequence[int], stop: Callable[[], bool] = lambda: False) -> Batch:
        """Handle these rows, in order, in one transaction (``_batch``)."""
        return await self._batch(CLAIM.where(_table.c.id.in_(inbox_ids), _table.c.status == "pending"), stop)

    async def oldest(self, limit: int, received_before: datetime, *, skip: Collection[int] = (),
                     stop: Callable[[], bool] = lambda: False) -> Batch:
        """Claim and handle the oldest due rows received before then that nobody holds, except ``skip``: how
        every worker of every process takes its share of a backlog, SKIP LOCKED keeping their shares apart."""
        stmt = CLAIM.where(due_for_handling(self._clock()), _table.c.received_at <= received_before)
        if skip:
            stmt = stmt.where(_table.c.id.not_in(list(skip)))
        return await self._batch(stmt.limit(limit), stop)

    async def _batch(self, claim: Select[Any], stop: Callable[[], bool]) -> Batch:
        """Handle the rows ``claim`` locks, in order, in one transaction.

        ``stop`` is asked between events: when it says so, what is done commits and the rest is returned
        unstarted. Rows waiting for their sender's earlier event elsewhere are returned to be handled one by
        one, and so is every row when the batch failed. Rows another process holds, or that are no longer
        pending, are not ours. Rows that need lookups go to them once the batch has committed; their senders'
        later rows of the batch go with them (handled right after them, by bot/inbox/lookups.py).
        """
        deferred: dict[int, list[int]] = {}  # a row handed to its lookups -> its sender's later rows
        claimed: list[int] = []
        try:
            async with self._sessions() as session, session.begin():
                rows = (await session.execute(claim)).all()
                claimed = [r.id for r in rows]
                first_elsewhere = await first_pending_elsewhere(session, rows)
                # Rows whose sender has an earlier pending row elsewhere: to follow it (if it is in its lookups,
                # once this batch has committed) or to be handled one by one.
                after = {r.id: first_elsewhere[(r.source, r.from_user)] for r in rows
                         if first_elsewhere.get((r.source, r.from_user), r.id) < r.id}
                waiting = list(after)
                ready = [r for r in rows if r.id not in after]
                events = {r.id: self._rebuild(r.source, r.payload) for r in ready}
                plain = PlainRuns(session, ready, events, self._router, self._services, self._clock)
                done: list[Any] = []
                unstarted: list[int] = []
                blocked: dict[tuple[str, str], int] = {}  # sender -> its deferred row: later rows follow it

                async def handle(row: Any) -> None:
                    sender = (row.source, row.from_user)
                    if sender in blocked:
                        deferred[blocked[sender]].append(row.id)
                    elif not await self._handle(session, row, None, events[row.id]):
                        deferred[row.id], blocked[sender] = [], row.id
                    else:
                        # Each event reads the database afresh, as it would in a transaction of its own.
                        await session.flush()
                        session.expunge_all()
                        done.append(row)

                async def record_run() -> None:
                    recorded, declined = await plain.record()
                    done.extend(recorded)
                    for row in declined:
                        await handle(row)

                for i, row in enumerate(ready):
                    if (done or plain.open) and stop():
                        unstarted = [r.id for r in ready[i:]]
                        break
                    if (row.source, row.from_user) in blocked or not plain.take(row):
                        await record_run()
                        await handle(row)
                await record_run()
                if done:
                    await session.execute(update(_table).where(_table.c.id.in_([r.id for r in done])).values(
                        status="done", attempts=_table.c.attempts + 1, processed_at=self._clock(), last_error=None))
        except Exception as exc:  # noqa: BLE001 - nothing of the batch was kept; each event is retried alone
            log.info("a batch of %d inbox rows rolled back (%s: %s); handling them one by one",
                     len(claimed), type(exc).__name__, exc)
            return Batch(waiting=claimed, unstarted=[], claimed=len(claimed))
        for inbox_id, later in deferred.items():  # committed: the rows are unlocked for the lookups' transactions
            self.lookups.start(inbox_id, later)
        following = [i for i in waiting if i in after and self.lookups.follow(after[i], i)]
        waiting = [i for i in waiting if i not in following]
        self.processed += len(done)
        self.together += plain.recorded
        return Batch(waiting=waiting, unstarted=unstarted, handled=len(done), together=plain.recorded,
                     claimed=len(claimed),
                     deferred=(*following, *(i for first, later in deferred.items() for i in (first, *later))))

    async def prepare(self, inbox_id: int) -> Mapping[str, Any] | None:
        """The row's lookups, with no transaction open; ``None`` when it is no longer pending."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(_table.c.source, _table.c.payload).where(
                _table.c.id == inbox_id, _table.c.status == "pending"))).first()
        if row is None:
            return None
        event = self._rebuild(row.source, row.payload)
        handler = self._router.match_prepare(event)
        return {} if handler is None else await handler(PrepareContext(event=event, services=self._services))

    async def _handle(self, session: AsyncSession, row: Any, prepared: Mapping[str, Any] | None,
                      event: InboundEvent | None = None) -> bool:
        """Run the row's handler; False, doing nothing, when it needs lookups and ``prepared`` is None."""
        event = event or self._rebuild(row.source, row.payload)
        if prepared is None and self._router.match_prepare(event) is not None:
            return False
        leads = LeadRepository(session, self._services.scoring, self._clock, events=self._services.events)
        ctx = HandlerContext(event=event, inbox_id=row.id, session=session, leads=leads,
                             services=self._services, now=self._clock(), prepared=prepared or {})
        handler = self._router.match(event)
        if handler is not None:
            await handler(ctx)
        return True

    async def _failed(self, inbox_id: int, exc: BaseException) -> None:
        await self._record_failure(inbox_id, exc, retry_in=None)

    def _rebuild(self, source: str, payload: str) -> InboundEvent:
        return build_event(source, self._app_ids[source], parse_xml(payload.encode("utf-8")))

    async def _record_failure(self, inbox_id: int, exc: BaseException, retry_in: float | None) -> None:
        await record_failure(self._engine, inbox_id, exc, retry_in=retry_in, max_attempts=self._cfg.max_attempts,
                             now=self._clock())
