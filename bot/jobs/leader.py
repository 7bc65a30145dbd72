"""Which process of the cluster runs the cluster-wide jobs: the one holding a Redis lock.

``SET key token NX PX ttl`` takes the lock; the holder renews it every third of the TTL (only while the value
is still its own token: a script checks and extends in one step) and deletes it on shutdown (the same check),
so another process takes over at its next attempt. A holder that dies stops renewing: the key expires after
the TTL and another process takes it. The holder trusts its lease for most of the TTL from the attempt that
last renewed it: cut off from Redis, it stops counting itself the leader before the key can expire and
another process take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_TRUST = 0.8  # of the TTL: two renewals may fail before this process stops leading, and it stops before expiry
_STOP_WAIT_S = 5.0  # for an attempt in flight at shutdown (a Redis round trip)


class ClusterLeader:
    def __init__(self, redis: Any, key: str, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.key = key
        self.ttl_s = ttl_s
        self.token = secrets.token_hex(16)  # this process's claim; no other process can renew or release it
        self._clock = clock
        self._until = 0.0  # the lease is trusted until then (clock time)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def holds(self) -> bool:
        return self._clock() < self._until

    async def attempt(self) -> bool:
        """Renew the lock if it is ours, take it if it is free; whether this process leads now."""
        started = self._clock()
        ttl_ms = max(1, round(self.ttl_s * 1000))
        ours = await self.redis.eval(_RENEW, 1, self.key, self.token, ttl_ms) == 1
        if not ours:
            ours = bool(await self.redis.set(self.key, self.token, nx=True, px=ttl_ms))
        if ours:
            if not self.holds():
                log.info("this process now runs the cluster-wide jobs (lock %s)", self.key)
            self._until = started + self.ttl_s * _TRUST
        elif self._until:
            log.warning("lock %s is held by another process: this one no longer runs cluster-wide jobs", self.key)
            self._until = 0.0
        return ours

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep(), name=f"leader:{self.key}")

    async def stop(self) -> None:
        """Stop renewing and hand the lock over (another process takes it at its next attempt)."""
        if self._task is not None:
            # Asked, not cancelled: redis-py can swallow a cancellation that lands mid-command, and the loop
            # would go on renewing the lock this process is about to give up.
            self._stopping.set()
            done, _ = await asyncio.wait({self._task}, timeout=_STOP_WAIT_S)
            if not done:
                self._task.cancel()
            self._task = None
        was_leading, self._until = self.holds(), 0.0
        try:
            await self.redis.eval(_RELEASE, 1, self.key, self.token)
        except Exception:  # noqa: BLE001 - shutting down: the key expires by itself
            log.warning("could not release lock %s; it expires in %.0f s", self.key, self.ttl_s, exc_info=True)
        else:
            if was_leading:
                log.info("lock %s released: another process takes over the cluster-wide jobs", self.key)

    async def _keep(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.attempt()
            except Exception:  # noqa: BLE001 - Redis unreachable: retry; the lease runs out by itself
                log.warning("lock %s: attempt failed", self.key, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.ttl_s / 3)
