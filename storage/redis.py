"""Redis client from a URL; ``memory://`` gives an in-process stand-in with the same asyncio API."""

from __future__ import annotations

import fakeredis
import redis.asyncio as aioredis


def create_redis(url: str) -> aioredis.Redis:
    if url.startswith("memory://"):
        # fakeredis implements the Redis protocol in-process (Lua included, for locks); one server per
        # client keeps separate apps in one process apart.
        return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=False)
    return aioredis.Redis.from_url(url, decode_responses=False)
