"""The CRM hears of accepted leads: a LeadAccepted subscriber that records the webhook delivery in the outbox.

In the accepting transaction: the delivery exists exactly when the acceptance does. The body (the lead and its
history, leads/handoff.py ``webhook_body``) is built now, so every retry and resend sends the same document; the
outbox's unique idempotency key ``lead-accepted-{assignment_id}`` means accepting twice can never enqueue twice.
The row is "pending" in sandbox mode too: the CRM is not WeChat, and the outbox sender runs for it whenever
``crm.webhook_url`` is set (bot/app.py). Without a URL nothing is recorded (the CSV export has the leads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.handoff import CrmConfig
from bot.outbox.enqueue import enqueue
from leads.events import LeadAccepted
from leads.handoff import idempotency_key, webhook_body
from storage.repos.events import EventTx
from storage.repos.webhooks import ACCEPTED_METHOD, CRM_TARGET, accepted_lead


@dataclass(frozen=True, slots=True)
class CrmWebhook:
    crm: CrmConfig

    async def __call__(self, tx: EventTx, events: Sequence[LeadAccepted]) -> None:
        if not self.crm.webhook_url:
            return
        if not isinstance(tx.db, AsyncSession):  # accepting happens in the API's and the card's sessions only
            raise TypeError("the CRM webhook is enqueued from an ORM session")
        for event in events:
            key = idempotency_key(event.assignment_id)
            body = webhook_body(await accepted_lead(tx.db, event.lead_id, event.assignment_id), event_id=key)
            payload = {"body": body, "key": key, "assignment_id": event.assignment_id,
                       "max_attempts": self.crm.max_attempts}
            await enqueue(tx.db, target=CRM_TARGET, method=ACCEPTED_METHOD, payload=payload, idempotency_key=key,
                          sandbox=False, lead_id=event.lead_id)
