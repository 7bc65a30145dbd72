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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# This module keeps its own SQL instead of calling storage/repos/: it is the callback hot path, and its
# statements are tuned for the callback benchmark (bench/README.md).
from sqlalchemy import ColumnElement, and_, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config.core import InboxConfig
from bot.dispatch.context import HandlerContext, PrepareContext, Services
from bot.dispatch.router import Router
from bot.inbox.lookups import Lookups
from bot.ingress.events import InboundEvent, build_event
from bot.ingress.security import parse_xml
from storage.models import InboxEvent, utcnow
from storage.repos.leads import LeadRepository
from storage.tx import Retry

log = logging.getLogger(__name__)
_table = InboxEvent.__table__
DONE, SKIPPED, RETRY, WAIT, FAILED = "done", "skipped", "retry", "wait", "failed"
DEFERRED = "deferred"  # handed to its lookups (bot/inbox/lookups.py), which handle it afterwards


def due_for_handling(now: datetime) -> ColumnElement[bool]:
    """Inbox rows still pending whose retry backoff, if any, has run out."""
    return and_(_table.c.status == "pending",
                _table.c.next_attempt_at.is_(None) | (_table.c.next_attempt_at <= now))


@dataclass(frozen=True, slots=True)
class Batch:
    waiting: list[int]  # to be handled one by one
    unstarted: list[int]  # stopped before these; still pending and unlocked once the batch commits
    handled: int = 0  # events handled and committed by the batch
    deferred: tuple[int, ...] = ()  # handed to the lookups (bot/inbox/lookups.py), which handle them


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
                earlier = await self._first_pending_elsewhere(session, [row])
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
        """Handle these rows, in order, in one transaction.

        ``stop`` is asked between events: when it says so, what is done commits and the rest is returned
        unstarted. Rows waiting for their sender's earlier event elsewhere are returned to be handled one by
        one, and so is every row when the batch failed. Rows another process holds, or that are no longer
        pending, are not ours. Rows that need lookups go to them once the batch has committed; their senders'
        later rows of the batch go with them (handled right after them, by bot/inbox/lookups.py).
        """
        deferred: dict[int, list[int]] = {}  # a row handed to its lookups -> its sender's later rows
        try:
            async with self._sessions() as session, session.begin():
                rows = (await session.execute(
                    select(_table.c.id, _table.c.source, _table.c.from_user, _table.c.payload)
                    .where(_table.c.id.in_(inbox_ids), _table.c.status == "pending")
                    .order_by(_table.c.id).with_for_update(skip_locked=True)
                )).all()
                first_elsewhere = await self._first_pending_elsewhere(session, rows)
                # Rows whose sender has an earlier pending row elsewhere: to follow it (if it is in its lookups,
                # once this batch has committed) or to be handled one by one.
                after = {r.id: first_elsewhere[(r.source, r.from_user)] for r in rows
                         if first_elsewhere.get((r.source, r.from_user), r.id) < r.id}
                waiting = list(after)
                ready = [r for r in rows if r.id not in after]
                done: list[Any] = []
                unstarted: list[int] = []
                blocked: dict[tuple[str, str], int] = {}  # sender -> its deferred row: later rows follow it
                for i, row in enumerate(ready):
                    if done and stop():
                        unstarted = [r.id for r in ready[i:]]
                        break
                    sender = (row.source, row.from_user)
                    if sender in blocked:
                        deferred[blocked[sender]].append(row.id)
                        continue
                    if not await self._handle(session, row, None):
                        deferred[row.id], blocked[sender] = [], row.id
                        continue
                    # Each event reads the database afresh, as it would in a transaction of its own.
                    await session.flush()
                    session.expunge_all()
                    done.append(row)
                if done:
                    await session.execute(update(_table).where(_table.c.id.in_([r.id for r in done])).values(
                        status="done", attempts=_table.c.attempts + 1, processed_at=self._clock(), last_error=None))
        except Exception as exc:  # noqa: BLE001 - nothing of the batch was kept; each event is retried alone
            log.info("a batch of %d inbox rows rolled back (%s: %s); handling them one by one",
                     len(inbox_ids), type(exc).__name__, exc)
            return Batch(waiting=list(inbox_ids), unstarted=[])
        for inbox_id, later in deferred.items():  # committed: the rows are unlocked for the lookups' transactions
            self.lookups.start(inbox_id, later)
        following = [i for i in waiting if i in after and self.lookups.follow(after[i], i)]
        waiting = [i for i in waiting if i not in following]
        self.processed += len(done)
        return Batch(waiting=waiting, unstarted=unstarted, handled=len(done),
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

    async def _handle(self, session: AsyncSession, row: Any, prepared: Mapping[str, Any] | None) -> bool:
        """Run the row's handler; False, doing nothing, when it needs lookups and ``prepared`` is None."""
        event = self._rebuild(row.source, row.payload)
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

    @staticmethod
    async def _first_pending_elsewhere(session: AsyncSession, rows: Sequence[Any]) -> dict[tuple[str, str], int]:
        """Per sender of these rows: the first pending inbox row before the last of them that is not one of them.

        Bounded by the last row's id: handled roughly in arrival order, what is pending before a batch is only
        what other workers hold right now, however long the backlog behind it.
        """
        if not rows:
            return {}
        found = await session.execute(
            select(_table.c.source, _table.c.from_user, func.min(_table.c.id))
            .where(_table.c.status == "pending", _table.c.id < max(r.id for r in rows),
                   tuple_(_table.c.source, _table.c.from_user).in_({(r.source, r.from_user) for r in rows}),
                   _table.c.id.not_in([r.id for r in rows]))
            .group_by(_table.c.source, _table.c.from_user))
        return {(source, from_user): first for source, from_user, first in found.all()}

    def _rebuild(self, source: str, payload: str) -> InboundEvent:
        return build_event(source, self._app_ids[source], parse_xml(payload.encode("utf-8")))

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
