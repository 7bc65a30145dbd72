"""Scheduling the enabled jobs (APScheduler) and the lifetime of it all: the app's ``jobs_ctx``.

APScheduler decides when; each run is a task of this runner's own, so shutdown can wait for it (APScheduler's
asyncio executor would cancel it) before the contexts cleaned up after this one dispose of the engine and
Redis. One run of a job at a time: a tick while it still runs is skipped. A cluster-wide job runs only in the
process holding the leader lock (bot/jobs/leader.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.jobs.leader import ClusterLeader
from bot.jobs.registry import CLUSTER, Job
from bot.keys import CONFIG, JOB_RUNNER, JOBS, REDIS, SCHEDULER

log = logging.getLogger(__name__)
_CANCELLED_WAIT_S = 5.0


class JobRunner:
    def __init__(self, jobs: Iterable[Job], leader: ClusterLeader | None, *, shutdown_wait_s: float) -> None:
        self.jobs = tuple(j for j in jobs if j.schedule() is not None)
        if leader is None and any(j.scope == CLUSTER for j in self.jobs):
            raise ValueError("cluster-wide jobs need a leader lock")
        self.leader = leader
        self.shutdown_wait_s = shutdown_wait_s
        self.scheduler = AsyncIOScheduler()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def start(self) -> None:
        for job in self.jobs:
            # Late (a busy loop) still runs, once: coalesced, never skipped for lateness.
            self.scheduler.add_job(self._fire, job.schedule(), args=[job], id=job.name, name=job.name,
                                   max_instances=1, coalesce=True, misfire_grace_time=None)
        if self.leader is not None:
            self.leader.start()
        self.scheduler.start()

    def running(self, name: str) -> bool:
        task = self._running.get(name)
        return task is not None and not task.done()

    async def _fire(self, job: Job) -> None:
        if self._stopping or (job.scope == CLUSTER and not (self.leader is not None and self.leader.holds())):
            return
        if self.running(job.name):
            log.info("job %s: the previous run is still going; this tick is skipped", job.name)
            return
        self._running[job.name] = asyncio.create_task(self._run(job), name=f"job:{job.name}")

    @staticmethod
    async def _run(job: Job) -> None:
        try:
            await job.run()
        except Exception:
            log.exception("job %s failed", job.name)

    async def stop(self) -> None:
        """No new runs; a running one may finish (up to ``shutdown_wait_s``, then it is cancelled); then the
        leader lock is handed over, not before: the next leader must not start what this one still runs."""
        self._stopping = True
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        running = [t for t in self._running.values() if not t.done()]
        if running:
            _, late = await asyncio.wait(running, timeout=self.shutdown_wait_s)
            for task in late:
                log.warning("%s still running after %.0f s at shutdown: cancelled", task.get_name(),
                            self.shutdown_wait_s)
                task.cancel()
            if late:  # bounded again: a job that swallows its cancellation must not hold the shutdown
                await asyncio.wait(late, timeout=_CANCELLED_WAIT_S)
        if self.leader is not None:
            await self.leader.stop()


async def jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the database, Redis and inbox contexts in ``cleanup_ctx``: cleaned up before them."""
    cfg = app[CONFIG]
    jobs = app[JOBS]
    leader = None
    if any(j.scope == CLUSTER and j.schedule() is not None for j in jobs):
        leader = ClusterLeader(app[REDIS], f"{cfg.redis.key_prefix}jobs:leader", cfg.jobs.leader_ttl_s)
    runner = JobRunner(jobs, leader, shutdown_wait_s=cfg.jobs.shutdown_wait_s)
    runner.start()
    app[JOB_RUNNER], app[SCHEDULER] = runner, runner.scheduler
    try:
        yield
    finally:
        await runner.stop()
