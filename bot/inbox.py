"""Durable inbox writes with group commit.

Every accepted callback is inserted before its answer goes out. Writing each in its own transaction would
cost one fsync per message; instead concurrent requests queue their rows and a few flusher tasks write
whatever has accumulated in one INSERT ... ON CONFLICT DO NOTHING and one commit (natural batching: no
timer, a batch is simply everything that arrived while the previous commit was in flight).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.inbound import InboundEvent
from storage.models import InboxEvent, utcnow

log = logging.getLogger(__name__)
_table = InboxEvent.__table__


@dataclass(frozen=True, slots=True)
class Stored:
    inbox_id: int
    duplicate: bool
    reply: str | None


@dataclass(slots=True)
class _Pending:
    event: InboundEvent
    payload: str
    reply: str | None
    future: asyncio.Future[Stored]


class InboxWriter:
    def __init__(self, engine: AsyncEngine, *, max_batch: int, flushers: int,
                 on_stored: Callable[[list[int]], None]) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._flushers = flushers
        self._on_stored = on_stored
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert = dialect.insert

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name=f"inbox-flusher-{i}") for i in range(self._flushers)]

    async def stop(self) -> None:
        # One sentinel per flusher, queued behind every waiting request: all of them are written first.
        for _ in self._tasks:
            self._queue.put_nowait(None)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def store(self, event: InboundEvent, payload: str, reply: str | None) -> Stored:
        if not self._tasks:
            raise RuntimeError("inbox writer is not running")
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(event, payload, reply, future))
        return await future

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:  # keep the sentinel for after this batch
                    self._queue.put_nowait(None)
                    break
                batch.append(item)
            try:
                results = await self._flush(batch)
            except Exception as exc:  # noqa: BLE001 - every waiter must hear about the failure
                log.exception("inbox flush of %d rows failed", len(batch))
                for item in batch:
                    item.future.set_exception(exc)
                continue
            for item, stored in zip(batch, results, strict=True):
                item.future.set_result(stored)
            fresh = [s.inbox_id for s in results if not s.duplicate]
            if fresh:
                self._on_stored(fresh)

    async def _flush(self, batch: list[_Pending]) -> list[Stored]:
        rows: dict[str, dict[str, object]] = {}
        now = utcnow()
        for item in batch:
            key = item.event.dedup_key
            if key in rows:  # a retry that arrived while the original waited for the same commit
                continue
            ev = item.event
            rows[key] = {
                "source": ev.source, "dedup_key": key, "msg_type": ev.msg_type, "event": ev.event,
                "from_user": ev.from_user, "create_time": ev.create_time, "payload": item.payload,
                "reply": item.reply, "status": "pending", "attempts": 0, "received_at": now,
            }
        stmt = (self._insert(_table).values(list(rows.values()))
                .on_conflict_do_nothing(index_elements=["dedup_key"])
                .returning(_table.c.id, _table.c.dedup_key))
        async with self._engine.begin() as conn:
            inserted = {key: id_ for id_, key in (await conn.execute(stmt)).all()}
            missing = [key for key in rows if key not in inserted]
            earlier: dict[str, tuple[int, str | None]] = {}
            if missing:
                found = await conn.execute(
                    select(_table.c.dedup_key, _table.c.id, _table.c.reply).where(_table.c.dedup_key.in_(missing))
                )
                earlier = {key: (id_, reply) for key, id_, reply in found.all()}
        results: list[Stored] = []
        first_seen: set[str] = set()
        for item in batch:
            key = item.event.dedup_key
            if key in inserted:
                results.append(Stored(inserted[key], key in first_seen, rows[key]["reply"]))  # type: ignore[arg-type]
                first_seen.add(key)
            else:
                id_, reply = earlier[key]
                results.append(Stored(id_, True, reply))
        return results
