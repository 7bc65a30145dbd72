"""The hand-off SLA's rows: its timers in ``sla_timers`` (APScheduler's job store table) and the step reached.

Timers are written in the transaction that made the assignment (the LeadAssigned subscriber, bot/handoff/sla.py)
and deleted in the one that decided it: they commit or roll back with their cause, and no second connection
waits on the publisher's locks (SQLite's single writer would deadlock). The rows are APScheduler's own format
(id, next_run_time as epoch seconds, the pickled job state), built in bot/handoff/sla_scheduler.py; the
scheduler of the leading process reads them like any job it had added itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leads.access import MANAGER
from storage.models import Assignment, Lead, SlaTimer, User

Db = AsyncSession | AsyncConnection
_timers = SlaTimer.__table__
_a = Assignment.__table__
_users = User.__table__
_leads = Lead.__table__


async def add_timers(db: Db, rows: Sequence[tuple[str, float, bytes]]) -> None:
    """(job id, next run as epoch seconds, pickled job state) rows; an id already stored is replaced."""
    if not rows:
        return
    ids = [row[0] for row in rows]
    await db.execute(delete(_timers).where(_timers.c.id.in_(ids)))
    await db.execute(insert(_timers), [{"id": i, "next_run_time": at, "job_state": state} for i, at, state in rows])


async def remove_timers(db: Db, ids: Sequence[str]) -> int:
    if not ids:
        return 0
    return (await db.execute(delete(_timers).where(_timers.c.id.in_(list(ids))))).rowcount or 0


async def timer_times(db: Db, prefix: str = "sla:") -> dict[str, float | None]:
    """Job id -> next run (epoch seconds) of the timers whose id starts with ``prefix``."""
    stmt = select(_timers.c.id, _timers.c.next_run_time).where(_timers.c.id.startswith(prefix, autoescape=True))
    return {row.id: row.next_run_time for row in (await db.execute(stmt)).all()}


async def advance_sla_step(db: Db, assignment_id: int, step: int) -> bool:
    """Record that the pending assignment reached SLA step ``step``; False when it is no longer pending or
    already there: the guard that makes a step happen once however many schedulers fire it (the UPDATE
    re-checks its WHERE after waiting for a concurrent one on PostgreSQL)."""
    stmt = (update(_a).where(_a.c.id == assignment_id, _a.c.status == "pending", _a.c.sla_step < step)
            .values(sla_step=step))
    return ((await db.execute(stmt)).rowcount or 0) == 1


async def lead_label(db: Db, lead_id: int) -> str:
    """What a notice calls the lead: its display name, else its number."""
    name = (await db.execute(select(_leads.c.display_name).where(_leads.c.id == lead_id))).scalar_one_or_none()
    return name or f"#{lead_id}"


async def notice_users(db: Db, user_ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
    """user id -> (display name or username, WeCom userid) of the enabled users among ``user_ids``."""
    if not user_ids:
        return {}
    stmt = select(_users.c.id, _users.c.display_name, _users.c.username, _users.c.wecom_userid).where(
        _users.c.id.in_(sorted(set(user_ids))), _users.c.disabled_at.is_(None))
    return {r.id: (r.display_name or r.username, r.wecom_userid) for r in (await db.execute(stmt)).all()}


async def manager_ids(db: Db) -> list[int]:
    """The enabled managers: who hears an escalation when the assignee has no team lead."""
    stmt = select(_users.c.id).where(_users.c.role == MANAGER, _users.c.disabled_at.is_(None)).order_by(_users.c.id)
    return list((await db.execute(stmt)).scalars())
