"""``enqueue``: record an outbound call in the caller's transaction (re-exported by bot/outbox.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.capture import OutboundConfig
from bot.outbox.methods import METHODS, OutboxMethod
from bot.outbox.rules import is_marketing, judge, load_lead_facts, needs_lead_facts
from bot.outbox.wake import wake_after_commit
from storage.models import OutboxMessage, utcnow


async def enqueue(session: AsyncSession, *, target: str, method: str, payload: dict[str, Any],
                  idempotency_key: str, sandbox: bool, lead_id: int | None = None,
                  outbound: OutboundConfig | None = None) -> int | None:
    """Record an outbound call; its id, or None when ``idempotency_key`` was already used.

    ``lead_id``: the lead the message is for (needed for the consent and 48-hour checks; required when
    the payload says ``"marketing": true``). ``outbound``: the [outbound] config, used by the sandbox
    checks (the live sender has its own).
    """
    spec = _validate(target, method, payload, lead_id)
    status, reason, follow_up = "sandboxed" if sandbox else "pending", None, None
    if sandbox and lead_id is not None and needs_lead_facts(spec, payload):
        facts = await load_lead_facts(session, lead_id)
        verdict = judge(spec, payload, facts, outbound or OutboundConfig(), utcnow(), idempotency_key)
        if verdict is not None:
            status, reason, follow_up = verdict.status, verdict.reason, verdict.follow_up
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = OutboxMessage.__table__
    stmt = (
        insert(table)
        .values(idempotency_key=idempotency_key, target=target, method=method, payload=payload, status=status,
                attempts=0, last_error=reason, created_at=utcnow(), lead_id=lead_id)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(table.c.id)
    )
    row_id = (await session.execute(stmt)).scalar_one_or_none()
    if row_id is not None and status == "pending":
        wake_after_commit(session)
    if row_id is not None and follow_up is not None:
        await enqueue(session, target=follow_up.target, method=follow_up.method, payload=follow_up.payload,
                      idempotency_key=follow_up.idempotency_key, sandbox=sandbox, lead_id=lead_id, outbound=outbound)
    return row_id


def _validate(target: str, method: str, payload: dict[str, Any], lead_id: int | None) -> OutboxMethod:
    spec = METHODS.get(method)
    if spec is None:
        raise ValueError(f"unknown outbox method {method!r}")
    if spec.target != target:
        raise ValueError(f"outbox method {method!r} belongs to target {spec.target!r}, not {target!r}")
    missing = [key for key in spec.required if key not in payload]
    if missing:
        raise ValueError(f"outbox method {method!r} needs payload keys {missing}")
    if not isinstance(payload.get("marketing", False), bool):
        raise ValueError("payload key 'marketing' must be true or false")
    if is_marketing(spec, payload) and lead_id is None:
        # Consent is per lead: a marketing message nobody can check must not exist.
        raise ValueError("a marketing message needs a lead_id (its consent is checked before sending)")
    not_after = payload.get("not_after")
    if not_after is not None and (isinstance(not_after, bool) or not isinstance(not_after, int | float)):
        raise ValueError("payload key 'not_after' must be epoch seconds")
    return spec
