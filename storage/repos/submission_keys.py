"""Idempotency keys of stored submissions (``submission_keys``): a retry with the same key is answered from
here instead of being stored again. The key is inserted in the submission's own transaction, so either both
are stored or neither; a concurrent duplicate loses on the primary key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import SubmissionKey


class AlreadySubmitted(Exception):
    """The key is stored already: the caller rolls its transaction back and answers success."""

    def __init__(self, lead_id: int) -> None:
        super().__init__(lead_id)
        self.lead_id = lead_id


async def submitted_lead(session: AsyncSession, key_hash: str, *, since: datetime | None = None) -> int | None:
    """The lead a submission with this key was stored on (at or after ``since``, when given), or None."""
    query = select(SubmissionKey.lead_id).where(SubmissionKey.key_hash == key_hash)
    if since is not None:
        query = query.where(SubmissionKey.created_at >= since)
    return await session.scalar(query)


async def claim_submission_key(session: AsyncSession, key_hash: str, lead_id: int, now: datetime, *,
                               since: datetime | None = None) -> None:
    """Record the key in the caller's transaction; AlreadySubmitted if it is there already (and, with ``since``,
    recent enough — an older row of the same key is replaced).

    A concurrent duplicate that inserts between the check and the commit fails with a unique violation;
    storage.tx.in_transaction runs it again, and this check then finds the key.
    """
    existing = await submitted_lead(session, key_hash, since=since)
    if existing is not None:
        raise AlreadySubmitted(existing)
    if since is not None:
        await session.execute(delete(SubmissionKey).where(SubmissionKey.key_hash == key_hash))
    session.add(SubmissionKey(key_hash=key_hash, lead_id=lead_id, created_at=now))
    await session.flush()  # the unique violation, if any, here inside the transaction


async def prune_submission_keys(session: AsyncSession, before: datetime) -> int:
    """Forget keys older than ``before``: a client's retries come long before that."""
    result = await session.execute(delete(SubmissionKey).where(SubmissionKey.created_at < before))
    return result.rowcount or 0
