"""Recompute batches on PostgreSQL through the raw asyncpg connection: the ORM costs more than the scoring.

One batch = the surviving leads with ids in (lo, hi] = one transaction: lock them (``FOR UPDATE``, ascending
ids: a concurrent incremental update locks its lead the same way, so it waits or goes first, never
interleaves), read their stored scores, take their scored touchpoints from the snapshot stream
(storage/recompute/stream.py; leads whose touchpoints changed since are read again under the lock), compute
(storage/recompute/batch.py), write the scores in one set-based statement (``unnest`` arrays, one round
trip), publish the batch's QuadrantEntered events to the subscribers (they run on the SQLAlchemy side of the
same connection, inside the batch's transaction: storage/recompute/stream.paired) and advance the run's
progress. A dry run reads everything from the snapshot, locks nothing and publishes nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from leads.events import DomainEvents
from leads.scoring import ScoreModel
from storage.recompute.batch import (
    AbilityCache,
    BatchResult,
    DetailParser,
    LeadRow,
    detail_kinds,
    group_events,
    no_gc,
    score_batch,
)
from storage.recompute.stream import COLUMNS, COUNTS, Snapshot
from storage.repos.events import EventTx

NO_UPPER_BOUND = 2**63 - 1

_LEADS = """SELECT id, stage, profile::text, erased_at IS NOT NULL FROM leads
WHERE id > $1 AND id <= $2 AND merged_into_id IS NULL ORDER BY id"""
_SCORES = "SELECT lead_id, ability, motivation, quadrant FROM lead_scores WHERE lead_id > $1 AND lead_id <= $2"
_REREAD = f"""SELECT {COLUMNS} FROM touchpoints WHERE lead_id = ANY($1::bigint[]) AND kind = ANY($2::text[])
ORDER BY lead_id, occurred_at, id"""
_UPSERT = """INSERT INTO lead_scores (lead_id, ability, motivation, quadrant, rules, state, scored_at)
SELECT u.lead_id, u.ability, u.motivation, u.quadrant, $6, u.state::json, $7
FROM unnest($1::bigint[], $2::float8[], $3::float8[], $4::text[], $5::text[])
  AS u(lead_id, ability, motivation, quadrant, state)
ON CONFLICT (lead_id) DO UPDATE SET ability = EXCLUDED.ability, motivation = EXCLUDED.motivation,
  quadrant = EXCLUDED.quadrant, rules = EXCLUDED.rules, state = EXCLUDED.state, scored_at = EXCLUDED.scored_at"""
# Progress only moves on from where this batch started: if another recompute took the run over (or a
# newer one superseded it) the update matches nothing and the batch rolls back instead of counting twice.
_PROGRESS = """UPDATE score_recompute_runs SET last_lead_id = $3, leads_seen = leads_seen + $4,
  score_changes = score_changes + $5, quadrant_changes = quadrant_changes + $6, stage_changes = stage_changes + $7
WHERE id = $1 AND last_lead_id = $2 AND status = 'running'"""
_RUN = "SELECT last_lead_id, status FROM score_recompute_runs WHERE id = $1"
_WAIT_S = 600.0  # for the batch before this one; longer means its worker is gone
_HOLD = "SELECT pg_advisory_xact_lock($1::int, $2::int)"
_WAIT = "SELECT pg_advisory_lock_shared($1::int, $2::int)"
_UNWAIT = "SELECT pg_advisory_unlock_shared($1::int, $2::int)"


class RunTakenOver(RuntimeError):
    """The run's progress moved under this process: another recompute is working on it."""


