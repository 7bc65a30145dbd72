"""Who hears the hand-off's domain events: one place, called by bot/app.py ``domain_events``.

Each subscriber runs in the publisher's transaction (storage/repos/events.py): what it records (an assignment,
an outbox row) commits or rolls back with the event's cause. Network calls never happen here; they go through
the outbox (after commit) or the SLA scheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.handoff.card_update import UpdateCards
from bot.handoff.crm import CrmWebhook
from bot.handoff.push import PushCards
from bot.handoff.returns import NotifySdrOfReturn
from bot.handoff.routing import RouteMQLs
from bot.handoff.sla import SlaDone, sla_timers
from leads.events import BecameMQL, DomainEvents, LeadAccepted, LeadAssigned, LeadReturned

if TYPE_CHECKING:
    from bot.config.core import Config
    from storage.repos.events import EventTx


def handoff_events(config: Config, events: DomainEvents[EventTx]) -> DomainEvents[EventTx]:
    """``events`` plus the hand-off's subscribers, in this order: routing (BecameMQL -> LeadAssigned), then the
    push of the card and the SLA timers (LeadAssigned), then the CRM webhook and the card update
    (LeadAccepted / LeadReturned)."""
    events = events.subscribe(BecameMQL, RouteMQLs(config.routing))
    events = events.subscribe(LeadAssigned, PushCards(
        config.server.public_url, config.wechat.mode == "sandbox", config.wecom.enabled, config.scoring.rules,
        config.capture.outbound))
    events = events.subscribe(LeadAssigned, UpdateCards(config.wechat.mode == "sandbox"))  # the previous card
    events = events.subscribe(LeadAssigned, sla_timers(config.sla))
    events = events.subscribe(LeadAccepted, SlaDone())
    events = events.subscribe(LeadReturned, SlaDone())
    events = events.subscribe(LeadAccepted, CrmWebhook(config.crm))
    events = events.subscribe(LeadReturned, NotifySdrOfReturn.from_config(config))
    events = events.subscribe(LeadAccepted, UpdateCards(config.wechat.mode == "sandbox"))
    events = events.subscribe(LeadReturned, UpdateCards(config.wechat.mode == "sandbox"))
    return events
