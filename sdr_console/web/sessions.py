"""Console sign-in sessions, kept server-side in Redis.

The browser holds only an opaque random id (HttpOnly cookie). Redis holds the session under a keyed hash of
that id (HMAC under the CONSOLE_SESSION subkey of ``server.secret_key``), so a copy of Redis names no cookie
that could be replayed. A session stores the user's id, its CSRF token and two times: sign-in (absolute
expiry, ``console.session_max_s``) and last use (idle expiry, ``console.session_idle_s``). Times are wall
clock seconds, shared by every process; Redis's own TTL removes what nobody reads again.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.config.console import ConsoleConfig
from bot.crypto.keyring import KeyRing, Purpose

COOKIE_NAME = "lr_console"
# The whole site: the console's pages (/console/) and the JSON API (/api/) they call with the same session.
COOKIE_PATH = "/"
_ID_BYTES = 32
_MAX_COOKIE_LEN = 128


@dataclass(frozen=True, slots=True)
class Session:
    user_id: int
    csrf: str
    created: float
    seen: float


class SessionStore:
    def __init__(self, redis: aioredis.Redis, key_prefix: str, keyring: KeyRing, config: ConsoleConfig) -> None:
        self._redis, self._prefix, self._ring, self._cfg = redis, f"{key_prefix}console:session:", keyring, config

    def _keys(self, sid: str) -> list[str]:
        # Every key of the ring: a session opened before a key rotation still finds its entry.
        return [self._prefix + d for d in self._ring.digests(Purpose.CONSOLE_SESSION, sid)]

    def _ttl_ms(self, session: Session, now: float) -> int:
        left = min(self._cfg.session_idle_s, session.created + self._cfg.session_max_s - now)
        return max(1, int(left * 1000))

    async def _write(self, key: str, session: Session, now: float, *, touch: bool = False) -> None:
        body = json.dumps({"u": session.user_id, "c": session.csrf, "t0": session.created, "t": session.seen})
        # A touch only updates (XX): a sign-out that deleted the session meanwhile is never undone by it.
        await self._redis.set(key, body, px=self._ttl_ms(session, now), xx=touch)

    async def create(self, user_id: int) -> tuple[str, Session]:
        """A new session (a new id every sign-in: an id planted before sign-in is never promoted)."""
        sid, now = secrets.token_urlsafe(_ID_BYTES), time.time()
        session = Session(user_id=user_id, csrf=secrets.token_urlsafe(_ID_BYTES), created=now, seen=now)
        await self._write(self._keys(sid)[0], session, now)
        return sid, session

    async def load(self, sid: str | None) -> Session | None:
        """The live session of a cookie value, its last use moved to now; None when absent or expired."""
        if not sid or len(sid) > _MAX_COOKIE_LEN or not sid.isascii():
            return None
        now = time.time()
        for key in self._keys(sid):
            raw = await self._redis.get(key)
            if raw is None:
                continue
            try:
                data = json.loads(raw)
                session = Session(int(data["u"]), str(data["c"]), float(data["t0"]), float(data["t"]))
            except (ValueError, KeyError, TypeError):
                await self._redis.delete(key)
                return None
            if now - session.seen > self._cfg.session_idle_s or now - session.created > self._cfg.session_max_s:
                await self._redis.delete(key)
                return None
            session = Session(session.user_id, session.csrf, session.created, now)
            await self._write(key, session, now, touch=True)
            return session
        return None

    async def delete(self, sid: str | None) -> None:
        if sid and len(sid) <= _MAX_COOKIE_LEN and sid.isascii():
            await self._redis.delete(*self._keys(sid))
