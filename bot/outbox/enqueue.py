"""``enqueue``: record an outbound call in the caller's transaction (re-exported by bot/outbox/sender.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.config.outbound import OutboundConfig
from bot.outbox.methods import METHODS, OutboxMethod
from bot.outbox.rules import is_marketing, judge, needs_lead_facts
from storage.models import utcnow
from storage.outbox_wake import wake_after_commit
from storage.repos.outbox import insert_message, load_lead_facts

if TYPE_CHECKING:  # the caller's session, passed through to storage/repos/outbox.py
    from sqlalchemy.ext.asyncio import AsyncSession


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
    row_id = await insert_message(session, idempotency_key=idempotency_key, target=target, method=method,
                                  payload=payload, status=status, last_error=reason, lead_id=lead_id,
                                  created_at=utcnow())
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
