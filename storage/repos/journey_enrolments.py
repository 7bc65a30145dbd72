"""Journey enrolments: enrolling leads, claiming the due ones, saving where a run left them.

Every statement is set-based (one per kind of write for a whole batch): the executor runs a thousand due steps
a second, and a recompute that moves thousands of leads into a quadrant enrols them in one statement.
On PostgreSQL a claim locks its enrolments (``FOR UPDATE SKIP LOCKED``): processes running due steps at the same
time share the work and never run one enrolment twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leads.journeys.enrolment import PastEnrolment
from leads.journeys.plan import Enrolled, Plan, decode
from storage.models import JourneyEnrolment, JourneyStep, Lead

_E = JourneyEnrolment.__table__
_S = JourneyStep.__table__
Db = AsyncSession | AsyncConnection


@dataclass(frozen=True, slots=True)
class NewEnrolment:
    journey_id: str
    lead_id: int
    version: str
    trigger: str  # what enrolled it, for the console: "quadrant:nurture", "returned:预算不足", ...
    at: datetime


@dataclass(frozen=True, slots=True)
class Claimed:
    enrolled: Enrolled
    journey_id: str
    attempts: int


def _postgres(db: Db) -> bool:
    bind = db.bind if isinstance(db, AsyncSession) else db
    return bind is not None and bind.dialect.name == "postgresql"


async def past_enrolments(db: Db, pairs: Collection[tuple[str, int]]) -> dict[tuple[str, int], list[PastEnrolment]]:
    """Each (journey, lead)'s enrolments so far, for the re-entry policy."""
    found: dict[tuple[str, int], list[PastEnrolment]] = defaultdict(list)
    if not pairs:
        return found
    journeys = sorted({j for j, _ in pairs})
    leads = sorted({lead for _, lead in pairs})
    rows = await db.execute(select(_E.c.journey_id, _E.c.lead_id, _E.c.enrolled_at, _E.c.ended_at)
                            .where(_E.c.journey_id.in_(journeys), _E.c.lead_id.in_(leads)))
    for journey_id, lead_id, started, ended in rows:
        if (journey_id, lead_id) in pairs:
            found[(journey_id, lead_id)].append(PastEnrolment(started, ended))
    return found


async def enrol(db: Db, new: Sequence[NewEnrolment]) -> int:
    """Insert the enrolments, each due at once, with its "entered" record (seq 0); an (journey, lead) pair that is
    active already (another transaction enrolled it first) is skipped by the partial unique index. How many."""
    if not new:
        return 0
    dialect = postgresql if _postgres(db) else sqlite
    # One order for every writer: two transactions enrolling the same leads wait for each other, never deadlock.
    new = sorted(new, key=lambda n: (n.journey_id, n.lead_id))
    rows = [{"journey_id": n.journey_id, "lead_id": n.lead_id, "version": n.version, "trigger": n.trigger[:120],
             "position": "0", "seq": 0, "status": "active", "reason": "", "enrolled_at": n.at, "due_at": n.at,
             "attempts": 0} for n in new]
    stmt = dialect.insert(_E).on_conflict_do_nothing().returning(_E.c.id, _E.c.journey_id, _E.c.lead_id,
                                                                  _E.c.trigger, _E.c.enrolled_at)
    made = (await db.execute(stmt, rows)).all() if len(rows) > 1 else (await db.execute(stmt.values(rows[0]))).all()
    if made:
        await db.execute(insert(_S), [
            {"enrolment_id": e_id, "lead_id": lead_id, "journey_id": journey_id, "seq": 0, "position": "0",
             "kind": "enrol", "action": "", "channel": "", "outcome": "entered", "reason": trigger[:64],
             "outbox_id": None, "at": at} for e_id, journey_id, lead_id, trigger, at in made])
    return len(made)


