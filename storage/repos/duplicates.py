"""Duplicate suggestions: a typed phone or email another lead already holds. Recorded by identity resolution,
listed and resolved (merged or dismissed) by an SDR through the console."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from leads.identity import IdentityKey
from storage.models import DuplicateSuggestion, Lead

OPEN, MERGED, DISMISSED = "open", "merged", "dismissed"
STATUSES = (OPEN, MERGED, DISMISSED)


async def record_suggestion(session: AsyncSession, lead_id: int, other_lead_id: int, via: IdentityKey,
                            now: datetime) -> None:
    """One row per pair and identity, whatever its status: a repeat neither adds a row nor reopens a dismissal."""
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    await session.execute(insert(DuplicateSuggestion).values(
        lead_id=lead_id, other_lead_id=other_lead_id, identity_kind=via.kind, identity_value=via.value,
        status=OPEN, created_at=now, resolved_by="").on_conflict_do_nothing())


async def close_moot(session: AsyncSession, survivor_id: int, now: datetime, by: str = "merge") -> None:
    """Open suggestions whose two leads are now both the survivor (after a merge) have nothing left to ask."""
    family = select(Lead.id).where(or_(Lead.id == survivor_id, Lead.merged_into_id == survivor_id))
    await session.execute(update(DuplicateSuggestion).where(
        DuplicateSuggestion.status == OPEN, DuplicateSuggestion.lead_id.in_(family),
        DuplicateSuggestion.other_lead_id.in_(family),
    ).values(status=MERGED, resolved_at=now, resolved_by=by).execution_options(synchronize_session="fetch"))


def _locking(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"  # SQLite has one writer


async def find_suggestion(session: AsyncSession, suggestion_id: int, *, lock: bool = False
                          ) -> DuplicateSuggestion | None:
    """``lock`` holds the row for the transaction and reads it afresh: one decision per suggestion."""
    return await session.get(DuplicateSuggestion, suggestion_id, with_for_update=lock and _locking(session),
                             populate_existing=lock)


async def current_lead(session: AsyncSession, lead_id: int) -> Lead | None:
    """The lead as it is now: one merged since the suggestion was made is its survivor (merges keep one hop)."""
    lead = await session.get(Lead, lead_id)
    if lead is not None and lead.merged_into_id is not None:
        lead = await session.get(Lead, lead.merged_into_id)
    return lead


async def lock_leads(session: AsyncSession, lead_ids: list[int]) -> list[Lead]:
    """Lock and re-read the leads in ascending id order, as identity resolution and erasure do (leads first,
    then their suggestions): concurrent merges, submissions and erasures never deadlock."""
    stmt = select(Lead).where(Lead.id.in_(lead_ids)).order_by(Lead.id).execution_options(populate_existing=True)
    if _locking(session):
        stmt = stmt.with_for_update()
    return list((await session.execute(stmt)).scalars())


async def list_suggestions(session: AsyncSession, status: str | None, limit: int, offset: int
                           ) -> list[tuple[DuplicateSuggestion, Lead, Lead]]:
    """Newest first, each with its two leads (the submitter's, then the one holding the identity)."""
    mine, theirs = aliased(Lead), aliased(Lead)
    stmt = (select(DuplicateSuggestion, mine, theirs)
            .join(mine, mine.id == DuplicateSuggestion.lead_id)
            .join(theirs, theirs.id == DuplicateSuggestion.other_lead_id))
    if status:
        stmt = stmt.where(DuplicateSuggestion.status == status)
    stmt = stmt.order_by(DuplicateSuggestion.created_at.desc(), DuplicateSuggestion.id.desc())
    stmt = stmt.limit(limit).offset(offset)
    return [(s, a, b) for s, a, b in (await session.execute(stmt)).all()]


def resolve_suggestion(suggestion: DuplicateSuggestion, status: str, now: datetime, by: str) -> None:
    suggestion.status, suggestion.resolved_at, suggestion.resolved_by = status, now, by
