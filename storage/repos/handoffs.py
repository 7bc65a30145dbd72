"""The SDR hand-off queue: conversations the bot could not answer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Handoff, Lead


async def open_handoff(session: AsyncSession, *, lead_id: int, inbox_id: int | None, reason: str, message: str,
                       at: datetime) -> None:
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    await session.execute(insert(Handoff).values(lead_id=lead_id, inbox_id=inbox_id, reason=reason, message=message,
                                                 status="open", created_at=at).on_conflict_do_nothing())


async def list_handoffs(session: AsyncSession, status: str | None, limit: int, offset: int, *,
                        owner_ids: list[int] | None = None) -> list[Handoff]:
    """``owner_ids``: only questions about leads assigned to one of these users; None: all of them."""
    stmt = select(Handoff)
    if owner_ids is not None:
        stmt = stmt.where(Handoff.lead_id.in_(select(Lead.id).where(Lead.owner_user_id.in_(owner_ids))))
    if status:
        stmt = stmt.where(Handoff.status == status)
    stmt = stmt.order_by(Handoff.created_at, Handoff.id).limit(limit).offset(offset)
    return list((await session.execute(stmt)).scalars())