async def claim_due(db: Db, now: datetime, limit: int, *, ids: Collection[int] | None = None) -> list[Claimed]:
    """Up to ``limit`` active enrolments due by ``now`` (of ``ids``, when given), the longest waiting first, locked
    on PostgreSQL (passing over those another process holds)."""
    stmt = (select(_E.c.id, _E.c.lead_id, _E.c.position, _E.c.seq, _E.c.enrolled_at, _E.c.version,
                   _E.c.journey_id, _E.c.attempts)
            .where(_E.c.status == "active", _E.c.due_at <= now).order_by(_E.c.due_at, _E.c.id).limit(limit))
    if ids is not None:
        stmt = stmt.where(_E.c.id.in_(sorted(ids)))
    if _postgres(db):
        stmt = stmt.with_for_update(skip_locked=True)
    out: list[Claimed] = []
    for e_id, lead_id, position, seq, enrolled_at, version, journey_id, attempts in await db.execute(stmt):
        try:
            at = decode(position)
        except ValueError:
            at = ()  # the machine answers "journey_changed" for a position that fits no tree
        out.append(Claimed(Enrolled(e_id, lead_id, at, seq, enrolled_at, version), journey_id, attempts))
    return out


async def save_runs(db: Db, runs: Sequence[tuple[Claimed, Plan]], outbox_ids: dict[tuple[int, int], int],
                    now: datetime) -> None:
    """Write each run's records and move its enrolment, guarded by the seq it was claimed at."""
    records: list[dict[str, Any]] = []
    moves: list[dict[str, Any]] = []
    for claimed, plan in runs:
        e = claimed.enrolled
        for r in plan.records:
            records.append({"enrolment_id": e.id, "lead_id": e.lead_id, "journey_id": claimed.journey_id,
                            "seq": r.seq, "position": r.position, "kind": r.kind,
                            "action": r.action_kind, "channel": r.channel,
                            "outcome": r.outcome, "reason": r.reason[:64],
                            "outbox_id": outbox_ids.get((e.id, r.seq)), "at": now})
        ended = plan.status != "active"
        moves.append({"b_id": e.id, "b_seq": e.seq, "position": ".".join(str(p) for p in plan.position),
                      "seq": plan.seq, "status": plan.status, "reason": plan.reason[:64],
                      "due_at": plan.due_at, "ended_at": now if ended else None})
    if records:
        await db.execute(insert(_S), records)
    if moves:
        stmt = (update(_E).where(_E.c.id == bindparam("b_id"), _E.c.seq == bindparam("b_seq"))
                .values(position=bindparam("position"), seq=bindparam("seq"), status=bindparam("status"),
                        reason=bindparam("reason"), due_at=bindparam("due_at"), ended_at=bindparam("ended_at"),
                        attempts=0, last_error=None))
        await db.execute(stmt.execution_options(synchronize_session=False), moves)


async def postpone(db: Db, enrolment_id: int, seq: int, *, attempts: int, due_at: datetime, error: str) -> None:
    """A run that failed: try again at ``due_at`` (the caller's backoff)."""
    await db.execute(update(_E).where(_E.c.id == enrolment_id, _E.c.seq == seq, _E.c.status == "active")
                     .values(attempts=attempts, due_at=due_at, last_error=error[:500]))


async def inactive_leads(db: Db, journey_id: str, days: int, now: datetime, limit: int) -> list[tuple[int, datetime]]:
    """Live leads with no activity for ``days`` that this journey has not tried since their last activity (so a
    lead still asleep after a wake-up is not woken every day), the longest asleep first: (lead id, last active)."""
    tried = (select(_E.c.id).where(_E.c.journey_id == journey_id, _E.c.lead_id == Lead.id,
                                   _E.c.enrolled_at >= Lead.last_activity_at).exists())
    rows = await db.execute(select(Lead.id, Lead.last_activity_at)
                            .where(Lead.last_activity_at <= now - timedelta(days=days), Lead.merged_into_id.is_(None),
                                   Lead.erased_at.is_(None), Lead.consent != "revoked", ~tried)
                            .order_by(Lead.last_activity_at).limit(limit))
    return [(lead_id, at) for lead_id, at in rows]
