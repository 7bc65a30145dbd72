"""A mini-program submission is stored once, however often the client retries it.

With an idempotency key (body field ``idempotency_key`` or header ``Idempotency-Key``, 1–128 printable ASCII
characters, e.g. a UUID made when the visitor taps submit), the key's keyed hash (with the mini-program OpenID
and the form, so two visitors' keys never collide) goes into ``submission_keys`` in the submission's own
transaction: a retry, or a concurrent duplicate, finds it and gets the same success without a second
touchpoint. Without a key, the body itself is the key for ``KEYLESS_WINDOW_S``: an identical body from the same
OpenID to the same form within that window is answered as stored. Both live in the database, in the same
transaction as the submission, so an answer "stored" always means it was.

Concurrent duplicates (a client retrying while its first request still waits on WeChat's getPhoneNumber) are
serialised by a short Redis lock on the key: the retry waits for the first, then finds it stored — instead of
being refused because the first already spent the one-time phone code.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from redis.exceptions import LockError, RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.crypto.keyring import Purpose
from bot.keys import CONFIG, REDIS, SESSIONS
from bot.web.errors import ApiError
from storage.repos.submission_keys import claim_submission_key, submitted_lead

HEADER = "Idempotency-Key"
FIELD = "idempotency_key"
KEYLESS_WINDOW_S = 60  # a client's automatic retries come within seconds; a deliberate resend comes later
LOCK_TTL_S = 30  # longer than WeChat's phone-number call and the store together
LOCK_WAIT_S = 15  # a duplicate waits this long for the first request before it is told to retry
_KEY = re.compile(r"[\x21-\x7e]{1,128}")
log = logging.getLogger(__name__)


class SubmissionOnce:
    """The idempotency of one submission request: ``seen()`` before any work, ``then`` inside the store's
    transaction."""

    def __init__(self, request: web.Request, body: dict[str, Any], app_id: str, openid: str, form_id: str,
                 now: datetime) -> None:
        field, header = body.get(FIELD), request.headers.get(HEADER)
        if field is not None and (not isinstance(field, str) or not _KEY.fullmatch(field)) or \
                header is not None and not _KEY.fullmatch(header):
            raise ApiError(400, "bad_request", "幂等键 idempotency_key 须为 1 到 128 个可见 ASCII 字符")
        if field is not None and header is not None and field != header:
            raise ApiError(400, "bad_request", "请求体中的 idempotency_key 与 Idempotency-Key 请求头不一致")
        self.request = request
        self.now = now
        key = field if field is not None else header
        if key is None:
            key, self.since = "body:" + json.dumps(body, sort_keys=True, ensure_ascii=True), \
                now - timedelta(seconds=KEYLESS_WINDOW_S)
        else:
            key, self.since = "key:" + key, None
        self.key_hash = request.app[CONFIG].keyring.digest(Purpose.SUBMISSION_KEY,
                                                           "\n".join((app_id, openid, form_id, key)))

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Held while the submission is checked and stored: a concurrent duplicate waits here. Without Redis the
        database alone still stores it once (only a concurrent phone-code retry may then be refused)."""
        config = self.request.app[CONFIG]
        lock = self.request.app[REDIS].lock(f"{config.redis.key_prefix}mp:submit:{self.key_hash}",
                                            timeout=LOCK_TTL_S, sleep=0.05, blocking_timeout=LOCK_WAIT_S)
        try:
            acquired = await lock.acquire()
        except RedisError as exc:
            log.warning("submission lock unavailable, relying on the database alone: %s", type(exc).__name__)
            yield
            return
        if not acquired:
            raise ApiError(409, "in_progress", "相同的提交正在处理中，请稍后再试")
        try:
            yield
        finally:
            with suppress(LockError, RedisError):  # expired meanwhile: the database still stored it once
                await lock.release()

    async def seen(self) -> bool:
        """True when this submission is stored already; the caller answers success and stores nothing."""
        async with self.request.app[SESSIONS]() as session:
            return await submitted_lead(session, self.key_hash, since=self.since) is not None

    def then(self) -> Callable[[AsyncSession, int], Awaitable[None]]:
        """What runs in the submission's transaction: the key's row (AlreadySubmitted if a duplicate won)."""
        key_hash, since, now = self.key_hash, self.since, self.now

        async def claim(session: AsyncSession, lead_id: int) -> None:
            await claim_submission_key(session, key_hash, lead_id, now, since=since)

        return claim
