"""Fixed-window request counters in Redis, shared by every process.

One atomic MULTI/EXEC per request (SET NX PX starts a window, INCR counts, PTTL says when it ends): plain
commands that Redis and the embedded stand-in (fakeredis) both run, and no clock of ours involved, so processes
on several hosts agree without synchronised clocks. A fixed window lets a client send up to twice the limit
across a window boundary; for abuse limits that is fine, and it costs one key per client per window.

Keys hold no personal data: the IP or OpenID is a keyed hash (HMAC-SHA256 under a subkey of
``server.secret_key``), so Redis never shows who made a request, and addresses cannot be brute-forced back.

When Redis fails, requests are let through (fail open): a marketing campaign's lead capture must not stop
because the limiter's store is down (the forms need Redis for other things too and say so themselves). The
outage is logged once, and its end once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.config.limits import Rate

log = logging.getLogger(__name__)


class WindowCounter:
    def __init__(self, key_prefix: str, hash_key: bytes) -> None:
        self._prefix = f"{key_prefix}rl:"
        self._hash_key = hash_key
        self._failing = False

    def key(self, name: str, who: str) -> str:
        digest = hmac.new(self._hash_key, who.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        return f"{self._prefix}{name}:{digest[:32]}"

    async def hit(self, redis: aioredis.Redis, name: str, who: str, rate: Rate) -> int | None:
        """Count one request of ``who`` against limit ``name``. None: allowed; else whole seconds until the
        window ends (at least 1), for Retry-After."""
        key, window_ms = self.key(name, who), max(1, round(rate.window_s * 1000))
        try:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.set(key, 0, px=window_ms, nx=True)
                pipe.incr(key)
                pipe.pttl(key)
                _, count, ttl_ms = await pipe.execute()
            if ttl_ms < 0:  # a key without expiry (never written so here): give it one, never count forever
                await redis.pexpire(key, window_ms)
                ttl_ms = window_ms
        except (RedisError, OSError) as exc:
            if not self._failing:
                log.warning("rate limits are not enforced: Redis failed (%s); letting requests through",
                            type(exc).__name__)
            self._failing = True
            return None
        if self._failing:
            log.info("rate limits enforced again: Redis answers")
            self._failing = False
        if count <= rate.count:
            return None
        return max(1, math.ceil(ttl_ms / 1000))
