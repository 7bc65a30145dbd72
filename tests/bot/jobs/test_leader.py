"""Cluster-wide jobs run in exactly one process (bot/jobs/leader.py): two schedulers sharing a Redis, the
lock taken by one, renewed while it lives, handed over when it stops, taken over when it dies. Embedded: two
leaders on one in-process Redis; production: two clients of the real one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.jobs.leader import ClusterLeader
from bot.jobs.registry import CLUSTER, PROCESS, Job
from bot.jobs.scheduler import JobRunner
from storage.redis import create_redis
from tests.support.backends import Backend

TIMEOUT_S = 10.0


@pytest.fixture
async def two_redis(backend: Backend) -> AsyncIterator[tuple[object, object]]:
    """Two processes' Redis clients: ``memory://`` is one server per client, so embedded shares one."""
    first = create_redis(backend.redis_url)
    second = create_redis(backend.redis_url) if backend.is_production else first
    yield first, second
    if backend.is_production:
        keys = [k async for k in first.scan_iter(match=backend.redis_prefix + "*")]
        if keys:
            await first.delete(*keys)
        await second.aclose()
    await first.aclose()


def leaders(backend: Backend, clients: tuple[object, object], ttl_s: float) -> tuple[ClusterLeader, ClusterLeader]:
    key = f"{backend.redis_prefix}jobs:leader"
    return ClusterLeader(clients[0], key, ttl_s), ClusterLeader(clients[1], key, ttl_s)


async def eventually(check: Callable[[], bool | Awaitable[bool]], what: str) -> float:
    """Poll until ``check`` holds; how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < TIMEOUT_S:
        result = check()
        if result if isinstance(result, bool) else await result:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {TIMEOUT_S} s: {what}")


async def test_one_takes_the_lock_the_other_does_not_and_only_the_owner_renews_or_releases(
        backend: Backend, two_redis: tuple[object, object]) -> None:
    a, b = leaders(backend, two_redis, ttl_s=30)
    assert await a.attempt() and a.holds()
    assert not await b.attempt() and not b.holds()
    assert await a.attempt()  # renewed, still its own
    await b.stop()  # not its lock: releasing it does nothing
    assert await a.attempt() and not await b.attempt()
    await a.stop()
    assert not a.holds()
    assert await b.attempt() and b.holds()  # handed over at once
    await b.stop()


async def test_a_dead_holders_lock_expires_and_another_takes_over(backend: Backend,
                                                                  two_redis: tuple[object, object]) -> None:
    dead, alive = leaders(backend, two_redis, ttl_s=0.6)
    assert await dead.attempt()  # then never renews: the process died
    assert not await alive.attempt()
    await eventually(lambda: not dead.holds(), "the dead holder stops trusting its lease")

    waited = await eventually(alive.attempt, "the other process takes the expired lock")

    assert alive.holds() and waited < 3.0
    assert not await dead.attempt()  # back from the dead: it does not lead
    await alive.stop()


def ticking(name: str, ticks: list[str], scope: str = CLUSTER) -> Job:
    async def tick() -> None:
        ticks.append(name)
    return Job("tick", tick, every_s=0.05, scope=scope)


async def test_of_two_schedulers_exactly_one_runs_a_cluster_job_and_hands_it_over_when_it_stops(
        backend: Backend, two_redis: tuple[object, object]) -> None:
    ticks: list[str] = []
    la, lb = leaders(backend, two_redis, ttl_s=1.0)
    a = JobRunner([ticking("a", ticks)], la, shutdown_wait_s=5)
    b = JobRunner([ticking("b", ticks)], lb, shutdown_wait_s=5)
    a.start()
    b.start()
    try:
        await eventually(lambda: len(ticks) >= 10, "ten ticks")
        first = ticks[0]
        assert set(ticks) == {first}  # one process only
        stopped, other = (a, "b") if first == "a" else (b, "a")

        await stopped.stop()
        count = len(ticks)
        await eventually(lambda: other in ticks[count:], "the other process takes the job over")

        assert set(ticks[count:]) == {other}  # the stopped one never ticks again
    finally:
        await a.stop()
        await b.stop()


async def test_a_process_job_runs_in_every_process(backend: Backend, two_redis: tuple[object, object]) -> None:
    ticks: list[str] = []
    la, lb = leaders(backend, two_redis, ttl_s=1.0)
    a = JobRunner([ticking("a", ticks, PROCESS)], la, shutdown_wait_s=5)
    b = JobRunner([ticking("b", ticks, PROCESS)], lb, shutdown_wait_s=5)
    a.start()
    b.start()
    try:
        await eventually(lambda: {"a", "b"} <= set(ticks), "both processes tick")
    finally:
        await a.stop()
        await b.stop()


async def test_stopping_right_after_starting_stops_even_with_an_attempt_in_flight(
        backend: Backend, two_redis: tuple[object, object]) -> None:
    # redis-py may swallow a cancellation that lands mid-command: stopping must not depend on it.
    key = f"{backend.redis_prefix}jobs:leader"
    for i in range(20):
        leader = ClusterLeader(two_redis[0], key, ttl_s=0.3)  # a loop left running would retake it in 0.1 s
        leader.start()
        await asyncio.sleep(0.0005 * (i % 5))
        stopped, _ = await asyncio.wait({asyncio.ensure_future(leader.stop())}, timeout=2.0)  # no cancelling
        assert stopped and not leader.holds()
    await asyncio.sleep(0.5)
    assert await two_redis[1].get(key) is None  # released, and nobody renews it
