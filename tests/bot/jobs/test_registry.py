"""The job registry (bot/jobs): jobs and ``[jobs]`` are checked at start-up, a job left out of ``enabled``
never runs, one run of a job at a time, and shutdown lets a running job finish (bounded) before the engine
and Redis go."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jieba
import pytest
from aiohttp import web
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select, text

from bot.app import create_app, database_ctx, inbox_ctx, redis_ctx
from bot.config.core import build_config
from bot.errors import ConfigError
from bot.jobs.registry import CLUSTER, Job, enabled_jobs
from bot.jobs.scheduler import JobRunner, jobs_ctx
from bot.keys import ENGINE, JOB_RUNNER, JOBS, SCHEDULER, SESSIONS
from storage.models import Lead, SubmissionKey, utcnow
from tests.support.backends import Backend
from tests.support.helpers import make_config

TIMEOUT_S = 10.0
BUILTIN = ["inbox_sweep", "score_refresh", "content_refresh", "submission_keys_prune", "handoff_sla",
           "customer_transfer_poll", "batch_messages", "task_reminders", "journey_steps", "journey_inactive_sweep"]


async def nothing() -> None:
    return None


async def eventually(check: Callable[[], bool], what: str) -> None:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > TIMEOUT_S:
            raise AssertionError(f"not within {TIMEOUT_S} s: {what}")
        await asyncio.sleep(0.02)


def config(**jobs: Any):
    return build_config({"wechat": {"app_id": "wx1", "token": "t"}, "jobs": jobs})


@pytest.mark.parametrize(("raw", "key", "message"), [
    ({"enabled": "score_refresh"}, "jobs.enabled", "list of strings"),
    ({"enabled": ["score_refresh", "score_refresh"]}, "jobs.enabled", "twice"),
    ({"enabled": [""]}, "jobs.enabled", "empty"),
    ({"leader_ttl_s": 0.5}, "jobs.leader_ttl_s", "at least 1"),
    ({"shutdown_wait_s": -1}, "jobs.shutdown_wait_s", "0 or more"),
    ({"enable": ["score_refresh"]}, "jobs.enable", "unknown key"),
])
def test_the_jobs_section_is_checked_naming_the_key(raw: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        config(**raw)
    assert caught.value.key == key


def test_an_unknown_job_name_fails_start_up_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="unknown job 'score_refesh'") as caught:
        create_app(config(enabled=["score_refesh"]))
    assert caught.value.key == "jobs.enabled"
    assert ", ".join(BUILTIN) in str(caught.value)


def test_every_registered_job_is_enabled_by_default_and_enabled_keeps_registration_order() -> None:
    assert [j.name for j in create_app(config())[JOBS]] == BUILTIN
    assert [j.name for j in create_app(config(enabled=["content_refresh", "inbox_sweep"]))[JOBS]] == [
        "inbox_sweep", "content_refresh"]
    assert create_app(config(enabled=[]))[JOBS] == ()
    jobs = [Job("a", nothing, every_s=1), Job("a", nothing, every_s=2)]
    with pytest.raises(ValueError, match="registered twice"):
        enabled_jobs(jobs, None)


def test_a_job_has_a_name_one_schedule_and_a_scope() -> None:
    for bad in ({"name": "Score-Refresh", "every_s": 1}, {"name": "x", "every_s": 0},
                {"name": "x", "every_s": 1, "trigger": IntervalTrigger(seconds=1)},
                {"name": "x", "every_s": 1, "scope": "everywhere"}):
        with pytest.raises(ValueError):
            Job(run=nothing, **bad)
    assert Job("off", nothing).schedule() is None  # registered, off by its own configuration
    assert isinstance(Job("on", nothing, trigger=IntervalTrigger(seconds=5)).schedule(), IntervalTrigger)
    with pytest.raises(ValueError, match="leader"):
        JobRunner([Job("c", nothing, every_s=1, scope=CLUSTER)], None, shutdown_wait_s=1)


async def test_a_job_left_out_of_enabled_never_runs() -> None:
    runs: list[str] = []

    def job(name: str) -> Job:
        async def run() -> None:
            runs.append(name)
        return Job(name, run, every_s=0.05)

    runner = JobRunner(enabled_jobs([job("wanted"), job("unwanted")], ("wanted",)), None, shutdown_wait_s=1)
    runner.start()
    try:
        await eventually(lambda: runs.count("wanted") >= 5, "five runs of the enabled job")
    finally:
        await runner.stop()
    assert set(runs) == {"wanted"}
    assert runner.scheduler.get_job("unwanted") is None


async def test_one_run_at_a_time_and_a_failing_run_does_not_stop_the_schedule() -> None:
    active, most, runs = 0, 0, 0

    async def slow_and_failing() -> None:
        nonlocal active, most, runs
        active, runs = active + 1, runs + 1
        most = max(most, active)
        try:
            await asyncio.sleep(0.15)
            raise RuntimeError("this run fails")
        finally:
            active -= 1

    runner = JobRunner([Job("slow", slow_and_failing, every_s=0.02)], None, shutdown_wait_s=1)
    runner.start()
    try:
        await eventually(lambda: runs >= 3, "three runs")
    finally:
        await runner.stop()
    assert most == 1


async def test_shutdown_waits_for_a_running_job_and_cancels_one_that_takes_too_long() -> None:
    started, finished, cancelled = asyncio.Event(), [], []

    async def work(seconds: float) -> None:
        started.set()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            cancelled.append(seconds)
            raise
        finished.append(seconds)

    runner = JobRunner([Job("work", lambda: work(0.4), every_s=0.05)], None, shutdown_wait_s=10)
    runner.start()
    await asyncio.wait_for(started.wait(), TIMEOUT_S)
    await runner.stop()
    assert (finished, cancelled) == ([0.4], [])  # stop returned only once the run had finished

    started.clear()
    runner = JobRunner([Job("work", lambda: work(60), every_s=0.05)], None, shutdown_wait_s=0.2)
    runner.start()
    await asyncio.wait_for(started.wait(), TIMEOUT_S)
    begun = time.monotonic()
    await runner.stop()
    assert cancelled == [60] and time.monotonic() - begun < 5


def test_jobs_are_cleaned_up_before_the_inbox_redis_and_the_engine() -> None:
    ctx = list(create_app(config()).cleanup_ctx)
    assert ctx.index(jobs_ctx) > max(ctx.index(database_ctx), ctx.index(redis_ctx), ctx.index(inbox_ctx))


async def test_the_app_schedules_its_enabled_jobs_and_its_shutdown_lets_a_running_one_finish(
        backend: Backend, jieba_base: jieba.Tokenizer) -> None:
    app = create_app(make_config(backend, jobs={"enabled": ["inbox_sweep", "score_refresh"]}), jieba_base=jieba_base)
    started, queried = asyncio.Event(), []

    async def probe() -> None:  # a job still using the engine while the app shuts down
        started.set()
        await asyncio.sleep(0.3)
        async with app[ENGINE].connect() as conn:
            queried.append((await conn.execute(text("SELECT 1"))).scalar_one())

    app[JOBS] = (*app[JOBS], Job("probe", probe, every_s=0.05))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        scheduled = sorted(j.id for j in app[SCHEDULER].get_jobs())
        assert scheduled == ["inbox_sweep", "probe", "score_refresh"]
        await eventually(lambda: app[JOB_RUNNER].leader is not None and app[JOB_RUNNER].leader.holds(),
                         "the only process leads")
        await asyncio.wait_for(started.wait(), TIMEOUT_S)
    finally:
        await runner.cleanup()
    assert queried == [1]  # finished, not cancelled, before the engine was disposed


async def test_the_prune_job_forgets_submission_keys_older_than_a_day(app_client) -> None:
    client = await app_client()
    app = client.server.app
    sessions, now = app[SESSIONS], utcnow()
    async with sessions() as session, session.begin():
        lead = Lead()
        session.add(lead)
        await session.flush()
        session.add_all([
            SubmissionKey(key_hash="o" * 64, lead_id=lead.id, created_at=now - timedelta(days=1, seconds=1)),
            SubmissionKey(key_hash="n" * 64, lead_id=lead.id, created_at=now - timedelta(hours=23))])
    (prune,) = [j for j in app[JOBS] if j.name == "submission_keys_prune"]
    await prune.run()
    async with sessions() as session:
        assert list((await session.execute(select(SubmissionKey.key_hash))).scalars()) == ["n" * 64]
