"""The writes a batch of journey steps makes besides its own records: outbox rows and SDR tasks, many at once.

Outbox rows carry the step's idempotency key ("journey:<enrolment>:<seq>"): a run that is replayed after a crash
finds the key used and queues nothing twice (the unique index decides, whichever process wrote first).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LeadTask, OutboxMessage
from storage.outbox_wake import wake_after_commit

_OUTBOX = OutboxMessage.__table__


async def queue_messages(session: AsyncSession, rows: Sequence[dict[str, Any]], *, sandbox: bool,
                         now: datetime) -> dict[str, int]:
    """Insert outbox rows ({idempotency_key, target, method, payload, lead_id}); ids by key for the new ones.
    Sandbox rows are only kept ("sandboxed"); live ones wake this process's senders after commit."""
    if not rows:
        return {}
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    status = "sandboxed" if sandbox else "pending"
    values = [{**row, "status": status, "attempts": 0, "created_at": now} for row in rows]
    stmt = (dialect.insert(_OUTBOX).on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(_OUTBOX.c.idempotency_key, _OUTBOX.c.id))
    made = dict((await session.execute(stmt, values)).all()) if len(values) > 1 else \
        dict((await session.execute(stmt.values(values[0]))).all())
    if made and not sandbox:
        wake_after_commit(session)
    return made


async def add_tasks(session: AsyncSession, tasks: Sequence[dict[str, Any]]) -> None:
    """SDR tasks ({lead_id, title, due_at, assignee_user_id, created_at}) made by journeys, not by a person."""
    if tasks:
        await session.execute(insert(LeadTask.__table__),
                              [{"status": "open", "created_by_user_id": None, **t} for t in tasks])
