"""Assignments: who holds a lead's hand-off, and the events of its timeline (assignment_events).

Core statements only, so ``db`` may be the ORM session of the API and the incremental path or the Core
connection of a recompute batch. At most one assignment per lead is pending (the partial unique index
uq_assignments_pending_lead): callers that write one lock the lead row first (``lock_leads``), so two processes
never both insert; ``assign_lead`` supersedes the pending one it replaces in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from leads.events import LeadAssigned
from storage.models import Assignment, AssignmentEvent, Lead, Team, User
from storage.repos.events import EventTx

PENDING, ACCEPTED, RETURNED, SUPERSEDED = "pending", "accepted", "returned", "superseded"
STATUSES = (PENDING, ACCEPTED, RETURNED, SUPERSEDED)

_a = Assignment.__table__
_events = AssignmentEvent.__table__
_leads = Lead.__table__
Db = AsyncSession | AsyncConnection


@dataclass(frozen=True, slots=True)
class AssignmentRow:
    id: int
    lead_id: int
    user_id: int
    team_id: int | None
    rule: str
    reason: str
    status: str
    assigned_at: datetime
    assigned_by_user_id: int | None
    previous_id: int | None
    decided_at: datetime | None
    decided_by_user_id: int | None
    return_reason: str | None
    return_text: str | None
    sla_step: int
    card_code: str | None


_COLUMNS = tuple(_a.c[f.name] for f in fields(AssignmentRow))


def _row(row: Any) -> AssignmentRow:
    return AssignmentRow(*row)


_PENDING_OF_LEADS = select(*_COLUMNS).where(_a.c.lead_id.in_(bindparam("b_ids", expanding=True)),
                                            _a.c.status == PENDING)


def _postgres(db: Db) -> bool:
    bind = db.bind if isinstance(db, AsyncSession) else db
    return bind is not None and bind.dialect.name == "postgresql"


async def lock_leads(db: Db, lead_ids: Sequence[int]) -> None:
    """Lock the leads' rows (PostgreSQL; in id order, so two transactions never wait on each other in a
    circle). Whoever then checks or writes a lead's pending assignment does it alone."""
    if lead_ids and _postgres(db):
        stmt = select(_leads.c.id).where(_leads.c.id.in_(sorted(set(lead_ids)))).order_by(_leads.c.id)
        await db.execute(stmt.with_for_update())


async def pending_assignment(db: Db, lead_id: int, *, lock: bool = False) -> AssignmentRow | None:
    """The lead's pending assignment; ``lock`` takes its row lock (PostgreSQL) until the transaction ends."""
    stmt = select(*_COLUMNS).where(_a.c.lead_id == lead_id, _a.c.status == PENDING)
    if lock and _postgres(db):
        stmt = stmt.with_for_update()
    row = (await db.execute(stmt)).first()
    return _row(row) if row is not None else None


async def pending_assignments(db: Db, lead_ids: Sequence[int]) -> dict[int, AssignmentRow]:
    """lead id -> its pending assignment, for the leads that have one (one statement for a batch)."""
    if not lead_ids:
        return {}
    rows = (await db.execute(_PENDING_OF_LEADS, {"b_ids": sorted(set(lead_ids))})).all()
    return {row.lead_id: row for row in map(_row, rows)}


async def assignment_by_id(db: Db, assignment_id: int) -> AssignmentRow | None:
    row = (await db.execute(select(*_COLUMNS).where(_a.c.id == assignment_id))).first()
    return _row(row) if row is not None else None


async def pending_of_user(db: Db, user_id: int) -> list[AssignmentRow]:
    """The user's pending assignments, oldest first (re-routed when the user is disabled)."""
    stmt = select(*_COLUMNS).where(_a.c.user_id == user_id, _a.c.status == PENDING).order_by(_a.c.id)
    return [_row(r) for r in (await db.execute(stmt)).all()]


def _supersede(postgres: bool) -> Any:
    """The pending assignment's supersession (returning its id and user); on PostgreSQL with the owner's UPDATE
    in the same statement. Built once: constructing CTEs costs more than running them."""
    stmt = (update(_a).where(_a.c.lead_id == bindparam("b_lead"), _a.c.status == PENDING)
            .values(status=SUPERSEDED, decided_at=bindparam("b_at"), decided_by_user_id=bindparam("b_by"))
            .returning(_a.c.id, _a.c.user_id))
    if not postgres:
        return stmt
    return select(*stmt.cte("old").c).add_cte(_OWN.returning(_leads.c.id).cte("own"))


def _insert_new(postgres: bool, *, owner: bool = False) -> Any:
    """The new pending assignment, returning its row; on PostgreSQL with its "assigned" event (and with
    ``owner``, the lead's owner: one statement for a lead known to have no pending assignment)."""
    new = insert(_a).values({name: bindparam(f"b_{name}") for name in _NEW_COLUMNS}).returning(*_COLUMNS)
    if not postgres:
        return new
    added = new.cte("new")
    event = insert(_events).from_select(
        ["assignment_id", "lead_id", "kind", "at", "actor_user_id", "detail"],
        select(added.c.id, added.c.lead_id, literal("assigned"), added.c.assigned_at, added.c.assigned_by_user_id,
               bindparam("b_detail", type_=_events.c.detail.type)))
    stmt = select(*added.c).add_cte(event.cte("event"))
    return stmt.add_cte(_OWN.returning(_leads.c.id).cte("own")) if owner else stmt


