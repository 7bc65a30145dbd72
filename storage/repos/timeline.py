"""A lead's timeline for the 360: touchpoints (inbound messages among them), outbound messages (the outbox),
stage changes and the hand-off's steps (assignment_events), merged newest first and paginated by a keyset cursor.

Why a keyset and not an offset: a lead with thousands of touchpoints must open as fast as one with ten, and a
page must not shift when new touchpoints arrive while someone reads. The order is total — (time, source,
id), all descending — so rows with equal timestamps are neither skipped nor repeated across pages. Each source
is read with its own indexed query (touchpoints: ix_touchpoints_lead_id_occurred_at; stage changes: by lead;
hand-off steps: ix_assignment_events_lead_id_at),
at most ``limit + 1`` rows each, and the merge happens here; only the page asked for is ever loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import (
    Assignment,
    AssignmentEvent,
    BatchRecipient,
    JourneyStep,
    OutboxMessage,
    StageTransition,
    Touchpoint,
    User,
)
from storage.repos.batch_reports import timeline_rows as batch_timeline_rows
from storage.repos.journeys import timeline_steps

# Source ranks: the tie-break between rows of one instant (descending, like everything else).
TOUCHPOINT, STAGE, OUTBOX, HANDOFF, BATCH, JOURNEY = "t", "s", "o", "a", "b", "j"
SOURCES = (TOUCHPOINT, STAGE, OUTBOX, HANDOFF, BATCH, JOURNEY)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"(-?[0-9]{1,18})\.([tsoabj])\.([0-9]{1,19})")


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in the timeline: the next page holds what sorts after (older than) it."""

    at: datetime
    source: str
    id: int

    def encode(self) -> str:
        micros = (self.at - EPOCH) // timedelta(microseconds=1)
        return f"{micros}.{self.source}.{self.id}"

    @classmethod
    def decode(cls, raw: str) -> Cursor | None:
        """None for anything that is not a cursor this module made (the API answers 400)."""
        match = _CURSOR.fullmatch(raw)
        if match is None:
            return None
        try:
            at = EPOCH + timedelta(microseconds=int(match[1]))
        except OverflowError:
            return None
        if not 1 <= at.year <= 9999 or int(match[3]) > 2**63 - 1:
            return None
        return cls(at, match[2], int(match[3]))


@dataclass(frozen=True, slots=True)
class Handoff:
    """What a hand-off step's line needs from its assignment: to whom, by which rule, why it came back."""

    assignee: str
    rule: str
    reason: str
    return_reason: str | None
    return_text: str | None


@dataclass(frozen=True, slots=True)
class BatchLine:
    """A lead's place in a batch message (storage/repos/batch_reports.py): outcome, message, OA row status."""

    recipient: BatchRecipient
    message: dict[str, Any]
    outbox_status: str | None


@dataclass(frozen=True, slots=True)
class Entry:
    source: str  # TOUCHPOINT, STAGE, OUTBOX, HANDOFF, BATCH or JOURNEY
    at: datetime
    id: int
    row: Any  # the Touchpoint, StageTransition, OutboxMessage, AssignmentEvent, BatchLine or JourneyStep
    author: str | None = None  # an outbox message sent from the console, a hand-off step: who (their name)
    handoff: Handoff | None = None  # a hand-off step: its assignment's facts

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.at, self.source, self.id)

    def key(self) -> tuple[datetime, str, int]:
        return (self.at, self.source, self.id)


@dataclass(frozen=True, slots=True)
class Page:
    entries: list[Entry]
    next: Cursor | None  # None: this was the oldest page


def _before(at_col: Any, id_col: Any, source: str, cursor: Cursor | None) -> Any:
    """Rows of ``source`` that sort after ``cursor`` in (time, source, id) descending order."""
    if cursor is None:
        return None
    if source < cursor.source:  # at the cursor's instant, this source comes after the cursor's
        return at_col <= cursor.at
    if source > cursor.source:
        return at_col < cursor.at
    return or_(at_col < cursor.at, and_(at_col == cursor.at, id_col < cursor.id))


def _where(stmt: Any, condition: Any) -> Any:
    return stmt if condition is None else stmt.where(condition)


async def timeline_page(session: AsyncSession, lead_id: int, before: Cursor | None, limit: int) -> Page:
    """At most ``limit`` entries older than ``before`` (None: the newest), and the cursor of the next page."""
    take = limit + 1
    touch = _where(select(Touchpoint).where(Touchpoint.lead_id == lead_id),
                   _before(Touchpoint.occurred_at, Touchpoint.id, TOUCHPOINT, before))
    touch = touch.order_by(Touchpoint.occurred_at.desc(), Touchpoint.id.desc()).limit(take)
    stages = _where(select(StageTransition).where(StageTransition.lead_id == lead_id),
                    _before(StageTransition.occurred_at, StageTransition.id, STAGE, before))
    stages = stages.order_by(StageTransition.occurred_at.desc(), StageTransition.id.desc()).limit(take)
    author = func.coalesce(func.nullif(User.display_name, ""), User.username)  # as the navbar names people
    out = _where(select(OutboxMessage, author).outerjoin(User, User.id == OutboxMessage.author_user_id)
                 .where(OutboxMessage.lead_id == lead_id),
                 _before(OutboxMessage.created_at, OutboxMessage.id, OUTBOX, before))
    out = out.order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()).limit(take)
    entries = [Entry(TOUCHPOINT, t.occurred_at, t.id, t) for t in (await session.execute(touch)).scalars()]
    entries += [Entry(STAGE, s.occurred_at, s.id, s) for s in (await session.execute(stages)).scalars()]
    entries += [Entry(OUTBOX, m.created_at, m.id, m, name) for m, name in (await session.execute(out)).all()]
    entries += await _handoff_steps(session, lead_id, before, take)
    entries += [Entry(BATCH, r.created_at, r.id, BatchLine(r, message, outbox_status), author)
                for r, message, author, outbox_status in await batch_timeline_rows(
                    session, lead_id, _before(BatchRecipient.created_at, BatchRecipient.id, BATCH, before), take)]
    entries += [Entry(JOURNEY, s.at, s.id, s) for s in await timeline_steps(
        session, lead_id, _before(JourneyStep.at, JourneyStep.id, JOURNEY, before), take)]
    entries.sort(key=Entry.key, reverse=True)
    page = entries[:limit]
    return Page(page, page[-1].cursor if len(entries) > limit else None)


async def _handoff_steps(session: AsyncSession, lead_id: int, before: Cursor | None, take: int) -> list[Entry]:
    actor, assignee = aliased(User), aliased(User)
    stmt = _where(
        select(AssignmentEvent, _name(actor), _name(assignee), Assignment.rule, Assignment.reason,
               Assignment.return_reason, Assignment.return_text)
        .join(Assignment, Assignment.id == AssignmentEvent.assignment_id)
        .join(assignee, assignee.id == Assignment.user_id)
        .outerjoin(actor, actor.id == AssignmentEvent.actor_user_id)
        .where(AssignmentEvent.lead_id == lead_id),
        _before(AssignmentEvent.at, AssignmentEvent.id, HANDOFF, before))
    stmt = stmt.order_by(AssignmentEvent.at.desc(), AssignmentEvent.id.desc()).limit(take)
    return [Entry(HANDOFF, e.at, e.id, e, who, Handoff(to, rule, reason, back, text))
            for e, who, to, rule, reason, back, text in (await session.execute(stmt)).all()]


def _name(user: Any) -> Any:
    return func.coalesce(func.nullif(user.display_name, ""), user.username)  # as the navbar names people
