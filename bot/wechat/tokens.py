"""Access tokens shared through Redis, with exactly one refresher at a time across all processes.

WeChat and WeCom invalidate the previous access token when a new one is issued, so two components that
refresh independently keep knocking each other's token out. Here only the holder of a Redis lock asks
WeChat for a token; everyone else waits for it and reads the shared copy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import LockError

from bot.errors import LeadRelayError

log = logging.getLogger(__name__)

# Delete the cached token only if it is still the one that failed: a caller holding an old token must
# not throw away the fresh copy another process has just stored.
_COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

TokenFetcher = Callable[[], Awaitable[tuple[str, int]]]


class TokenUnavailable(LeadRelayError, TimeoutError):
    """No access token could be obtained in time: another process holds the refresh lock and is stuck."""


class AccessTokenCache:
    """One access token in Redis under ``key``; ``fetch`` asks WeChat for a new one (token, expires_in).

    ``fetch`` is only ever called by the holder of the Redis lock ``key + ":lock"``, after re-reading
    the cache, so a token another process stored while we waited is used instead of refreshed.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        key: str,
        fetch: TokenFetcher,
        *,
        safety_margin_s: int = 300,
        lock_timeout_s: float = 30.0,
        wait_timeout_s: float | None = None,
        poll_interval_s: float = 0.05,
    ) -> None:
        self._redis = redis
        self.key = key
        self.lock_key = key + ":lock"
        self._fetch = fetch
        self._margin = safety_margin_s
        # The lock outlives a stuck holder by at most lock_timeout_s; waiters give up a little later.
        self._lock_timeout = lock_timeout_s
        self._wait_timeout = wait_timeout_s if wait_timeout_s is not None else lock_timeout_s + 5.0
        self._poll = poll_interval_s
        # Coroutines of this process queue here, so a cold cache costs one Redis lock attempt, not one each.
        self._local = asyncio.Lock()
        self._cad = redis.register_script(_COMPARE_AND_DELETE)

    async def get(self) -> str:
        token = await self._read()
        if token is not None:
            return token
        return await self.refresh()

    async def invalidate(self, token: str) -> bool:
        """Forget ``token`` if it is still the cached one; True when it was deleted."""
        return bool(await self._cad(keys=[self.key], args=[token]))

    async def refresh(self, stale: str | None = None) -> str:
        """A token other than ``stale``: the shared copy if someone refreshed already, else a new one."""
        async with self._local:
            token = await self._read()
            if token is not None and token != stale:
                return token
            return await self._refresh_across_processes(stale)

    async def _refresh_across_processes(self, stale: str | None) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_timeout
        while True:
            lock = self._redis.lock(self.lock_key, timeout=self._lock_timeout)
            if await lock.acquire(blocking=False):
                try:
                    # Re-check under the lock: the previous holder may have stored a token just now.
                    token = await self._read()
                    if token is not None and token != stale:
                        return token
                    return await self._fetch_and_store()
                finally:
                    try:
                        await lock.release()
                    except LockError:
                        # The lock expired while we fetched; the token we stored is still good.
                        log.warning("access token lock %s expired before release", self.lock_key)
            await asyncio.sleep(self._poll)
            token = await self._read()
            if token is not None and token != stale:
                return token
            if loop.time() >= deadline:
                raise TokenUnavailable(f"timed out waiting for the access token refresh of {self.key}")

    async def _fetch_and_store(self) -> str:
        token, expires_in = await self._fetch()
        # Cap the margin at half the lifetime so short-lived tokens are still cached.
        ttl = max(1, int(expires_in) - min(self._margin, int(expires_in) // 2))
        await self._redis.set(self.key, token, ex=ttl)
        log.info("refreshed access token %s (cached for %d s)", self.key, ttl)
        return token

    async def _read(self) -> str | None:
        raw = await self._redis.get(self.key)
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)
