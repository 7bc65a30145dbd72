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
from datetime import datetime
from typing import Any

# This module keeps its own SQL instead of calling storage/repos/: it is the callback hot path, and its
# statements are tuned for the callback benchmark (bench/README.md).
from sqlalchemy import select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.inbox.gauge import IngestGauge
from bot.ingress.events import InboundEvent
from storage.models import InboxEvent, utcnow

log = logging.getLogger(__name__)
_table = InboxEvent.__table__
_Inserted = dict[str, int]
_Earlier = dict[str, tuple[int, str | None]]

# Built once: compiling a fresh multi-row INSERT per batch cost a third of the ingest CPU.
_SQLITE_INSERT = (sqlite.insert(_table).on_conflict_do_nothing(index_elements=["dedup_key"])
                  .returning(_table.c.id, _table.c.dedup_key))
_UNNEST_COLUMNS = ("source", "dedup_key", "msg_type", "event", "from_user", "create_time", "payload", "reply")
_PG_INSERT = """
INSERT INTO inbox (source, dedup_key, msg_type, event, from_user, create_time, payload, reply, status, attempts,
                   received_at)
SELECT s, k, m, e, f, c, p, r, 'pending', 0, $9
FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::bigint[], $7::text[],
            $8::text[]) AS t(s, k, m, e, f, c, p, r)
ON CONFLICT (dedup_key) DO NOTHING
RETURNING id, dedup_key
"""
_PG_EARLIER = "SELECT dedup_key, id, reply FROM inbox WHERE dedup_key = ANY($1::varchar[])"


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
                 on_stored: Callable[[list[int]], None], gauge: IngestGauge | None = None) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._flushers = flushers
        self._on_stored = on_stored
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._postgres = engine.dialect.name == "postgresql"
        self._gauge = gauge or IngestGauge()

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
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        self._queue.put_nowait(_Pending(event, payload, reply, future))
        self._gauge.arrived()
        try:
            return await future
        finally:
            self._gauge.settled()

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
                results = await self._flush_retrying(batch)
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

    async def _flush_retrying(self, batch: list[_Pending]) -> list[Stored]:
        """Connections are not pinged before use; a dropped one fails once and is replaced by the pool."""
        try:
            return await self._flush(batch)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.warning("inbox flush hit a dropped database connection; retrying on a fresh one")
            return await self._flush(batch)

    async def _flush(self, batch: list[_Pending]) -> list[Stored]:
        rows: dict[str, dict[str, Any]] = {}
        now = utcnow()
        for item in batch:
            key = item.event.dedup_key
            if key in rows:  # a retry that arrived while the original waited for the same commit
                continue
            ev = item.event
            rows[key] = {
                "source": ev.source, "dedup_key": key, "msg_type": ev.msg_type, "event": ev.event,
                "from_user": ev.actor, "create_time": ev.create_time, "payload": item.payload,
                "reply": item.reply, "status": "pending", "attempts": 0, "received_at": now,
            }
        if self._postgres:
            inserted, earlier = await self._insert_postgres(rows, now)
        else:
            inserted, earlier = await self._insert_generic(rows)
        results: list[Stored] = []
        first_seen: set[str] = set()
        for item in batch:
            key = item.event.dedup_key
            if key in inserted:
                results.append(Stored(inserted[key], key in first_seen, rows[key]["reply"]))
                first_seen.add(key)
            else:
                id_, reply = earlier[key]
                results.append(Stored(id_, True, reply))
        return results

    async def _insert_postgres(self, rows: dict[str, dict[str, Any]], now: datetime) -> tuple[_Inserted, _Earlier]:
        """One prepared statement, one round trip: a single statement outside a transaction block commits
        atomically (and durably, with synchronous_commit on) before it returns."""
        columns = [[row[c] for row in rows.values()] for c in _UNNEST_COLUMNS]
        async with self._engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            inserted = {key: id_ for id_, key in await raw.fetch(_PG_INSERT, *columns, now)}
            missing = [key for key in rows if key not in inserted]
            earlier = {key: (id_, reply) for key, id_, reply in await raw.fetch(_PG_EARLIER, missing)} \
                if missing else {}
        return inserted, earlier

    async def _insert_generic(self, rows: dict[str, dict[str, Any]]) -> tuple[_Inserted, _Earlier]:
        async with self._engine.begin() as conn:
            result = await conn.execute(_SQLITE_INSERT, list(rows.values()))
            inserted = {key: id_ for id_, key in result.all()}
            missing = [key for key in rows if key not in inserted]
            earlier: _Earlier = {}
            if missing:
                found = await conn.execute(
                    select(_table.c.dedup_key, _table.c.id, _table.c.reply).where(_table.c.dedup_key.in_(missing)))
                earlier = {key: (id_, reply) for key, id_, reply in found.all()}
        return inserted, earlier
