"""The transaction domain-event subscribers run in (leads/events.py): the publisher's own.

What a subscriber writes commits or rolls back with what caused the event: a failing subscriber fails the
touchpoint, the stage change or the recompute batch that published. ``db`` is an ORM session on the
incremental path, the score refresh and the API, and a Core connection in ``leadrelay scores recompute``;
subscribers run Core statements, which both execute.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leads.events import DomainEvent, DomainEvents, Publisher


class EventTx:
    """One per session or batch: its Publisher orders what subscribers publish in turn after what they hear."""

    __slots__ = ("db", "events", "_publisher")

    def __init__(self, db: AsyncSession | AsyncConnection, events: DomainEvents[EventTx]) -> None:
        self.db = db
        self.events = events
        self._publisher: Publisher[EventTx] = Publisher(events)

    @property
    def postgres(self) -> bool:
        bind = self.db.bind if isinstance(self.db, AsyncSession) else self.db
        return bind is not None and bind.dialect.name == "postgresql"

    async def publish(self, events: Iterable[DomainEvent]) -> None:
        """Tell this registry's subscribers, in this transaction (what a subscriber's own writes mean, too)."""
        await self._publisher.publish(self, events)


NO_SUBSCRIBERS: DomainEvents[EventTx] = DomainEvents()  # immutable: subscribe() returns a new registry
