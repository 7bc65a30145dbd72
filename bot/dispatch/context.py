"""What a handler receives: the event and, explicitly, everything it may use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from wechatpy.replies import TextReply

from bot.config.core import Config
from bot.ingress.events import InboundEvent
from storage.repos.leads import LeadRepository

if TYPE_CHECKING:
    # The event's session only passes through handlers to the repositories (storage/repos/).
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.capture.content import ContentLibrary
    from bot.capture.links import LinkSigner
    from bot.wechat.api import OfficialAccountAPI, WeComAPI
    from leads.events import DomainEvents
    from leads.intents import IntentMatcher
    from leads.scoring import ScoreModel
    from storage.repos.events import EventTx


@dataclass(frozen=True, slots=True)
class Services:
    """Long-lived clients shared by all events (owned by the app's cleanup contexts)."""

    config: Config
    redis: Any
    oa_api: OfficialAccountAPI | None
    wecom_api: WeComAPI | None
    conversation: Conversation
    scoring: ScoreModel
    events: DomainEvents[EventTx]  # who hears scoring's and stages' domain events (bot/app.py)


@dataclass(frozen=True, slots=True)
class Conversation:
    """What the bot needs to understand and answer: built once at start-up."""

    intents: IntentMatcher
    content: ContentLibrary
    links: LinkSigner


@dataclass(slots=True)
class HandlerContext:
    """One event's processing: its own session and transaction, opened by the processor."""

    event: InboundEvent
    inbox_id: int
    session: AsyncSession
    leads: LeadRepository
    services: Services
    now: datetime
    prepared: Mapping[str, Any] = field(default_factory=dict)  # what the event's prepare handler looked up

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def occurred_at(self) -> datetime:
        return occurred_at(self.event, self.now)


def occurred_at(event: InboundEvent, now: datetime) -> datetime:
    """When the touch happened: the callback's CreateTime, never later than now."""
    return min(datetime.fromtimestamp(event.create_time, UTC), now)


@dataclass(frozen=True, slots=True)
class PrepareContext:
    """Lookups before an event's transaction: the event and the clients, no database (no locks to hold while
    WeChat answers). Runs again if the event is handled again: lookups only, no side effects."""

    event: InboundEvent
    services: Services

    @property
    def config(self) -> Config:
        return self.services.config


@dataclass(frozen=True, slots=True)
class ReplyContext:
    """Inline replies see the event and the configuration only: no database, no side effects."""

    event: InboundEvent
    services: Services

    def text(self, content: str) -> str:
        """A passive text reply to the sender, rendered by wechatpy."""
        return TextReply(source=self.event.to_user, target=self.event.from_user, content=content).render()
