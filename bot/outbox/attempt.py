"""One send attempt of one outbox row: the rules, the rate limit, the call, and what the row becomes.

``Attempter.attempt`` never touches the database: the sender loads the row and the lead's facts, and
writes the returned ``Outcome`` back (with its follow-up row, if any) in its own transaction.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.exceptions import RedisError

from bot.config.outbound import OutboundConfig
from bot.errors import WeChatAPIError
from bot.outbox.methods import PERMANENT_ERRCODES, ApiClients, DeliveryFailed, OutboxMethod
from bot.outbox.rate_limit import MemberRateLimiter
from bot.outbox.rules import WINDOW_CLOSED_ERRCODE, FollowUp, LeadFacts, Verdict, is_marketing, judge, window_closed
from bot.wechat.clients import QUOTA_ERRCODE, WeChatTransportError
from bot.wechat.tokens import TokenUnavailable
from storage.models import OutboxMessage

log = logging.getLogger(__name__)

RETRYABLE = (WeChatTransportError, TokenUnavailable, RedisError, OSError, TimeoutError)


@dataclass(frozen=True)
class Outcome:
    status: str
    response: dict[str, Any] | None
    last_error: str | None
    sent_at: datetime | None
    next_attempt_at: datetime | None = None
    # A rule's decision or a wait for a rate-limit slot is not an attempt: it never reached WeChat.
    counts: bool = True
    follow_up: FollowUp | None = None


@dataclass
class Backoff:
    max_attempts: int = 8
    base_s: float = 5.0
    max_s: float = 3600.0
    quota_s: float = 60.0  # 45009: the quota will not be back in seconds
    jitter: float = 0.1


class Attempter:
    def __init__(self, apis: ApiClients, methods: dict[str, OutboxMethod], outbound: OutboundConfig,
                 limiter: MemberRateLimiter | None, backoff: Backoff) -> None:
        self._apis = apis
        self._methods = methods
        self.outbound = outbound
        self.limiter = limiter
        self.backoff = backoff

    async def attempt(self, row: OutboxMessage, facts: LeadFacts | None, now: datetime) -> Outcome:
        spec = self._methods.get(row.method)
        if spec is None:
            return Outcome("failed", None, f"unknown outbox method {row.method!r}", None)
        payload = dict(row.payload)
        deadline = _deadline(row, spec, payload)
        if deadline is not None and now > deadline:
            return Outcome("failed", None, "too late: the message expired before it could be sent", None)
        verdict = judge(spec, payload, facts, self.outbound, now, row.idempotency_key)
        if verdict is not None:
            return _decided(verdict, None, counts=False)
        attempts = row.attempts + 1
        try:
            if spec.rate_limited_by and self.limiter is not None:
                members = [m for m in str(payload.get(spec.rate_limited_by, "")).split("|") if m]
                free_at = await self.limiter.acquire(members, now)
                if free_at is not None:
                    if deadline is not None and free_at > deadline:
                        return Outcome("failed", None, "too late: no rate-limit slot before the deadline", None)
                    # Never dropped and not an attempt: the row simply waits for the slot.
                    return Outcome("pending", None, f"rate limit: waiting for a slot for {', '.join(members)}",
                                   None, next_attempt_at=free_at, counts=False)
            response = await spec.send(self._apis, payload)
        except WeChatAPIError as exc:
            return self._api_error(row, spec, payload, exc, attempts, deadline, now)
        except DeliveryFailed as exc:  # the CRM webhook: 5xx / timeouts retry, other 4xx never will
            cap = payload.get("max_attempts")  # the target's own budget (crm.max_attempts), else the sender's
            final = not exc.retryable or (isinstance(cap, int) and attempts >= cap)
            return self.retry_or_fail(row, attempts, exc.detail, str(exc), final, 0.0, deadline, now)
        except RETRYABLE as exc:
            return self.retry_or_fail(row, attempts, {}, f"{type(exc).__name__}: {exc}", False, 0.0, deadline, now)
        except Exception as exc:
            # A bug or a malformed payload: retrying would repeat it.
            log.exception("outbox row %s (%s) crashed its sender", row.id, row.method)
            return Outcome("failed", None, f"{type(exc).__name__}: {exc}", None)
        return Outcome("sent", response, None, now)

    def _api_error(self, row: OutboxMessage, spec: OutboxMethod, payload: dict[str, Any], exc: WeChatAPIError,
                   attempts: int, deadline: datetime | None, now: datetime) -> Outcome:
        error: dict[str, Any] = {"errcode": exc.errcode, "errmsg": exc.errmsg}
        if exc.errcode in spec.done_errcodes:
            # E.g. 41051 for a welcome code: an earlier attempt got through (we crashed or timed out after).
            log.info("outbox row %s (%s): %s, counted as sent", row.id, row.method, exc)
            return Outcome("sent", {**error, "note": "already sent (an earlier attempt got through)"}, None, now)
        if exc.errcode == WINDOW_CLOSED_ERRCODE and spec.service_window:
            why = "WeChat answered 45015: customer-service window closed"
            verdict = window_closed(payload, is_marketing(spec, payload), self.outbound, row.idempotency_key, why)
            return _decided(verdict, error, counts=True)
        permanent = exc.errcode in PERMANENT_ERRCODES
        floor = self.backoff.quota_s if exc.errcode == QUOTA_ERRCODE else 0.0
        return self.retry_or_fail(row, attempts, error, str(exc), permanent, floor, deadline, now)

    def retry_or_fail(self, row: OutboxMessage, attempts: int, error: dict[str, Any], message: str,
                      permanent: bool, floor_s: float, deadline: datetime | None, now: datetime) -> Outcome:
        b = self.backoff
        delay = min(b.base_s * 2 ** (attempts - 1), b.max_s)
        delay = max(delay, floor_s) * (1 + random.random() * b.jitter)
        next_at = now + timedelta(seconds=delay)
        if permanent or attempts >= b.max_attempts or (deadline is not None and next_at > deadline):
            log.warning("outbox row %s (%s) failed for good: %s", row.id, row.method, message)
            return Outcome("failed", error or None, message, None)
        log.info("outbox row %s (%s) attempt %d failed, retry in %.0f s: %s",
                 row.id, row.method, attempts, delay, message)
        return Outcome("pending", error or None, message, None, next_attempt_at=next_at)


def _decided(verdict: Verdict, response: dict[str, Any] | None, *, counts: bool) -> Outcome:
    log.info("outbox message %s: %s", verdict.status, verdict.reason)
    return Outcome(verdict.status, response, verdict.reason, None, counts=counts, follow_up=verdict.follow_up)


def _deadline(row: OutboxMessage, spec: OutboxMethod, payload: dict[str, Any]) -> datetime | None:
    deadlines = []
    if spec.max_age_s:
        deadlines.append(row.created_at + timedelta(seconds=spec.max_age_s))
    not_after = payload.get("not_after")
    if isinstance(not_after, int | float) and not isinstance(not_after, bool):
        deadlines.append(datetime.fromtimestamp(not_after, UTC))
    return min(deadlines) if deadlines else None
