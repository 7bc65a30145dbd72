"""Routing, the first hand-off subscriber: every new MQL (scoring's quadrant actions, an SDR's transfer, a
person's stage move) gets a salesperson, in the transaction that made it an MQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.config.handoff import RoutingConfig
from leads.events import BecameMQL
from storage.repos.events import EventTx
from storage.repos.routing import route_leads


@dataclass(frozen=True, slots=True)
class RouteMQLs:
    """A plain picklable value (recompute workers receive the registry holding it)."""

    routing: RoutingConfig

    async def __call__(self, tx: EventTx, events: Sequence[BecameMQL]) -> None:
        # One batch per publish; a lead that already has a pending assignment keeps it (the leads are locked
        # first, so two processes making the same MQL end with one assignment).
        if not self.routing.rules and not self.routing.default_owner:
            return  # no routing configured: MQLs stay with the SDRs, and nothing is locked for nothing
        if events:
            lead_ids = list(dict.fromkeys(event.lead_id for event in events))
            await route_leads(tx, lead_ids, self.routing, at=max(event.at for event in events), only_unassigned=True)
