"""From a verified, parsed callback to its answer: inline reply (within budget), durable write, hand-off."""

from __future__ import annotations

import asyncio
import logging

from bot.dispatch.context import ReplyContext, Services
from bot.dispatch.router import Router
from bot.inbox.writer import InboxWriter
from bot.ingress.events import InboundEvent

log = logging.getLogger(__name__)


class CallbackPipeline:
    def __init__(self, router: Router, services: Services, writer: InboxWriter) -> None:
        self._router = router
        self._services = services
        self._writer = writer
        self._budget_s = services.config.callback.reply_budget_ms / 1000

    async def accept(self, event: InboundEvent, payload: str) -> str | None:
        """Store the event before answering; return the passive reply XML (the original's, on a retry)."""
        reply = await self._inline_reply(event)
        stored = await self._writer.store(event, payload, reply)
        return stored.reply

    async def _inline_reply(self, event: InboundEvent) -> str | None:
        handler = self._router.match_reply(event)
        if handler is None:
            return None
        try:
            async with asyncio.timeout(self._budget_s):  # no extra task per message, unlike wait_for
                return await handler(ReplyContext(event, self._services))
        except TimeoutError:
            log.warning("reply handler %s missed its %.0f ms budget; answering without a reply",
                        getattr(handler, "__name__", handler), self._budget_s * 1000)
        except Exception:  # noqa: BLE001 - a broken reply must not lose the event
            log.exception("reply handler failed; answering without a reply")
        return None
