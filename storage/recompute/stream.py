"""A consistent snapshot of the touchpoints for ``leadrelay scores recompute`` on PostgreSQL.

Reading each batch's touchpoints by lead id range costs a random heap page per touchpoint (they are stored
in arrival order, one lead's scattered over the whole table): for 20 M touchpoints that is the table read
dozens of times over. Instead one query streams every scored touchpoint in (lead_id, occurred_at, id) order
(a sequential scan and one sort) from a REPEATABLE READ snapshot, and batches take their leads' rows from it.

A touchpoint committed after that snapshot is not in the stream. So the snapshot is exported to a second
connection, which counts each lead's touchpoints as of the snapshot (index-only); the batch counts them
again after locking its leads, and a lead whose count differs is read again under the lock
(storage/recompute/pg.py). Touchpoints are never deleted, and a merge moves them (the count changes), so an
equal count means the same touchpoints.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from contextlib import AsyncExitStack
from operator import itemgetter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# $3: the kinds whose details matter (recompute_batch.detail_kinds); other details are not even sent.
COLUMNS = "lead_id, id, kind, occurred_at, channel, scene, CASE WHEN kind = ANY($3::text[]) THEN detail::text END"
COUNTS = "SELECT lead_id, count(*) FROM touchpoints WHERE lead_id > $1 AND lead_id <= $2 GROUP BY lead_id"
_STREAM = f"""SELECT {COLUMNS} FROM touchpoints WHERE lead_id > $1 AND kind = ANY($2::text[]) {{only}}
ORDER BY lead_id, occurred_at, id"""
# Batch k covers lead ids (bounds[k], bounds[k + 1]]; a worker streams only its own batches' touchpoints.
_ONLY = "AND (width_bucket(lead_id, $4::bigint[]) - 1) % $5 = $6"
_PLAN = """SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM leads
  WHERE id > $1 AND merged_into_id IS NULL) AS x WHERE n % $2 = 0 ORDER BY id"""
_CHUNK = 20_000


async def driver(stack: AsyncExitStack, engine: AsyncEngine) -> Any:
    """A pooled connection's asyncpg connection, returned to the pool when ``stack`` closes."""
    conn = await stack.enter_async_context(engine.connect())
    return (await conn.get_raw_connection()).driver_connection


async def paired(stack: AsyncExitStack, engine: AsyncEngine) -> tuple[Any, AsyncConnection]:
    """One pooled connection seen two ways: asyncpg (the batch's transaction, the set-based score writes) and
    SQLAlchemy (for domain-event subscribers). The SQLAlchemy side is in AUTOCOMMIT: it begins no transaction
    of its own, so its statements run inside the one the asyncpg side started."""
    conn = await stack.enter_async_context(engine.connect())
    await conn.execution_options(isolation_level="AUTOCOMMIT")
    return (await conn.get_raw_connection()).driver_connection, conn


class Snapshot:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._stack = AsyncExitStack()
        self.lookup: Any = None  # asyncpg connection in the snapshot: counts, plans, dry-run reads
        self._stream: Any = None
        self._cursor: Any = None
        self._rows: list[Any] = []
        self._pos = 0
        self._prefetch: asyncio.Task[list[Any]] | None = None
        self._done = False

    async def __aenter__(self) -> Snapshot:
        self._stream = await driver(self._stack, self.engine)
        self.lookup = await driver(self._stack, self.engine)
        first = self._stream.transaction(isolation="repeatable_read", readonly=True)
        await first.start()
        self._stack.push_async_callback(first.rollback)
        snapshot_id = await self._stream.fetchval("SELECT pg_export_snapshot()")
        second = self.lookup.transaction(isolation="repeatable_read", readonly=True)
        await second.start()
        self._stack.push_async_callback(second.rollback)
        await self.lookup.execute(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._prefetch is not None:
            # Let a fetch in flight end (one chunk): the connection then rolls back cleanly.
            await asyncio.gather(self._prefetch, return_exceptions=True)
        await self._stack.aclose()

    async def plan(self, after: int, batch_size: int) -> list[int]:
        """Batch boundaries: every ``batch_size``-th surviving lead id after ``after``."""
        return [r[0] for r in await self.lookup.fetch(_PLAN, after, batch_size)]

    async def counts(self, lo: int, hi: int) -> dict[int, int]:
        return dict(await self.lookup.fetch(COUNTS, lo, hi))

    async def start(self, after: int, kinds: list[str], detail_kinds: list[str], bounds: list[int] | None = None,
                    worker: int = 0, workers: int = 1) -> None:
        """Stream scored touchpoints of leads after ``after`` (only this worker's batches when sharing)."""
        conn = self._stream
        # The whole result is read: plan for that (a sequential scan and a sort, not an index walk), with
        # enough memory for the sort to stay mostly in memory; JIT only adds start-up time here.
        await conn.execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off")
        if workers > 1 and bounds is not None:
            # width_bucket's buckets include their lower bound; batches exclude it.
            args = (after, kinds, detail_kinds, [b + 1 for b in bounds], workers, worker)
            self._cursor = await conn.cursor(_STREAM.format(only=_ONLY), *args)
        else:
            self._cursor = await conn.cursor(_STREAM.format(only=""), after, kinds, detail_kinds)
        self._prefetch = asyncio.ensure_future(self._cursor.fetch(_CHUNK))  # the sort starts now

    async def take(self, hi: int) -> list[Any]:
        """The streamed rows of leads up to ``hi``; rows of earlier leads not taken are dropped."""
        out: list[Any] = []
        while True:
            rows, pos = self._rows, self._pos
            end = bisect_right(rows, hi, lo=pos, key=itemgetter(0))
            out.extend(rows[pos:end])
            self._pos = end
            if end < len(rows) or self._done:
                break
            self._rows, self._pos = await self._next(), 0
        if self._prefetch is None and not self._done:
            # Fetch the next rows while this batch is written (the only time the event loop is idle).
            self._prefetch = asyncio.ensure_future(self._cursor.fetch(_CHUNK))
        return out

    async def _next(self) -> list[Any]:
        if self._prefetch is not None:
            rows, self._prefetch = await self._prefetch, None
        else:
            rows = await self._cursor.fetch(_CHUNK)
        if not rows:
            self._done = True
        return rows
