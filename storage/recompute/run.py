"""``leadrelay scores recompute``: rebuild every surviving lead's scores and quadrant from its touchpoints.

Needed after the scoring rules change (stored states were built with other rules) or to repair drift. Leads
are processed in batches in id order, each batch one transaction that also records the run's progress in
``score_recompute_runs``: an interrupted run resumes after the last committed batch (``restart`` starts
over), and a crash can neither lose nor double-count a batch. Deterministic: the same touchpoints, profile,
rules and ``now`` always give the same rows, equal to what the incremental path (storage/repos/scores.py) writes.
"""

from __future__ import annotations

import itertools
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from leads.events import DomainEvents
from leads.scoring import ScoreModel
from storage.models import ScoreRecomputeRun, utcnow
from storage.recompute.batch import BatchResult, detail_kinds, no_gc
from storage.recompute.pg import NO_UPPER_BOUND, PgBatches, RunTakenOver
from storage.recompute.sql import SqlBatches
from storage.recompute.stream import Snapshot, paired
from storage.repos.events import EventTx
from storage.repos.quadrant_actions import standard_events

__all__ = ["RecomputeReport", "RunTakenOver", "recompute"]

RUNNING, FINISHED, SUPERSEDED = "running", "finished", "superseded"


@dataclass(slots=True)
class RecomputeReport:
    """What this call did (a resumed run's earlier calls are in its ``score_recompute_runs`` row)."""

    leads_seen: int = 0
    score_changes: int = 0  # ability or motivation differs from the stored row by > 1e-6, or no row yet
    quadrant_changes: int = 0
    stage_changes: int = 0
    run_id: int | None = None  # None for a dry run: it records nothing
    resumed_from: int = 0  # the run's last_lead_id when this call started
    finished: bool = False
    seconds: float = 0.0
    dry_run: bool = False

    def add(self, batch: BatchResult) -> None:
        self.leads_seen += batch.leads_seen
        self.score_changes += batch.score_changes
        self.quadrant_changes += batch.quadrant_changes
        self.stage_changes += batch.stage_changes


async def recompute(engine: AsyncEngine, model: ScoreModel, *, now: datetime, dry_run: bool = False,
                    batch_size: int = 5000, restart: bool = False, max_batches: int | None = None,
                    workers: int = 1, events: DomainEvents[EventTx] | None = None) -> RecomputeReport:
    """Rebuild scores (or, with ``dry_run``, count what would change and write nothing at all).

    ``max_batches`` stops early (the run stays resumable); ``workers`` > 1 splits the leads over that many
    processes (PostgreSQL only, storage/recompute/workers.py). ``events`` hears each batch's quadrant
    changes in the batch's transaction; by default the quadrant actions of ``model``'s rules. With workers it
    is pickled to them, so its subscribers must be picklable (module-level functions, plain values).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    events = events if events is not None else standard_events(model.rules.actions)
    started = time.perf_counter()
    report = RecomputeReport(dry_run=dry_run)
    if not dry_run:
        report.run_id, report.resumed_from = await open_run(engine, model.fingerprint, restart=restart)
    # The whole run without the cyclic garbage collector (recompute_batch.no_gc): a command-line job that
    # allocates millions of short-lived acyclic objects; measured, its memory stays flat and the run is ~15%
    # faster.
    with no_gc():
        if workers > 1 and engine.dialect.name == "postgresql":
            from storage.recompute.workers import run_parallel

            await run_parallel(engine, model, report, now=now, batch_size=batch_size, max_batches=max_batches,
                               workers=workers, events=events)
        else:
            await run_batches(engine, model, report, now=now, batch_size=batch_size, max_batches=max_batches,
                              events=events)
    if report.finished and report.run_id is not None:
        await finish_run(engine, report.run_id)
    report.seconds = time.perf_counter() - started
    return report


async def run_batches(engine: AsyncEngine, model: ScoreModel, report: RecomputeReport, *, now: datetime,
                      batch_size: int, max_batches: int | None, events: DomainEvents[EventTx]) -> None:
    """Batch after batch in one process, from ``report.resumed_from`` on."""
    if engine.dialect.name == "postgresql":
        await _run_pg(engine, model, report, now=now, batch_size=batch_size, max_batches=max_batches, events=events)
        return
    after, done = report.resumed_from, 0
    async with engine.connect() as conn:
        batches = SqlBatches(conn, model, now=now, dry_run=report.dry_run, run_id=report.run_id, events=events)
        while max_batches is None or done < max_batches:
            result = await batches.run(after, batch_size)
            if result is None:
                report.finished = True
                return
            report.add(result)
            after, done = result.last_lead_id, done + 1


async def _run_pg(engine: AsyncEngine, model: ScoreModel, report: RecomputeReport, *, now: datetime,
                  batch_size: int, max_batches: int | None, events: DomainEvents[EventTx]) -> None:
    async with AsyncExitStack() as stack:
        snapshot = await stack.enter_async_context(Snapshot(engine))
        ranges = batch_ranges(report.resumed_from, await snapshot.plan(report.resumed_from, batch_size))
        if max_batches is not None:
            ranges = ranges[:max_batches]
        await snapshot.start(report.resumed_from, sorted(model.scored_kinds), detail_kinds(model))
        conns = [await paired(stack, engine) for _ in range(1 if report.dry_run else 2)]
        batches = PgBatches(conns, snapshot, model, now=now, dry_run=report.dry_run, run_id=report.run_id,
                            events=events)
        await batches.run_all([(k, lo, hi) for k, (lo, hi) in enumerate(ranges)], report.add)
        report.finished = bool(ranges) and ranges[-1][1] == NO_UPPER_BOUND


def batch_ranges(after: int, bounds: list[int]) -> list[tuple[int, int]]:
    """(lo, hi] lead id ranges of the batches; the last one is open-ended (leads created meanwhile)."""
    edges = [after, *bounds, NO_UPPER_BOUND]
    return list(itertools.pairwise(edges))


async def open_run(engine: AsyncEngine, fingerprint: str, *, restart: bool) -> tuple[int, int]:
    """The run to continue, or a new one: (run id, last lead id done)."""
    run, now = ScoreRecomputeRun, utcnow()  # bookkeeping times are wall-clock, not the scoring instant
    async with engine.begin() as conn:
        if restart:
            await conn.execute(update(run).where(run.status == RUNNING, run.rules == fingerprint)
                               .values(status=SUPERSEDED, finished_at=now))
        current = (await conn.execute(
            select(run.id, run.last_lead_id).where(run.status == RUNNING, run.rules == fingerprint)
            .order_by(run.id.desc()).limit(1))).first()
        if current is not None:
            return current.id, current.last_lead_id
        # Runs of other rules can never be resumed usefully: leads they skipped would keep newer rules' scores.
        await conn.execute(update(run).where(run.status == RUNNING).values(status=SUPERSEDED, finished_at=now))
        new_id = (await conn.execute(run.__table__.insert().values(
            rules=fingerprint, dry_run=False, status=RUNNING, last_lead_id=0, leads_seen=0, score_changes=0,
            quadrant_changes=0, stage_changes=0, started_at=now).returning(run.id))).scalar_one()
        return new_id, 0


async def finish_run(engine: AsyncEngine, run_id: int) -> None:
    run = ScoreRecomputeRun
    async with engine.begin() as conn:
        await conn.execute(update(run).where(run.id == run_id, run.status == RUNNING)
                           .values(status=FINISHED, finished_at=utcnow()))