class PgBatches:
    def __init__(self, conns: list[tuple[Any, AsyncConnection]], snapshot: Snapshot, model: ScoreModel, *,
                 now: datetime, dry_run: bool, run_id: int | None, events: DomainEvents[EventTx],
                 ordered: bool = False) -> None:
        # (asyncpg, SQLAlchemy) sides of a connection (stream.paired): while one batch commits, the next is
        # computed on another.
        self.conns = conns
        self.events = events
        self.snapshot = snapshot
        self.model = model
        self.now = now
        self.dry_run = dry_run
        self.run_id = run_id
        self.ordered = ordered  # workers share the run: wait for the batch before this one to commit
        self._run_key = (run_id or 0) % 2**31  # advisory locks (run, batch number) order the workers' commits
        self.kinds = sorted(model.scored_kinds)
        self.detail_kinds = detail_kinds(model)
        self.parse = DetailParser()
        self.ability = AbilityCache(model)  # kept across batches: profiles repeat

    async def run_all(self, ranges: Iterable[tuple[int, int, int]], done: Callable[[BatchResult], None]) -> None:
        """Every (batch number, lo, hi) in order: the leads in (lo, hi]; ``done`` gets each committed result."""
        if self.dry_run:
            for _, lo, hi in ranges:
                (leads, stored), streamed = await asyncio.gather(self._snapshotted(lo, hi), self.snapshot.take(hi))
                with no_gc():
                    done(self._compute(leads, stored, group_events(streamed, self.parse), lo, hi))
            return
        finishing: asyncio.Future[BatchResult] | None = None
        try:
            for i, (k, lo, hi) in enumerate(ranges):
                conn, core = self.conns[i % len(self.conns)]
                tx = conn.transaction()
                await tx.start()
                try:
                    if self.ordered:  # held until this batch ends: the next one waits on it (_advance)
                        await conn.execute(_HOLD, self._run_key, k)
                    result = await self._prepare(conn, lo, hi)
                    if finishing is not None:
                        previous, finishing = finishing, None
                        done(await previous)  # committed: its progress is the predecessor of this batch's
                except BaseException:
                    await tx.rollback()
                    raise
                # PostgreSQL writes this batch while Python computes the next one.
                finishing = asyncio.ensure_future(self._finish(conn, core, tx, k, lo, result))
            if finishing is not None:
                previous, finishing = finishing, None
                done(await previous)
        finally:
            if finishing is not None:  # failed elsewhere: let the batch in flight end either way
                await asyncio.gather(finishing, return_exceptions=True)

    async def _prepare(self, conn: Any, lo: int, hi: int) -> BatchResult:
        (leads, counts, stored), before, streamed = await asyncio.gather(
            self._locked(conn, lo, hi), self.snapshot.counts(lo, hi), self.snapshot.take(hi))
        with no_gc():
            events = group_events(streamed, self.parse)
        # Touchpoints committed since the snapshot (or erased details): read those leads again, locked.
        stale = [r[0] for r in leads if r[3] or counts.get(r[0], 0) != before.get(r[0], 0)]
        if stale:
            for lead_id in stale:
                events.pop(lead_id, None)
            events.update(group_events(await conn.fetch(_REREAD, stale, self.kinds, self.detail_kinds), self.parse))
        with no_gc():
            return self._compute(leads, stored, events, lo, hi)

    async def _finish(self, conn: Any, core: AsyncConnection, tx: Any, k: int, lo: int,
                      result: BatchResult) -> BatchResult:
        try:
            await self._write(conn, result)
            await EventTx(core, self.events).publish(result.entered)
            await self._advance(conn, k, lo, result)
        except BaseException:
            await tx.rollback()
            raise
        await tx.commit()
        return result

    @staticmethod
    async def _locked(conn: Any, lo: int, hi: int) -> tuple[list[Any], dict[int, int], list[Any]]:
        leads = await conn.fetch(_LEADS + " FOR UPDATE", lo, hi)
        # After the lock: what an incremental update committed while we waited is seen.
        counts = dict(await conn.fetch(COUNTS, lo, hi))
        return leads, counts, await conn.fetch(_SCORES, lo, hi)

    async def _snapshotted(self, lo: int, hi: int) -> tuple[list[Any], list[Any]]:
        look = self.snapshot.lookup  # one connection: one statement at a time
        return await look.fetch(_LEADS, lo, hi), await look.fetch(_SCORES, lo, hi)

    def _compute(self, leads: list[Any], stored: list[Any], events: dict[int, Any], lo: int, hi: int) -> BatchResult:
        scores = {r[0]: r for r in stored}
        rows = []
        for lead_id, stage, profile, _erased in leads:
            old = scores.get(lead_id)
            data = (json.loads(profile) if profile else None) or {}
            rows.append(LeadRow(lead_id, stage, data) if old is None
                        else LeadRow(lead_id, stage, data, old[1], old[2], old[3]))
        result = score_batch(self.model, rows, events, self.now, self.ability)
        # Progress covers the whole range, merged leads included; the open-ended last range, what it saw.
        result.last_lead_id = hi if hi != NO_UPPER_BOUND else max(result.last_lead_id, lo)
        return result

    async def _write(self, conn: Any, result: BatchResult) -> None:
        if result.scores:
            ids, abilities, motivations, quadrants, states = zip(*result.scores, strict=True)
            await conn.execute(_UPSERT, ids, abilities, motivations, quadrants, [json.dumps(s) for s in states],
                               self.model.fingerprint, self.now)

    async def _advance(self, conn: Any, k: int, lo: int, result: BatchResult) -> None:
        deadline = asyncio.get_running_loop().time() + _WAIT_S
        while True:
            status = await conn.execute(_PROGRESS, self.run_id, lo, result.last_lead_id, result.leads_seen,
                                        result.score_changes, result.quadrant_changes, result.stage_changes)
            if status == "UPDATE 1":
                return
            done, state = await conn.fetchrow(_RUN, self.run_id)
            if state == "running" and done == lo:
                continue  # the batch before this one committed in between
            waiting = self.ordered and state == "running" and done < lo
            if not waiting or asyncio.get_running_loop().time() > deadline:
                raise RunTakenOver(f"score recompute run {self.run_id} moved on without this process "
                                   "(another `leadrelay scores recompute` is running?)")
            # Progress is a prefix: this batch commits after the one before it (another worker's). Waiting as a
            # lock, PostgreSQL sees a cycle through it (that batch waits for a lead an update holds, the update
            # for one of ours) and breaks it; a sleep alone would hang until the deadline.
            await conn.execute(_WAIT, self._run_key, k - 1)
            await conn.execute(_UNWAIT, self._run_key, k - 1)
            await asyncio.sleep(0.002)  # the batch before may not have begun yet
