"""The SLA timers' scheduler: APScheduler 3 with its SQLAlchemy job store on ``sla_timers``, run by one process.

Every process starts it paused (its job store is the shared table, so timers survive restarts and any process
may write them). The ``handoff_sla`` job (bot/jobs/builtin.py, cluster scope) runs only in the process holding
the cluster leader lock; each of its ticks resumes this scheduler there and wakes it, so timers other processes
wrote are seen within a tick. A process whose ticks stop (it lost the lock) pauses itself once its lease of
``LEASE_TICKS`` ticks runs out. A step that still runs twice in a hand-over is harmless: it takes effect under
the assignment's row lock only when the assignment has not reached it yet (bot/handoff/sla_steps.py).

The job store is synchronous (a sync engine: sqlite3, psycopg): its queries run in a worker thread, never on
the event loop. On SQLite that matters beyond latency: a sync write waiting on the event loop for a lock an
async transaction of the same loop holds would wait for the busy timeout, then fail.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC
from functools import partial
from typing import Any

from aiohttp import web
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING, STATE_STOPPED
from sqlalchemy import URL, Engine, create_engine, make_url

from bot.handoff.sla_steps import SlaContext
from bot.keys import CONFIG, EVENTS, JOBS, SESSIONS, SLA_RUNNER

log = logging.getLogger(__name__)

SLA_JOB = "handoff_sla"  # the registry's name for the runner (``[jobs] enabled``)
SLA_TICK_S = 5.0  # how late a timer another process wrote may fire, at most (plus a pass's duration)
LEASE_TICKS = 3  # a process that missed this many ticks is no longer the leader: it pauses its timers
STORE, EXECUTOR = "default", "sla"
_RETRY_S = 5.0  # after a failed pass (the database unreachable, a timer deleted under it)


def sync_url(url: str) -> URL:
    """The job store's synchronous URL for ``database.url``: SQLite through the stdlib driver, PostgreSQL
    through psycopg (asyncpg's ``ssl`` query parameter is libpq's ``sslmode``)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    if backend == "postgresql":
        query = dict(parsed.query)
        if "ssl" in query:
            query["sslmode"] = query.pop("ssl")
        return parsed.set(drivername="postgresql+psycopg", query=query)
    raise ValueError(f"no synchronous driver for the {backend!r} backend")


def sync_engine(url: str) -> Engine:
    # One connection is enough (one pass at a time); pre-ping: it idles between ticks. hide_parameters: as
    # storage/db.py, no bound value reaches a log line.
    connect_args = {"timeout": 10} if make_url(url).get_backend_name() == "sqlite" else {}
    return create_engine(sync_url(url), hide_parameters=True, pool_size=1, max_overflow=1, pool_pre_ping=True,
                         pool_recycle=1800, connect_args=connect_args)


