"""The audit log: who did what, when, to what, before and after; refusals too (outcome "denied")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry, utcnow

OK, DENIED = "ok", "denied"


async def record(session: AsyncSession, *, action: str, actor_user_id: int | None = None, actor_label: str = "",
                 target_kind: str = "", target_id: str | int = "", before: dict[str, Any] | None = None,
                 after: dict[str, Any] | None = None, ip: str | None = None, outcome: str = OK,
                 at: datetime | None = None) -> AuditEntry:
    """Adds one entry in the caller's transaction: it commits, or rolls back, with the change it describes."""
    entry = AuditEntry(at=at or utcnow(), actor_user_id=actor_user_id, actor_label=actor_label[:64],
                       action=action[:64], target_kind=target_kind[:32], target_id=str(target_id)[:64],
                       before=before, after=after, ip=ip[:64] if ip else None, outcome=outcome)
    session.add(entry)
    await session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class AuditFilters:
    actor_user_id: int | None = None
    action: str | None = None
    target_kind: str | None = None
    target_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_audit(session: AsyncSession, filters: AuditFilters | None = None, limit: int = 50,
                     offset: int = 0) -> list[AuditEntry]:
    """Newest first."""
    f = filters or AuditFilters()
    stmt = select(AuditEntry)
    if f.actor_user_id is not None:
        stmt = stmt.where(AuditEntry.actor_user_id == f.actor_user_id)
    if f.action:
        stmt = stmt.where(AuditEntry.action == f.action)
    if f.target_kind:
        stmt = stmt.where(AuditEntry.target_kind == f.target_kind)
    if f.target_id:
        stmt = stmt.where(AuditEntry.target_id == f.target_id)
    if f.outcome:
        stmt = stmt.where(AuditEntry.outcome == f.outcome)
    if f.since is not None:
        stmt = stmt.where(AuditEntry.at >= f.since)
    if f.until is not None:
        stmt = stmt.where(AuditEntry.at < f.until)
    stmt = stmt.order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    return list((await session.execute(stmt)).scalars())
