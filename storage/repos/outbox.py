"""The outbox table: rows ``enqueue`` writes, the sender picks and updates, the console lists.

What a row means and when it may be sent is decided in bot/outbox/ (rules, attempts); this module only reads
and writes rows, and the lead facts those rules need.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, null, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Lead, OutboxMessage

# Every status a row can have, for the API's filter ("cancelled": the lead's data was erased, repos/erasure.py;
# "suppressed", "skipped" and "fallback": the outbound rules' verdicts, bot/outbox/rules.py; "merged": sent as
# part of a digest row, bot/outbox/digest.py).
OUTBOX_STATUSES = ("pending", "sent", "failed", "sandboxed", "suppressed", "skipped", "fallback", "cancelled",
                   "merged")


@dataclass(frozen=True)
class LeadFacts:
    """What the outbound rules know about the person a row is for."""

    consent: str
    oa_last_interaction_at: datetime | None


async def insert_message(session: AsyncSession, *, idempotency_key: str, target: str, method: str,
                         payload: dict[str, Any], status: str, last_error: str | None, lead_id: int | None,
                         created_at: datetime) -> int | None:
    """Add a row in the caller's transaction; its id, or None when ``idempotency_key`` was already used."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    table = OutboxMessage.__table__
    stmt = (
        insert(table)
        .values(idempotency_key=idempotency_key, target=target, method=method, payload=payload, status=status,
                attempts=0, last_error=last_error, created_at=created_at, lead_id=lead_id)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(table.c.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def load_lead_facts(session: AsyncSession, lead_id: int) -> LeadFacts | None:
    """Consent and last OA action of the person behind ``lead_id`` (its merge survivor)."""
    lead = await session.get(Lead, lead_id)
    if lead is None:
        return None
    if lead.merged_into_id is not None:  # merges keep one hop (see LeadRepository._merge)
        lead = await session.get(Lead, lead.merged_into_id) or lead
    # A merge leaves oa_last_interaction_at on the absorbed lead: the person's last action is the latest.
    latest = (await session.execute(
        select(func.max(Lead.oa_last_interaction_at))
        .where(or_(Lead.id == lead.id, Lead.merged_into_id == lead.id))
    )).scalar()
    candidates = [t for t in (latest, lead.oa_last_interaction_at) if t is not None]
    return LeadFacts(consent=lead.consent, oa_last_interaction_at=max(candidates) if candidates else None)


async def due_messages(session: AsyncSession, *, targets: Collection[str], now: datetime, limit: int,
                       methods: Collection[str] | None = None, exclude_methods: bool = False,
                       skip_locked: bool = False) -> list[OutboxMessage]:
    """Pending rows for ``targets`` whose retry time has come, oldest first.

    ``methods``: only rows of these methods (or, with ``exclude_methods``, only rows of other methods).
    ``skip_locked`` (PostgreSQL): lock the rows for the transaction, passing over rows another one holds.
    """
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.status == "pending", OutboxMessage.target.in_(sorted(targets)),
               or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if methods is not None:
        of_methods = OutboxMessage.method.in_(sorted(methods))
        stmt = stmt.where(~of_methods if exclude_methods else of_methods)
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.execute(stmt)).scalars())


async def get_message(session: AsyncSession, message_id: int) -> OutboxMessage | None:
    return await session.get(OutboxMessage, message_id)


def record_outcome(row: OutboxMessage, *, counts: bool, status: str, response: dict[str, Any] | None,
                   last_error: str | None, next_attempt_at: datetime | None, sent_at: datetime | None) -> None:
    """Write an attempt's result on its row (flushed with the session's transaction)."""
    if counts:
        row.attempts += 1
    row.status = status
    # SQL NULL, not JSON null, so "no response" reads the same on both backends.
    row.response = response if response is not None else null()
    row.last_error = last_error
    row.next_attempt_at = next_attempt_at
    if sent_at is not None:
        row.sent_at = sent_at


async def list_outbox(session: AsyncSession, *, status: str | None, method: str | None, lead_id: int | None,
                      limit: int, offset: int) -> list[OutboxMessage]:
    """Rows newest first, optionally of one status, one method and one lead."""
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit).offset(offset)
    if status:
        stmt = stmt.where(OutboxMessage.status == status)
    if method:
        stmt = stmt.where(OutboxMessage.method == method)
    if lead_id:
        stmt = stmt.where(OutboxMessage.lead_id == lead_id)
    return list((await session.execute(stmt)).scalars())
