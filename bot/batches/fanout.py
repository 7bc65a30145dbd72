"""OA followers without a WeCom relationship get the batch as an OA template message, one per recipient, each
with a link tracked to their own lead (``/c/<token>``, source ``batch:<id>``) and the text personalised.

Done by the job, a slice per pass (``SLICE`` rows in one transaction): the request that queued the batch wrote
the recipients only. Each row goes through ``enqueue`` with its lead, so consent is checked again when it is
sent (a lead who unsubscribed meanwhile is "suppressed" by the outbox, never messaged).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.capture.links import LinkSigner, LinkTarget
from bot.config.core import Config
from leads.batches.render import render
from storage.models import Batch, BatchRecipient, Lead
from storage.repos.batch_queue import finish_fanned_out, mark_oa, oa_pending

Enqueue = Callable[..., Awaitable[int | None]]
SLICE = 500
KEYWORD_CHARS = 20  # a template keyword shows a short excerpt


def source_code(batch_id: int) -> str:
    return f"batch:{batch_id}"


def oa_payload(cfg: Config, links: LinkSigner, recipient: BatchRecipient, batch: Batch, lead: Lead,
               owner_name: str | None) -> dict[str, Any]:
    message = batch.message or {}
    profile = lead.profile or {}
    company = profile.get("company")
    text = render(str(message.get("text", "")), {"name": lead.display_name, "sender": owner_name,
                                                 "company": company if isinstance(company, str) else None})
    outbound = cfg.capture.outbound
    payload: dict[str, Any] = {
        "openid": recipient.openid, "template_id": outbound.fallback_template_id, "marketing": True,
        "data": {"first": {"value": text}, "keyword1": {"value": text[:KEYWORD_CHARS]}},
        "batch_id": batch.id}
    if content_id := message.get("content_id"):
        token = links.token(LinkTarget(str(content_id), "lead", str(lead.id), source_code(batch.id)))
        payload["url"] = f"{cfg.server.public_url.rstrip('/')}/c/{token}"
    elif outbound.fallback_template_url:
        payload["url"] = outbound.fallback_template_url
    return payload


async def fan_out(sessions: async_sessionmaker, enqueue: Enqueue, cfg: Config, links: LinkSigner, *,
                  now: datetime, limit: int = SLICE) -> int:
    """One slice of OA recipients into the outbox; how many."""
    if not cfg.capture.outbound.fallback_template_id:
        return 0  # excluded at queue time (no_oa_template); rows queued before a config change wait for it
    async with sessions() as session, session.begin():
        rows = await oa_pending(session, limit)
        for recipient, batch, lead, owner_name in rows:
            payload = oa_payload(cfg, links, recipient, batch, lead, owner_name)
            row_id = await enqueue(session, target="oa", method="oa.template", payload=payload,
                                   idempotency_key=f"batch:{batch.id}:oa:{recipient.id}", sandbox=batch.sandbox,
                                   lead_id=recipient.lead_id, outbound=cfg.capture.outbound)
            await mark_oa(session, recipient.id, row_id, now)
        await finish_fanned_out(session)
    return len(rows)
