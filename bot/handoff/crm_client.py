"""The CRM webhook's HTTP client: one signed POST per outbox attempt (bot/outbox, method "crm.lead_accepted").

2xx: delivered. 408, 429 and 5xx, timeouts and connection errors: retried by the outbox with backoff. Any
other answer (4xx: the receiver refuses the request as it is) fails for good: the same body would be refused
again. Each attempt is signed afresh (a new timestamp, the same idempotency key). The URL may hold a token of
the receiver's: it is never logged, nor is the body (the lead's phone and e-mail are in it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from bot.config.handoff import CrmConfig
from bot.outbox.methods import DeliveryFailed
from leads.handoff import webhook_headers

log = logging.getLogger(__name__)

RETRYABLE_4XX = frozenset({408, 429})
_SNIPPET = 200  # of the receiver's answer, kept with the attempt (its own text, not ours)


class CrmWebhookClient:
    """Posts to ``crm.webhook_url`` with the ``X-LeadRelay-*`` headers; ``clock`` gives the signing time."""

    def __init__(self, crm: CrmConfig, *, clock: Callable[[], float] = time.time) -> None:
        self._url = crm.webhook_url
        self._secret = crm.webhook_secret
        self._clock = clock
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=crm.timeout_s))

    async def deliver(self, body: str, *, key: str, url: str | None = None) -> dict[str, Any]:
        """{"status_code", "duration_ms"} on 2xx, else DeliveryFailed saying whether a retry may help.
        ``url``: another receiver than the CRM's (a journey's webhook step), signed with the same secret."""
        headers = webhook_headers(self._secret, body, key=key, timestamp=int(self._clock()))
        started = time.monotonic()
        try:
            async with self._http.post(url or self._url, data=body.encode("utf-8"), headers=headers,
                                       allow_redirects=False) as resp:
                answer = (await resp.content.read(_SNIPPET)).decode("utf-8", "replace")
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            elapsed = _ms(started)
            reason = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            log.info("CRM webhook %s: no answer (%s) after %d ms", key, reason, elapsed)
            raise DeliveryFailed(f"CRM 无响应：{reason}", retryable=True,
                                 detail={"status_code": None, "duration_ms": elapsed}) from exc
        elapsed = _ms(started)
        detail = {"status_code": status, "duration_ms": elapsed}
        if 200 <= status < 300:
            log.info("CRM webhook %s delivered (%d) in %d ms", key, status, elapsed)
            return detail
        retryable = status >= 500 or status in RETRYABLE_4XX
        log.info("CRM webhook %s answered %d in %d ms (%s)", key, status, elapsed, "retry" if retryable else "final")
        message = f"CRM 返回 HTTP {status}" + (f"：{answer.strip()}" if answer.strip() else "")
        raise DeliveryFailed(message, retryable=retryable, detail=detail)

    async def aclose(self) -> None:
        await self._http.close()
        await asyncio.sleep(0)  # let the connector's transports close before the loop moves on


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
