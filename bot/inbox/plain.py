"""The plain events of an inbox batch, recorded together, a run of consecutive ones at a time.

A plain event only leaves touches on its sender's lead: its handler has a description of that
(``Router.on(..., describe=...)``, leads/activity.py), and storage/repos/activity_batch.py records the
descriptions of a whole batch with a few multi-row statements. Only a sender's first event of the batch is
offered, and only one needing no lookups: its sender's later events are handled after it, by their handlers,
as are the events the batch declines (right after their run), so every sender's events keep their order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.dispatch.context import Services, occurred_at
from bot.dispatch.router import Router
from bot.ingress.events import InboundEvent
from leads.activity import Activity
from storage.repos.activity_batch import ActivityBatch


def plain_activities(rows: Sequence[Any], events: Mapping[int, InboundEvent], router: Router, services: Services,
                     now: datetime) -> list[tuple[int, Activity]]:
    """(inbox id, activity) of the rows that are their sender's first in ``rows`` and plain."""
    seen: set[tuple[str, str]] = set()
    found: list[tuple[int, Activity]] = []
    for row in rows:
        sender = (row.source, row.from_user)
        if sender in seen:
            continue
        seen.add(sender)
        event = events[row.id]
        if router.match_prepare(event) is not None or (describe := router.match_describe(event)) is None:
            continue
        if (activity := describe(event, services, occurred_at(event, now))) is not None:
            found.append((row.id, activity))
    return found


class PlainRuns:
    """A batch's plain events, recorded a run at a time: consecutive plain events together, before the next event
    that is not plain (so events keep their arrival order), or at the end of the batch."""

    def __init__(self, session: AsyncSession, rows: Sequence[Any], events: Mapping[int, InboundEvent],
                 router: Router, services: Services, clock: Callable[[], datetime]) -> None:
        self._activities = dict(plain_activities(rows, events, router, services, clock()))
        self._batch = ActivityBatch(session, services.scoring, services.events, clock)
        self._run: list[tuple[Any, Activity]] = []
        self.recorded = 0

    @property
    def open(self) -> bool:
        """Plain events taken and not yet recorded."""
        return bool(self._run)

    def take(self, row: Any) -> bool:
        """Add the row to the current run if it is plain."""
        activity = self._activities.get(row.id)
        if activity is not None:
            self._run.append((row, activity))
        return activity is not None

    async def record(self) -> tuple[list[Any], list[Any]]:
        """Record the current run: the rows recorded, and the rows declined (for their handlers), in order."""
        run, self._run = self._run, []
        if not run:
            return [], []
        recorded = set(await self._batch.record([(row.id, activity) for row, activity in run]))
        self.recorded += len(recorded)
        return [row for row, _ in run if row.id in recorded], [row for row, _ in run if row.id not in recorded]
