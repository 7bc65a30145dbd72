"""Today's quadrant actions, the first subscriber of QuadrantEntered: ``tag:<tag>`` (removed again when the
lead leaves the quadrant), ``stage:<stage>`` (when the lifecycle allows it from the lead's stage) and
``journey:<id>`` (enrolled by the journeys' own subscriber, bot/journeys/enrol.py). leads.lifecycle.quadrant_effects
decides; this writes.

Set-based: one statement per kind of write for all the events of a publish, so a recompute batch costs what
it cost before the actions became a subscriber (arrays on PostgreSQL, executemany elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, text
from sqlalchemy.dialects import sqlite

from leads.events import DomainEvents, QuadrantEntered, StageChanged, TagAdded
from leads.lifecycle import quadrant_effects
from storage.models import LeadTag
from storage.repos.events import NO_SUBSCRIBERS, EventTx
from storage.repos.stages import change_stages

_tags = LeadTag.__table__
_UNTAG_PG = text("""DELETE FROM lead_tags t
USING unnest(CAST(:lead_ids AS BIGINT[]), CAST(:tags AS TEXT[])) AS d(lead_id, tag)
WHERE t.lead_id = d.lead_id AND t.tag = d.tag""")
_TAG_PG = text("""INSERT INTO lead_tags (lead_id, tag, created_at)
SELECT * FROM unnest(CAST(:lead_ids AS BIGINT[]), CAST(:tags AS TEXT[]), CAST(:ats AS TIMESTAMPTZ[]))
ON CONFLICT DO NOTHING""")
_UNTAG = delete(_tags).where(_tags.c.lead_id == bindparam("b_lead"), _tags.c.tag == bindparam("b_tag"))
_TAG = sqlite.insert(_tags).on_conflict_do_nothing()


def standard_events(actions: dict[str, tuple[str, ...]]) -> DomainEvents[EventTx]:
    """The subscribers every path has by default: the quadrant actions of ``actions`` (the scoring rules')."""
    return NO_SUBSCRIBERS.subscribe(QuadrantEntered, QuadrantActions(actions))


@dataclass(frozen=True, slots=True)
class QuadrantActions:
    """A plain picklable value: a registry holding it can be sent to recompute worker processes."""

    actions: dict[str, tuple[str, ...]]  # quadrant -> actions (ScoringRules.actions)

    async def __call__(self, tx: EventTx, entered: Sequence[QuadrantEntered]) -> None:
        removed: list[tuple[int, str]] = []
        added: list[tuple[int, str, datetime]] = []
        moves: list[StageChanged] = []
        for event in entered:
            effects = quadrant_effects(event.old, event.new, event.stage, self.actions)
            removed.extend((event.lead_id, tag) for tag in effects.remove_tags)
            added.extend((event.lead_id, tag, event.at) for tag in effects.add_tags)
            if effects.transition is not None:
                moves.append(StageChanged.of(event.lead_id, effects.transition, event.at, event.touchpoint_id))
        await untag(tx, removed)
        await tag(tx, added)
        await change_stages(tx, moves)


async def untag(tx: EventTx, pairs: Sequence[tuple[int, str]]) -> None:
    if not pairs:
        return
    if tx.postgres:
        lead_ids, tags = zip(*pairs, strict=True)
        await tx.db.execute(_UNTAG_PG, {"lead_ids": list(lead_ids), "tags": list(tags)})
    else:
        await tx.db.execute(_UNTAG, [{"b_lead": lead_id, "b_tag": tag} for lead_id, tag in pairs])


async def tag(tx: EventTx, rows: Sequence[tuple[int, str, datetime]]) -> None:
    if not rows:
        return
    if tx.postgres:
        lead_ids, tags, ats = zip(*rows, strict=True)
        await tx.db.execute(_TAG_PG, {"lead_ids": list(lead_ids), "tags": list(tags), "ats": list(ats)})
    else:
        await tx.db.execute(_TAG, [{"lead_id": lead_id, "tag": t, "created_at": at} for lead_id, t, at in rows])
    if tx.events.subscribers(TagAdded):  # a tag the lead had already is heard again: enrolment is idempotent
        await tx.publish([TagAdded(lead_id, t, at) for lead_id, t, at in rows])
