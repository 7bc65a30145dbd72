"""Per-recipient send limits shared by every process through Redis: sliding windows, one atomic Lua script.

WeCom accepts at most 30 app messages a minute and 1000 an hour per member and silently drops the excess,
so an error never tells us we were too fast: the only safe way is to count before sending. Each member has
a sorted set of the times slots were granted. Sliding windows, not fixed ones: fixed minute buckets would
allow 30 sends at 0:59 and 30 more at 1:00, which a sliding limit at WeCom would partly drop.

The caller passes ``now``: the outbox sender's clock (controllable in tests). Processes on several hosts
therefore need synchronised clocks (NTP), which they need anyway for WeChat's timestamp checks.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import redis.asyncio as aioredis

# KEYS: one sorted set per member. ARGV[1]: now (epoch seconds), ARGV[2]: a unique grant id, then pairs of
# (limit, window_s). All or nothing: a message to several members needs a free slot with each of them.
# Returns "" when the slots were taken, else the epoch time at which every member has a slot again.
_ACQUIRE = """
local now = tonumber(ARGV[1])
local longest = 0
for i = 3, #ARGV, 2 do
  longest = math.max(longest, tonumber(ARGV[i + 1]))
end
local wait_until = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.6f', now - longest))
  for i = 3, #ARGV, 2 do
    local limit, window = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
    local floor = '(' .. string.format('%.6f', now - window)
    local count = redis.call('ZCOUNT', key, floor, '+inf')
    if count >= limit then
      -- After the (count - limit + 1) oldest grants in the window have left it, one slot is free.
      local oldest = redis.call('ZRANGEBYSCORE', key, floor, '+inf', 'WITHSCORES', 'LIMIT', count - limit, 1)
      wait_until = math.max(wait_until, tonumber(oldest[2]) + window)
    end
  end
end
if wait_until > 0 then
  return string.format('%.6f', wait_until)
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[1], ARGV[2])
  redis.call('EXPIRE', key, math.ceil(longest) + 60)
end
return ''
"""


class MemberRateLimiter:
    """``acquire`` takes one slot per member, or says when to come back; nothing is ever dropped here."""

    def __init__(self, redis: aioredis.Redis, key_prefix: str, limits: Sequence[tuple[int, float]]) -> None:
        if not limits or any(limit < 1 or window <= 0 for limit, window in limits):
            raise ValueError(f"bad rate limits {limits!r}")
        self._prefix = key_prefix
        self._limits = [str(v) for limit, window in limits for v in (int(limit), float(window))]
        self._script = redis.register_script(_ACQUIRE)

    def key(self, member: str) -> str:
        return f"{self._prefix}{member}"

    async def acquire(self, members: Sequence[str], now: datetime) -> datetime | None:
        """None: a slot was taken with every member. Otherwise the time a retry can succeed (nothing taken)."""
        if not members:
            return None
        keys = [self.key(m) for m in sorted(set(members))]
        # A fresh id per grant: a retried send took a real slot the first time too, and both must count.
        args = [f"{now.timestamp():.6f}", uuid.uuid4().hex, *self._limits]
        raw = await self._script(keys=keys, args=args)
        text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
        if not text:
            return None
        return datetime.fromtimestamp(float(text), UTC)
