"""A team's members as the round robin sees them (leads/routing.py ranks them): read without locks, one taken
under its row lock, its standing saved.

Only the member a routing gives the lead to is locked: the first in its ranking that no other transaction holds
(``FOR UPDATE SKIP LOCKED``), or, when every candidate is held, the first once its holder is done. That lock
returns the member's latest committed state, so their virtual time grows from there (no update is lost) and
their caps are counted after it (a fresh statement sees every assignment the previous holder committed).
Concurrent routings in one team thus run side by side, each on its own member. SQLite has one writer.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, and_, any_, bindparam, case, func, select, true, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leads.access import SALES, TEAM_LEAD
from leads.routing import Member, day_start, month_start, ranked
from storage.models import Assignment, TeamMember, User
from storage.repos.assignments import STATUSES
from storage.repos.events import EventTx
from storage.tx import Retry

log = logging.getLogger(__name__)

ROUTABLE_ROLES = (SALES, TEAM_LEAD)  # who may hold an MQL: a manager or an SDR in a team gets none
_a, _tm, _users = Assignment.__table__, TeamMember.__table__, User.__table__

_SAVE_MEMBER = (update(_tm).where(_tm.c.team_id == bindparam("b_team"), _tm.c.user_id == bindparam("b_user"))
                .values(virtual_time=bindparam("b_time"), last_assigned_at=bindparam("b_last")))


# Built once: building a statement costs more than the database takes to run these.
_MEMBERS = (select(_tm.c.user_id, _tm.c.weight, _tm.c.capacity, _tm.c.monthly_cap, _tm.c.virtual_time,
                   _tm.c.last_assigned_at, _tm.c.away, _users.c.disabled_at, _users.c.role)
            .join(_users, _users.c.id == _tm.c.user_id).where(_tm.c.team_id == bindparam("b_team")))


_CIRCLES = 1  # waits PostgreSQL may break for one lead before its transaction gives up (and is run again)


def _window(since: str) -> Any:
    return (select(func.count()).where(_a.c.user_id == _tm.c.user_id, _a.c.status.in_(STATUSES),
                                       _a.c.assigned_at >= bindparam(since)).scalar_subquery())


# Full members (as last committed) are passed over by the statement itself: only a capped member is counted.
_UNDER_CAPS = and_(case((_tm.c.capacity > 0, _window("b_day") < _tm.c.capacity), else_=true()),
                   case((_tm.c.monthly_cap > 0, _window("b_month") < _tm.c.monthly_cap), else_=true()))
_CANDIDATES = bindparam("b_users", type_=ARRAY(BigInteger))
# PostgreSQL: the first candidate (in ranking order) under their caps that nobody else holds, locked; waiting:
# the first candidate, once its holder is done. Elsewhere (one writer): the first candidate under their caps.
_RANKED = (_MEMBERS.where(_tm.c.user_id == any_(_CANDIDATES), _UNDER_CAPS)
           .order_by(func.array_position(_CANDIDATES, _tm.c.user_id)).limit(1))
_TAKE = {(True, False): _RANKED.with_for_update(of=_tm, skip_locked=True),
         (True, True): _RANKED.with_for_update(of=_tm),
         (False, False): _MEMBERS.where(_tm.c.user_id == bindparam("b_user"), _UNDER_CAPS),
         (False, True): _MEMBERS.where(_tm.c.user_id == bindparam("b_user"), _UNDER_CAPS)}


async def read_members(db: AsyncSession | AsyncConnection, team_id: int) -> list[Member]:
    """The team's members as last committed, unlocked (their caps are counted once one is taken)."""
    return [_member(r) for r in (await db.execute(_MEMBERS, {"b_team": team_id})).all()]


async def save_member(db: AsyncSession | AsyncConnection, team_id: int, member: Member) -> None:
    """The taken member's standing after the step (``leads.routing.advance``)."""
    await db.execute(_SAVE_MEMBER, {"b_team": team_id, "b_user": member.user_id, "b_time": member.virtual_time,
                                    "b_last": member.last_assigned_at})


