"""A returned lead goes back to marketing: the SDR who handed it to sales hears why (a LeadReturned subscriber).

The lead is already back in the SDR queue (storage/repos/handoff_decisions.py cleared its owner); this tells the
SDR who transferred it — the actor of its latest move into MQL by an SDR — with a WeCom app message through the
outbox, when they have a WeCom userid. A lead scoring made an MQL has no such SDR: the queue itself shows it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.core import Config
from bot.outbox.enqueue import enqueue
from leads.events import LeadReturned
from storage.repos.events import EventTx
from storage.repos.handoff_decisions import transferring_sdr

log = logging.getLogger(__name__)
MAX_TEXT = 200  # of the salesperson's note, in the notice (the whole note is on the lead)


@dataclass(frozen=True, slots=True)
class NotifySdrOfReturn:
    public_url: str
    sandbox: bool
    wecom_enabled: bool

    @classmethod
    def from_config(cls, config: Config) -> NotifySdrOfReturn:
        return cls(config.server.public_url.rstrip("/"), config.wechat.mode == "sandbox", config.wecom.enabled)

    async def __call__(self, tx: EventTx, events: Sequence[LeadReturned]) -> None:
        if not self.sandbox and not self.wecom_enabled:
            return  # live without WeCom: nobody could send it
        if not isinstance(tx.db, AsyncSession):
            raise TypeError("a return's notice is enqueued from an ORM session")
        for event in events:
            sdr = await transferring_sdr(tx.db, event.lead_id)
            if sdr is None or not sdr[1]:
                log.info("lead %s returned: no SDR with a WeCom userid to notify", event.lead_id)
                continue
            note = f"\n说明：{event.text[:MAX_TEXT]}" if event.text else ""
            content = (f"线索 #{event.lead_id} 被销售退回，原因：{event.reason}{note}\n"
                       f"已回到 SDR 队列：{self.public_url}/console/leads/{event.lead_id}")
            await enqueue(tx.db, target="wecom", method="wecom.app_text", sandbox=self.sandbox,
                          idempotency_key=f"lead-returned-{event.assignment_id}", lead_id=event.lead_id,
                          payload={"userid": sdr[1], "content": content})