class ContextExecutor(AsyncIOExecutor):
    """Runs each timer's coroutine on the app's loop with ``context`` as its first argument: the job store keeps
    a textual reference and plain ids, and the services reach the step through this object, not a global."""

    def __init__(self, context: Any) -> None:
        super().__init__()
        self.context = context
        self.tasks: set[asyncio.Task[list[JobExecutionEvent]]] = set()

    def shutdown(self, wait: bool = True) -> None:
        del wait  # the runner waits for self.tasks (bounded) before the scheduler shuts down

    def _do_submit_job(self, job: Job, run_times: list[Any]) -> None:
        # Called in the scheduler's worker thread (a pass): the task starts on the loop.
        self._eventloop.call_soon_threadsafe(self._start, job, run_times)

    def _start(self, job: Job, run_times: list[Any]) -> None:
        task = self._eventloop.create_task(self._run(job, run_times), name=f"sla-timer:{job.id}")
        self.tasks.add(task)
        task.add_done_callback(partial(self._finished, job))

    async def _run(self, job: Job, run_times: list[Any]) -> list[JobExecutionEvent]:
        # The pass that submitted this timer removes it from the store after submitting it: the step starts once
        # that is done, so a retry it stores under the same id (bot/handoff/sla_steps.py) is not removed too.
        if isinstance(self._scheduler, SlaScheduler):
            await self._scheduler.drain()
        events = []
        for run_time in run_times:  # coalesced: one
            try:
                value = await job.func(self.context, *job.args, **job.kwargs)
            except Exception as exc:
                log.exception("SLA timer %s failed", job.id)
                events.append(JobExecutionEvent(EVENT_JOB_ERROR, job.id, STORE, run_time, exception=exc))
            else:
                events.append(JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, STORE, run_time, retval=value))
        return events

    def _finished(self, job: Job, task: asyncio.Task[list[JobExecutionEvent]]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            self._run_job_error(job.id, asyncio.CancelledError(), None)
        else:
            self._run_job_success(job.id, task.result())


class SlaScheduler(AsyncIOScheduler):
    """AsyncIOScheduler whose passes over the job store (blocking SQL) run in a worker thread, one at a time."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._pass: asyncio.Task[None] | None = None
        self._again = False

    def wakeup(self) -> None:  # thread-safe, like the method it replaces
        loop = self._eventloop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._stop_timer()
        if self._pass is not None and not self._pass.done():
            self._again = True  # one more pass when this one ends: what woke us may be newer than its query
            return
        self._pass = self._eventloop.create_task(self._passes(), name="sla-scheduler")

    async def _passes(self) -> None:
        loop = asyncio.get_running_loop()
        wait: float | None = None
        while True:
            self._again = False
            try:
                wait = await loop.run_in_executor(None, self._process_jobs)
            except Exception:  # noqa: BLE001 - e.g. JobLookupError: another process removed a due timer first
                log.warning("SLA timers: a pass failed; retrying in %.0f s", _RETRY_S, exc_info=True)
                wait = _RETRY_S
            if not self._again:
                break
        if self.state == STATE_RUNNING:
            self._start_timer(wait)

    async def drain(self) -> None:
        """Wait for the pass in flight (if any)."""
        if self._pass is not None and not self._pass.done():
            await asyncio.wait({self._pass})


class SlaRunner:
    def __init__(self, context: Any, database_url: str, *, tick_s: float = SLA_TICK_S) -> None:
        self.engine = sync_engine(database_url)
        self.executor = ContextExecutor(context)
        self.lease_s = tick_s * LEASE_TICKS
        self._loop = asyncio.get_running_loop()
        self.scheduler = SlaScheduler(
            jobstores={STORE: SQLAlchemyJobStore(engine=self.engine, tablename="sla_timers")},
            executors={EXECUTOR: self.executor}, timezone=UTC, event_loop=self._loop)
        self._lease_until = 0.0
        self._expiry: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        """Paused: only the leader's ticks resume it. In a thread: the job store checks its table (SQL)."""
        await self._loop.run_in_executor(None, partial(self.scheduler.start, paused=True))

    @property
    def running(self) -> bool:
        return self.scheduler.state == STATE_RUNNING

    def tick(self) -> None:
        """The leader's pulse (the handoff_sla job): run the due timers, see those other processes wrote."""
        if self.scheduler.state == STATE_STOPPED:
            return
        self._lease_until = time.monotonic() + self.lease_s
        if self.scheduler.state == STATE_PAUSED:
            log.info("this process now runs the SLA timers")
            self.scheduler.resume()
        else:
            self.scheduler.wakeup()
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = self._loop.call_later(self.lease_s, self._expire)

    def _expire(self) -> None:
        if time.monotonic() >= self._lease_until and self.scheduler.state == STATE_RUNNING:
            log.info("no SLA tick for %.0f s (no longer the leader): this process pauses the SLA timers", self.lease_s)
            self.scheduler.pause()

    async def stop(self, wait_s: float) -> None:
        """No new steps; one running may finish (up to ``wait_s``, then it is cancelled); the store closes."""
        if self._expiry is not None:
            self._expiry.cancel()
        if self.scheduler.state == STATE_STOPPED:
            return
        self.scheduler.pause()
        await self.scheduler.drain()
        running = set(self.executor.tasks)
        if running:
            _, late = await asyncio.wait(running, timeout=wait_s)
            for task in late:
                log.warning("SLA step %s still running after %.0f s at shutdown: cancelled", task.get_name(), wait_s)
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=5.0)
        self.scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback
        await self._loop.run_in_executor(None, self.engine.dispose)


async def sla_ctx(app: web.Application) -> AsyncIterator[None]:
    """Before ``jobs_ctx`` in ``cleanup_ctx``: the ticks stop before the runner, the runner before the engine.
    No runner when ``[jobs] enabled`` leaves ``handoff_sla`` out (timers are still written, and run by the
    processes that have it)."""
    if not any(job.name == SLA_JOB for job in app[JOBS]):
        yield
        return
    cfg = app[CONFIG]
    runner = SlaRunner(SlaContext(sessions=app[SESSIONS], events=app[EVENTS], config=cfg), cfg.database.url)
    await runner.start()
    app[SLA_RUNNER] = runner
    try:
        yield
    finally:
        await runner.stop(cfg.jobs.shutdown_wait_s)
