"""``leadrelay scores recompute --workers N`` on PostgreSQL: the batches shared round-robin by N processes.

The scoring is pure Python and one process keeps one core busy; PostgreSQL has work of its own (the sort,
the writes). Each worker streams only its own batches' touchpoints (storage/recompute/stream.py) and runs
them exactly as a single process would, with one addition that keeps the run's progress a prefix of the
batches: a batch commits only after the one before it (the other worker's) has, so an interrupted run never
leaves a gap and resumes as usual. A worker that fails stops the others (their open batches roll back).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from leads.events import DomainEvents
from leads.scoring import ScoreModel
from leads.scoring_rules import ScoringRules
from storage.recompute.batch import BatchResult, detail_kinds, no_gc
from storage.recompute.pg import NO_UPPER_BOUND, PgBatches
from storage.recompute.stream import Snapshot, paired
from storage.repos.events import EventTx


@dataclass(frozen=True)
class Job:
    url: str
    rules: ScoringRules
    now: datetime
    dry_run: bool
    run_id: int | None
    after: int
    bounds: list[int]  # batch k is (edges[k], edges[k + 1]], edges = [after, *bounds, no upper bound]
    batches: int  # how many of them to run (max_batches)
    worker: int
    workers: int
    events: DomainEvents[EventTx]  # pickled: its subscribers run in this worker's batch transactions


async def run_parallel(engine: AsyncEngine, model: ScoreModel, report: Any, *, now: datetime, batch_size: int,
                       max_batches: int | None, workers: int, events: DomainEvents[EventTx]) -> None:
    from storage.recompute.run import batch_ranges, run_batches

    async with engine.connect() as conn:  # plan on the current data; each worker then takes its snapshot
        pg = (await conn.get_raw_connection()).driver_connection
        bounds = [r[0] for r in await pg.fetch(
            "SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM leads WHERE id > $1 "
            "AND merged_into_id IS NULL) AS x WHERE n % $2 = 0 ORDER BY id", report.resumed_from, batch_size)]
    ranges = batch_ranges(report.resumed_from, bounds)
    count = len(ranges) if max_batches is None else min(max_batches, len(ranges))
    workers = min(workers, count)
    if workers < 2:
        await run_batches(engine, model, report, now=now, batch_size=batch_size, max_batches=max_batches,
                          events=events)
        return
    url = engine.url.render_as_string(hide_password=False)
    jobs = [Job(url, model.rules, now, report.dry_run, report.run_id, report.resumed_from, bounds, count, w, workers,
                events) for w in range(workers)]
    for result in await _run_processes(jobs):
        report.add(result)
    report.finished = ranges[count - 1][1] == NO_UPPER_BOUND


async def _run_processes(jobs: list[Job]) -> list[BatchResult]:
    # spawn, not fork: the parent has an event loop and open connections a child must not inherit.
    ctx = multiprocessing.get_context("spawn")
    pipes = [ctx.Pipe(duplex=False) for _ in jobs]
    procs = [ctx.Process(target=_main, args=(job, send), daemon=True) for job, (_, send) in zip(jobs, pipes,
                                                                                                  strict=True)]
    for proc in procs:
        proc.start()
    results: dict[int, BatchResult] = {}
    try:
        while len(results) < len(procs):
            for i, (proc, (recv, _)) in enumerate(zip(procs, pipes, strict=True)):
                if i in results:
                    continue
                if recv.poll():
                    outcome = recv.recv()
                    if isinstance(outcome, BaseException):
                        raise outcome
                    results[i] = outcome
                elif not proc.is_alive():
                    raise RuntimeError(f"recompute worker {i} exited with status {proc.exitcode}")
            await asyncio.sleep(0.05)
    finally:
        for proc in procs:  # the ones still running after a failure: their open batch rolls back
            if proc.is_alive():
                proc.terminate()
            proc.join()
    return [results[i] for i in range(len(procs))]


def _main(job: Job, send: Any) -> None:
    try:
        with no_gc():  # as in the parent (storage/recompute/run.py)
            result = asyncio.run(_work(job))
        send.send(result)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which re-raises it
        send.send(RuntimeError(f"recompute worker {job.worker}: {exc!r}"))
        raise


async def _work(job: Job) -> BatchResult:
    from storage.db import create_engine
    from storage.recompute.run import batch_ranges
    from storage.settings import DatabaseConfig

    engine = create_engine(DatabaseConfig(url=job.url, pool_size=4))
    model = ScoreModel(job.rules)
    total = BatchResult()
    try:
        async with AsyncExitStack() as stack:
            snapshot = await stack.enter_async_context(Snapshot(engine))
            await snapshot.start(job.after, sorted(model.scored_kinds), detail_kinds(model),
                                 bounds=[job.after, *job.bounds], worker=job.worker, workers=job.workers)
            conns = [await paired(stack, engine) for _ in range(1 if job.dry_run else 2)]
            batches = PgBatches(conns, snapshot, model, now=job.now, dry_run=job.dry_run, run_id=job.run_id,
                                events=job.events, ordered=True)
            mine = [(k, lo, hi) for k, (lo, hi) in enumerate(batch_ranges(job.after, job.bounds)[:job.batches])
                    if k % job.workers == job.worker]
            await batches.run_all(mine, total.add)
    finally:
        await engine.dispose()
    return total