_OWN = update(_leads).where(_leads.c.id == bindparam("b_lead")).values(owner_user_id=bindparam("b_user"))
_NEW_COLUMNS = ("lead_id", "user_id", "team_id", "rule", "reason", "status", "assigned_at", "assigned_by_user_id",
                "previous_id", "sla_step")
_ASSIGN = {postgres: (_supersede(postgres), _insert_new(postgres)) for postgres in (True, False)}
_ASSIGN_FRESH = _insert_new(True, owner=True)


async def assign_lead(tx: EventTx, lead_id: int, user_id: int, *, rule: str, reason: str, at: datetime,
                      team_id: int | None = None, by_user_id: int | None = None,
                      unassigned: bool = False) -> AssignmentRow:
    """Give the lead to ``user_id``: the pending assignment it had becomes "superseded", the new one is pending,
    the lead's owner is the user, the timeline gets "assigned" and LeadAssigned is published.

    The caller holds the lead's row lock (``lock_leads``) when other processes may assign it at once; without it
    the second insert fails on uq_assignments_pending_lead (IntegrityError) rather than double-assigning.
    PostgreSQL does it in two statements (data-modifying CTEs), other databases in four. ``unassigned``: the
    caller checked, under the lead's lock, that the lead has no pending assignment (routing a new MQL), so there
    is nothing to supersede: one statement on PostgreSQL, which matters while the member's lock is held.
    """
    db, rule = tx.db, rule[:120]
    postgres = _postgres(db)
    supersede, new = _ASSIGN[postgres]
    previous = None
    if postgres and unassigned:
        new = _ASSIGN_FRESH
    else:
        # The owner's UPDATE runs once, to completion, inside the first statement on PostgreSQL, though nothing
        # reads it; the supersession comes first elsewhere so the new pending row never meets the old one.
        previous = (await db.execute(supersede, {"b_lead": lead_id, "b_at": at, "b_by": by_user_id,
                                                 "b_user": user_id})).first()
    if not postgres:
        await db.execute(_OWN, {"b_lead": lead_id, "b_user": user_id})
    previous_id, previous_user = (previous[0], previous[1]) if previous is not None else (None, None)
    values = {"b_lead_id": lead_id, "b_user_id": user_id, "b_team_id": team_id, "b_rule": rule, "b_reason": reason,
              "b_status": PENDING, "b_assigned_at": at, "b_assigned_by_user_id": by_user_id,
              "b_previous_id": previous_id, "b_sla_step": 0}
    detail = {"rule": rule, "user_id": user_id, "team_id": team_id, "previous_assignment_id": previous_id}
    if postgres:
        values |= {"b_detail": detail, "b_lead": lead_id, "b_user": user_id}
    row = _row((await db.execute(new, values)).one())
    if not postgres:
        await add_assignment_event(db, row.id, lead_id, "assigned", at=at, actor_user_id=by_user_id, detail=detail)
    if isinstance(db, AsyncSession):
        # Around the ORM: a Lead the session holds learns its owner without a reload or an UPDATE of its own.
        lead = db.identity_map.get(Session.identity_key(Lead, lead_id))
        if lead is not None:
            set_committed_value(lead, "owner_user_id", user_id)
    await tx.publish([LeadAssigned(lead_id, row.id, user_id, row.rule, at, previous_id, previous_user)])
    return row


async def add_assignment_event(db: Db, assignment_id: int, lead_id: int, kind: str, *, at: datetime,
                               actor_user_id: int | None = None, detail: dict[str, Any] | None = None) -> None:
    """One step of the hand-off for the lead's timeline; ``detail`` holds ids, rule and reason codes only."""
    await db.execute(insert(_events).values(assignment_id=assignment_id, lead_id=lead_id, kind=kind, at=at,
                                            actor_user_id=actor_user_id, detail=detail or {}))


@dataclass(frozen=True, slots=True)
class AssignmentView:
    """An assignment with the names the console shows (the assignee, the team, who assigned it by hand)."""

    row: AssignmentRow
    username: str
    user_label: str
    team: str | None
    assigned_by: str | None


async def list_assignments(db: Db, *, status: str | None = None, user_id: int | None = None,
                           lead_id: int | None = None, owner_ids: Sequence[int] | None = None, limit: int = 50,
                           offset: int = 0) -> tuple[list[AssignmentView], int]:
    """Newest first, and how many match. ``owner_ids``: only assignments held by these users (the caller's
    scope; None: all)."""
    users, by, teams = User.__table__.alias("u"), User.__table__.alias("by"), Team.__table__
    where = []
    if status is not None:
        where.append(_a.c.status == status)
    if user_id is not None:
        where.append(_a.c.user_id == user_id)
    if lead_id is not None:
        where.append(_a.c.lead_id == lead_id)
    if owner_ids is not None:
        where.append(_a.c.user_id.in_(list(owner_ids)))
    stmt = (select(*_COLUMNS, users.c.username, users.c.display_name, teams.c.name, by.c.username)
            .join(users, users.c.id == _a.c.user_id).outerjoin(teams, teams.c.id == _a.c.team_id)
            .outerjoin(by, by.c.id == _a.c.assigned_by_user_id)
            .where(*where).order_by(_a.c.id.desc()).limit(limit).offset(offset))
    n = len(_COLUMNS)
    views = [AssignmentView(_row(r[:n]), r[n], r[n + 1] or r[n], r[n + 2], r[n + 3])
             for r in (await db.execute(stmt)).all()]
    total = (await db.execute(select(func.count()).select_from(_a).where(*where))).scalar_one()
    return views, int(total)
