"""LeadAccepted / LeadReturned -> the assignment's card shows who did what, for every recipient; LeadAssigned
with a previous assignment (reassigned by hand, by the SLA) -> the previous card shows "已改派".

Whatever decided the lead (the card's 接受, the mobile page, the JSON API), the card's buttons become one
unclickable label ("已接受 · 张三") through ``update_template_card`` with the response_code WeCom returned
when the card was sent (kept in the card's outbox row response; each code works once, within 72 hours).
The API update is used even for a click, rather than the passive reply to the click's callback: it is
the same call for every path and goes through the outbox's retries.

A card still waiting in the outbox (a rate-limit slot, a retry) is cancelled instead: its buttons would be
stale. Textcards and digests have nothing to update. Timeline: assignment_events "card_updated".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.handoff import cards
from bot.handoff.push import card_key, session_of
from bot.outbox.enqueue import enqueue
from leads.events import LeadAccepted, LeadAssigned, LeadReturned
from storage.repos.assignments import add_assignment_event
from storage.repos.events import EventTx
from storage.repos.handoff_cards import cancel_if_pending, member, push_row

UPDATE_METHOD = "wecom.update_template_card"
_CANCELLED = "线索已被接受、退回或改派，卡片不再发送"


def update_key(assignment_id: int) -> str:
    return f"card_update:{assignment_id}"


@dataclass(frozen=True, slots=True)
class UpdateCards:
    sandbox: bool  # wechat.mode == "sandbox"

    async def __call__(self, tx: EventTx, events: Sequence[LeadAccepted | LeadReturned | LeadAssigned]) -> None:
        for event in events:
            if isinstance(event, LeadAssigned):
                if event.previous_assignment_id is not None:
                    await self._update(tx, event.previous_assignment_id, event.lead_id, event.at, cards.REASSIGNED,
                                       None)
            else:
                action = cards.ACCEPT if isinstance(event, LeadAccepted) else cards.RETURN
                await self._update(tx, event.assignment_id, event.lead_id, event.at, action, event.user_id)

    async def _update(self, tx: EventTx, assignment_id: int, lead_id: int, at: datetime, action: str,
                      actor_id: int | None) -> None:
        row = await push_row(tx.db, card_key(assignment_id))
        if row is None:
            return
        if row.status == "pending":
            if await cancel_if_pending(tx.db, row.id, _CANCELLED):
                await add_assignment_event(tx.db, assignment_id, lead_id, "card_updated", at=at,
                                           detail={"outbox_id": row.id, "cancelled": True, "action": action})
                return
            row = await push_row(tx.db, card_key(assignment_id))  # a sender finished it meanwhile
            if row is None:
                return
        code = (row.response or {}).get("response_code")
        if row.method != "wecom.template_card" or row.status != "sent" or not code:
            return  # a textcard, a card merged into a digest, a failed or sandboxed one: nothing to update
        actor = await member(tx.db, actor_id) if actor_id is not None else None
        payload = {"userids": [u for u in str(row.payload.get("userid", "")).split("|") if u],
                   "response_code": str(code), "replace_name": cards.decided_label(action, actor.name if actor else "")}
        row_id = await enqueue(session_of(tx), target="wecom", method=UPDATE_METHOD, payload=payload,
                               idempotency_key=update_key(assignment_id), sandbox=self.sandbox, lead_id=lead_id)
        await add_assignment_event(tx.db, assignment_id, lead_id, "card_updated", at=at,
                                   detail={"outbox_id": row_id, "action": action})
