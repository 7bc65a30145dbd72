"""LeadAssigned -> the assignee's WeCom card, through the outbox (sent within seconds of the commit).

The card is a ``template_card`` (buttons 接受 / 退回) or, for members whose users.card_style is "textcard", a
``textcard``; its outbox row is keyed ``card:<assignment id>`` (one card per assignment, whatever retries the
publisher makes) and rate-limited by the member's userid: over WeCom's per-member limits the waiting cards
become one digest (bot/outbox/digest.py). The row's response keeps WeCom's ``response_code``, which the card
update reads (bot/handoff/card_update.py). Each push is on the lead's timeline: assignment_events "pushed"
(detail: the outbox row and style, or why nothing was sent: ``{"skipped": "no_wecom_userid"}``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.config.outbound import OutboundConfig
from bot.handoff import cards
from bot.outbox.enqueue import enqueue
from leads.events import LeadAssigned
from leads.scoring import ABILITY, MotivationState, ScoreModel
from leads.scoring_rules import QUADRANT_LABELS, ScoringRules
from storage.repos.assignments import add_assignment_event
from storage.repos.events import EventTx
from storage.repos.handoff_cards import CardFacts, card_facts, member
from storage.repos.scores import scored_events

log = logging.getLogger(__name__)


def card_key(assignment_id: int) -> str:
    """The idempotency key of an assignment's card row (the card update finds the row by it)."""
    return f"card:{assignment_id}"


@dataclass(frozen=True, slots=True)
class PushCards:
    """A plain picklable value, like every subscriber (recompute workers receive the registry)."""

    base_url: str  # server.public_url: the card's links to the mobile inbox
    sandbox: bool  # wechat.mode == "sandbox": rows are kept, not sent
    wecom: bool  # WeCom configured at all
    rules: ScoringRules
    outbound: OutboundConfig

    async def __call__(self, tx: EventTx, events: Sequence[LeadAssigned]) -> None:
        model = ScoreModel(self.rules)
        for event in events:
            await self._push(tx, model, event)

    async def _push(self, tx: EventTx, model: ScoreModel, event: LeadAssigned) -> None:
        async def skipped(why: str) -> None:
            await add_assignment_event(tx.db, event.assignment_id, event.lead_id, "pushed", at=event.at,
                                       detail={"skipped": why})

        person = await member(tx.db, event.user_id)
        if person is None or not person.wecom_userid:
            await skipped("no_wecom_userid")
            return
        if not self.wecom:
            await skipped("wecom_not_configured")
            return
        facts = await card_facts(tx.db, event.lead_id)
        if facts is None:
            return
        lead = await card_lead(tx.db, facts, model, event.at)
        style = person.card_style if person.card_style in cards.CARD_STYLES else cards.TEMPLATE_CARD
        if style == cards.TEXTCARD:
            card = cards.textcard(lead, base_url=self.base_url)
        else:
            card = cards.template_card(lead, event.assignment_id, base_url=self.base_url,
                                       task_id=cards.new_task_id(event.assignment_id))
        payload = cards.card_payload(person.wecom_userid, style, card, lead, event.assignment_id,
                                     base_url=self.base_url)
        row_id = await enqueue(session_of(tx), target="wecom", method=f"wecom.{style}", payload=payload,
                               idempotency_key=card_key(event.assignment_id), sandbox=self.sandbox,
                               lead_id=event.lead_id, outbound=self.outbound)
        await add_assignment_event(tx.db, event.assignment_id, event.lead_id, "pushed", at=event.at,
                                   detail={"outbox_id": row_id, "style": style, "user_id": event.user_id})


async def card_lead(db: AsyncSession | AsyncConnection, facts: CardFacts, model: ScoreModel,
                    at: datetime) -> cards.CardLead:
    """What the card says: the stored scores and quadrant, the top contributions of the score explanation."""
    profile = facts.profile
    name = facts.display_name or str(profile.get("name") or "")
    return cards.CardLead(
        lead_id=facts.lead_id, name=name, company=str(profile.get("company") or ""),
        ability=facts.ability, motivation=facts.motivation,
        quadrant_label=QUADRANT_LABELS.get(facts.quadrant or "", "未评分"),
        reasons=await top_reasons(db, facts, model, at),
        source=" / ".join(p for p in (facts.first_channel, facts.first_scene) if p))


async def top_reasons(db: AsyncSession | AsyncConnection, facts: CardFacts, model: ScoreModel,
                      at: datetime) -> tuple[str, ...]:
    """The largest contributions to the score now, worded "rule +points" (the console's score explanation)."""
    if facts.score_state is not None and facts.score_rules == model.fingerprint:
        state = MotivationState.from_json(facts.score_state)
    else:  # no stored state, or one of other rules: replay the scored touchpoints (Core works as well)
        state = model.replay(await scored_events(db, facts.lead_id, model.scored_kinds))  # type: ignore[arg-type]
    card = model.scorecard(facts.profile, state, at)
    best = sorted((c for c in card.contributions if c.current > 0), key=lambda c: -c.current)
    reasons: list[str] = []
    for c in best[:cards.TOP_REASONS]:
        points = f"+{round(c.current)}"
        reasons.append(f"{c.attribute}：{c.value} {points}" if c.score == ABILITY else f"{c.rule_id} {points}")
    return tuple(reasons)


def session_of(tx: EventTx) -> AsyncSession:
    """An ORM session on the publisher's transaction: the outbox's enqueue takes one. A Core connection (the
    recompute batch) gets a session joined to its transaction; its commit is the connection's, so the sender
    finds the row on its next poll rather than being woken."""
    if isinstance(tx.db, AsyncSession):
        return tx.db
    return AsyncSession(bind=tx.db)