async def take_member(tx: EventTx, team_id: int, members: list[Member], lead_id: int, *, at: datetime,
                      excluded: frozenset[int]) -> Member | None:
    """The member the lead goes to, under their row lock and as they are now (``members`` learns their latest
    state); None when nobody in the team is eligible. A member another routing served since the read is still
    taken: their virtual time grows from the latest, so they simply wait longer for the next one."""
    skip, wait, circles = set(excluded), False, 0
    while order := [m.user_id for m in ranked(members, lead_id, frozenset(skip))]:
        params = {"b_team": team_id, "b_users": order[:1] if wait else order, "b_user": order[0],
                  "b_day": day_start(at), "b_month": month_start(at)}
        if wait:
            try:
                fresh = await _wait_for(tx, params, at)  # None: full or gone, or full once its holder was done
            except _WaitedInACircle as circle:
                circles += 1
                if circles > _CIRCLES:  # the members this transaction holds close the circle: let them go
                    raise Retry(f"routing lead {lead_id} waited in a circle with another routing") from circle
                log.info("routing lead %s waited in a circle with another routing: looking again", lead_id)
                wait = False
                continue
        else:
            row = (await tx.db.execute(_TAKE[tx.postgres, False], params)).first()
            fresh = await _counted(tx.db, _member(row), at) if row is not None else None
        if fresh is None:
            if wait or not tx.postgres:
                skip.add(order[0])
            wait = tx.postgres and not wait  # every candidate is another routing's right now: wait for the first
            continue
        members[:] = [fresh if m.user_id == fresh.user_id else m for m in members]
        if fresh.eligible(excluded):
            return fresh
        skip.add(fresh.user_id)  # filled or went away since the read (rare): the next one
        wait = False
    return None


class _WaitedInACircle(Exception):
    """PostgreSQL broke a wait of ours that closed a circle (deadlock_detected) and rolled back its savepoint."""


async def _wait_for(tx: EventTx, params: dict[str, Any], at: datetime) -> Member | None:
    """Wait for the first candidate's row lock; a member found ineligible is let go at once (the savepoint's
    rollback releases the lock), so a routing never holds one member while waiting for another it cannot take.
    A transaction that routes to several teams in separate publishes may still wait in a circle with another;
    PostgreSQL then fails one wait, only its savepoint rolls back, and the routing looks again; a second circle
    rolls the whole transaction back (``storage.tx.Retry``: the inbox and ``in_transaction`` run it again),
    letting go of the members it holds."""
    try:
        async with tx.db.begin_nested() as savepoint:
            row = (await tx.db.execute(_TAKE[True, True], params)).first()
            fresh = await _counted(tx.db, _member(row), at) if row is not None else None
            if fresh is None or not fresh.eligible():
                await savepoint.rollback()
                return None
            return fresh
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == "40P01":
            raise _WaitedInACircle from error
        raise


async def _counted(db: AsyncSession | AsyncConnection, member: Member, at: datetime) -> Member:
    """A capped member's windows counted once their row is locked: a fresh statement sees every assignment
    the lock's previous holder committed."""
    if not (member.capacity or member.monthly_cap):
        return member
    today, month = (await _counts(db, [member.user_id], at)).get(member.user_id, (0, 0))
    return replace(member, today=today, month=month)


def _member(r: Any) -> Member:
    """A member as read (caps are counted once they are locked: ``_counted``)."""
    return Member(r.user_id, weight=r.weight or 0, capacity=r.capacity or 0, monthly_cap=r.monthly_cap or 0,
                  virtual_time=r.virtual_time or 0.0, last_assigned_at=r.last_assigned_at, away=bool(r.away),
                  disabled=r.disabled_at is not None or r.role not in ROUTABLE_ROLES)


async def _counts(db: AsyncSession | AsyncConnection, user_ids: list[int], at: datetime) -> dict[int, tuple[int, int]]:
    """user id -> (assigned today, China time; assigned in the last 30 days), every status counted (listing
    them lets ix_assignments_user_status_assigned_at serve the range)."""
    if not user_ids:
        return {}
    stmt = (select(_a.c.user_id, func.count().filter(_a.c.assigned_at >= day_start(at)), func.count())
            .where(_a.c.user_id.in_(user_ids), _a.c.status.in_(STATUSES), _a.c.assigned_at >= month_start(at))
            .group_by(_a.c.user_id))
    return {row[0]: (row[1], row[2]) for row in (await db.execute(stmt)).all()}
