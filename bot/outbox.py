"""The outbox: every outbound WeChat / WeCom send is first a row, then (live mode only) a call.

``enqueue`` writes the row inside the caller's transaction, so a send exists exactly when the business
change that caused it was committed. In sandbox mode the row is "sandboxed" and never sent. In live mode
``OutboxSender`` sends "pending" rows: "sent" on success, retried with exponential backoff on failure,
"failed" after ``max_attempts`` or on an error no retry can fix.

Delivery is at least once: a crash (or an HTTP timeout) after WeChat acted but before the row is marked
"sent" sends it again, since WeChat's send APIs take no idempotency key.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import Select, null, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.errors import WeChatAPIError
from bot.outbox_methods import METHODS, PERMANENT_ERRCODES, ApiClients, OutboxMethod
from bot.tokens import TokenUnavailable
from bot.wechat_client import QUOTA_ERRCODE, WeChatTransportError
from storage.db import session_factory
from storage.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

_RETRYABLE = (WeChatTransportError, TokenUnavailable, RedisError, OSError, TimeoutError)


async def enqueue(session: AsyncSession, *, target: str, method: str, payload: dict[str, Any],
                  idempotency_key: str, sandbox: bool) -> int | None:
    """Record an outbound call; its id, or None when ``idempotency_key`` was already used."""
    spec = METHODS.get(method)
    if spec is None:
        raise ValueError(f"unknown outbox method {method!r}")
    if spec.target != target:
        raise ValueError(f"outbox method {method!r} belongs to target {spec.target!r}, not {target!r}")
    missing = [key for key in spec.required if key not in payload]
    if missing:
        raise ValueError(f"outbox method {method!r} needs payload keys {missing}")
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = OutboxMessage.__table__
    stmt = (
        insert(table)
        .values(idempotency_key=idempotency_key, target=target, method=method, payload=payload,
                status="sandboxed" if sandbox else "pending", attempts=0, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(table.c.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True)
class _Outcome:
    status: str
    response: dict[str, Any] | None
    last_error: str | None
    sent_at: datetime | None
    next_attempt_at: datetime | None = None


class OutboxSender:
    """Sends pending rows; several processes may run one each on PostgreSQL, one per SQLite database."""

    def __init__(self, engine: AsyncEngine, apis: ApiClients, *, methods: dict[str, OutboxMethod] | None = None,
                 max_attempts: int = 8, backoff_base_s: float = 5.0, backoff_max_s: float = 3600.0,
                 quota_backoff_s: float = 60.0, jitter: float = 0.1, concurrency: int = 4,
                 poll_interval_s: float = 1.0, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = session_factory(engine)
        self._locking = engine.dialect.name == "postgresql"
        self._apis = apis
        self._methods = methods if methods is not None else METHODS
        self._targets = sorted(apis.targets)
        self.max_attempts = max_attempts
        self._backoff_base = backoff_base_s
        self._backoff_max = backoff_max_s
        self._quota_backoff = quota_backoff_s
        self._jitter = jitter
        self._concurrency = concurrency
        self._poll = poll_interval_s
        self._clock = clock
        self._inflight: set[int] = set()  # SQLite only: rows this process is sending right now
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for work now (e.g. right after committing a welcome message, which expires in 20 s)."""
        self._wake.set()

    async def run(self) -> None:
        """Send until cancelled."""
        while True:
            self._wake.clear()
            limit = 100
            try:
                done = await self.run_once(limit)
            except Exception:
                log.exception("outbox pass failed")
                done = 0
            if done < limit:
                try:
                    await asyncio.wait_for(self._wake.wait(), self._poll)
                except TimeoutError:
                    pass

    async def run_once(self, limit: int = 100) -> int:
        """Attempt up to ``limit`` due rows; how many were attempted."""
        if not self._targets:
            return 0
        budget, done = limit, 0

        async def worker() -> None:
            nonlocal budget, done
            while budget > 0:
                budget -= 1
                if not await self._process_next():
                    return
                done += 1

        results = await asyncio.gather(*(worker() for _ in range(self._concurrency)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return done

    def _due(self, limit: int) -> Select[tuple[OutboxMessage]]:
        now = self._clock()
        return (
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.target.in_(self._targets),
                   or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now))
            .order_by(OutboxMessage.id)
            .limit(limit)
        )

    async def _process_next(self) -> bool:
        if self._locking:
            # The row lock is held while sending: a crashed sender's rows unlock at once, and no
            # second process can pick a row up between our claim and our update.
            async with self._sessions() as session, session.begin():
                row = (await session.execute(self._due(1).with_for_update(skip_locked=True))).scalar()
                if row is None:
                    return False
                self._apply(row, await self._attempt(row))
            return True
        # SQLite has one writer and one pooled connection: never hold it across an HTTP call.
        async with self._sessions() as session, session.begin():
            rows = (await session.execute(self._due(self._concurrency + 1))).scalars().all()
        row = next((r for r in rows if r.id not in self._inflight), None)
        if row is None:
            return False
        self._inflight.add(row.id)
        try:
            outcome = await self._attempt(row)
            async with self._sessions() as session, session.begin():
                fresh = await session.get(OutboxMessage, row.id)
                if fresh is not None:
                    self._apply(fresh, outcome)
        finally:
            self._inflight.discard(row.id)
        return True

    async def _attempt(self, row: OutboxMessage) -> _Outcome:
        now = self._clock()
        attempts = row.attempts + 1
        spec = self._methods.get(row.method)
        if spec is None:
            return _Outcome("failed", None, f"unknown outbox method {row.method!r}", None)
        deadline = row.created_at + timedelta(seconds=spec.max_age_s) if spec.max_age_s else None
        if deadline is not None and now > deadline:
            return _Outcome("failed", None, "too late: the message expired before it could be sent", None)
        try:
            response = await spec.send(self._apis, dict(row.payload))
        except WeChatAPIError as exc:
            error = {"errcode": exc.errcode, "errmsg": exc.errmsg}
            permanent = exc.errcode in PERMANENT_ERRCODES
            floor = self._quota_backoff if exc.errcode == QUOTA_ERRCODE else 0.0
            return self._retry_or_fail(row, attempts, error, str(exc), permanent, floor, deadline)
        except _RETRYABLE as exc:
            return self._retry_or_fail(row, attempts, {}, f"{type(exc).__name__}: {exc}", False, 0.0, deadline)
        except Exception as exc:
            # A bug or a malformed payload: retrying would repeat it.
            log.exception("outbox row %s (%s) crashed its sender", row.id, row.method)
            return _Outcome("failed", None, f"{type(exc).__name__}: {exc}", None)
        return _Outcome("sent", response, None, self._clock())

    def _retry_or_fail(self, row: OutboxMessage, attempts: int, error: dict[str, Any], message: str,
                       permanent: bool, floor_s: float, deadline: datetime | None) -> _Outcome:
        delay = min(self._backoff_base * 2 ** (attempts - 1), self._backoff_max)
        delay = max(delay, floor_s) * (1 + random.random() * self._jitter)
        next_at = self._clock() + timedelta(seconds=delay)
        if permanent or attempts >= self.max_attempts or (deadline is not None and next_at > deadline):
            log.warning("outbox row %s (%s) failed for good: %s", row.id, row.method, message)
            return _Outcome("failed", error or None, message, None)
        log.info("outbox row %s (%s) attempt %d failed, retry in %.0f s: %s",
                 row.id, row.method, attempts, delay, message)
        return _Outcome("pending", error or None, message, None, next_attempt_at=next_at)

    @staticmethod
    def _apply(row: OutboxMessage, outcome: _Outcome) -> None:
        row.attempts += 1
        row.status = outcome.status
        # SQL NULL, not JSON null, so "no response" reads the same on both backends.
        row.response = outcome.response if outcome.response is not None else null()
        row.last_error = outcome.last_error
        row.next_attempt_at = outcome.next_attempt_at
        if outcome.sent_at is not None:
            row.sent_at = outcome.sent_at
