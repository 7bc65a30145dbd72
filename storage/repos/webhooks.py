"""The CRM webhook in the database: what an accepted lead's delivery says, each attempt, the log, the resend.

Deliveries are outbox rows of target "crm" (bot/outbox, method "crm.lead_accepted"): their retries, backoff and
status are the outbox's. What the outbox does not keep is every attempt's HTTP answer: ``webhook_attempts``
holds one row per try (status code, error, duration), the delivery log admins read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leads.handoff import AcceptedLead
from storage.models import Assignment, Identity, Lead, OutboxMessage, StageTransition, Touchpoint, User, WebhookAttempt
from storage.outbox_wake import wake_after_commit

CRM_TARGET, ACCEPTED_METHOD = "crm", "crm.lead_accepted"
MAX_TOUCHPOINTS, MAX_STAGES = 200, 100  # the newest; a lead's whole history can be long
_ERROR_CHARS = 500


async def accepted_lead(db: AsyncSession | AsyncConnection, lead_id: int, assignment_id: int) -> AcceptedLead:
    """Everything the CRM is told about this accepted assignment, read in the accepting transaction."""
    lead = (await db.execute(select(Lead.__table__).where(Lead.id == lead_id))).one()
    a = (await db.execute(select(Assignment.__table__).where(Assignment.id == assignment_id))).one()
    person = (await db.execute(select(User.id, User.username, User.display_name, User.wecom_userid)
                               .where(User.id == a.user_id))).one()
    identities = (await db.execute(select(Identity.kind, Identity.app, Identity.value, Identity.verified)
                                   .where(Identity.lead_id == lead_id).order_by(Identity.id))).all()
    touches = (await db.execute(
        select(Touchpoint.kind, Touchpoint.channel, Touchpoint.scene, Touchpoint.source_code, Touchpoint.occurred_at)
        .where(Touchpoint.lead_id == lead_id).order_by(Touchpoint.occurred_at.desc(), Touchpoint.id.desc())
        .limit(MAX_TOUCHPOINTS))).all()
    stages = (await db.execute(
        select(StageTransition.from_stage, StageTransition.to_stage, StageTransition.actor, StageTransition.reason,
               StageTransition.occurred_at)
        .where(StageTransition.lead_id == lead_id).order_by(StageTransition.id.desc()).limit(MAX_STAGES))).all()
    profile = {k: v for k, v in (lead.profile or {}).items() if k != "bant"}
    bant = (lead.profile or {}).get("bant")
    return AcceptedLead(
        lead={"id": lead.id, "display_name": lead.display_name, "stage": lead.stage, "created_at": lead.created_at,
              "profile": profile},
        identities=[{"kind": i.kind, "app": i.app, "value": i.value, "verified": i.verified} for i in identities],
        score={"ability": lead.ability, "motivation": lead.motivation, "quadrant": lead.quadrant},
        bant=bant if isinstance(bant, dict) else {},
        touchpoints=[{"kind": t.kind, "channel": t.channel, "scene": t.scene, "source_code": t.source_code,
                      "occurred_at": t.occurred_at} for t in reversed(touches)],
        stages=[{"from": s.from_stage, "to": s.to_stage, "actor": s.actor, "reason": s.reason, "at": s.occurred_at}
                for s in reversed(stages)],
        salesperson={"id": person.id, "username": person.username, "display_name": person.display_name,
                     "wecom_userid": person.wecom_userid},
        assignment={"id": a.id, "rule": a.rule, "reason": a.reason, "team_id": a.team_id,
                    "assigned_at": a.assigned_at, "accepted_at": a.decided_at, "accepted_by_user_id":
                    a.decided_by_user_id},
    )


async def record_attempt(session: AsyncSession, outbox_id: int, *, at: datetime, status_code: int | None,
                         error: str | None, duration_ms: int) -> int:
    """One try, numbered after the ones before it (a resend continues the count); its number."""
    before = (await session.execute(select(func.count()).select_from(WebhookAttempt)
                                    .where(WebhookAttempt.outbox_id == outbox_id))).scalar_one()
    await session.execute(insert(WebhookAttempt).values(
        outbox_id=outbox_id, attempt=before + 1, at=at, status_code=status_code,
        error=error[:_ERROR_CHARS] if error else None, duration_ms=max(0, duration_ms)))
    return before + 1


@dataclass(frozen=True, slots=True)
class Delivery:
    row: OutboxMessage
    attempts: list[WebhookAttempt]


async def list_deliveries(session: AsyncSession, *, status: str | None, lead_id: int | None, limit: int,
                          before_id: int | None) -> list[Delivery]:
    """CRM deliveries newest first (keyset on the id), each with its attempts in order."""
    stmt = (select(OutboxMessage).where(OutboxMessage.target == CRM_TARGET)
            .order_by(OutboxMessage.id.desc()).limit(limit))
    if status:
        stmt = stmt.where(OutboxMessage.status == status)
    if lead_id:
        stmt = stmt.where(OutboxMessage.lead_id == lead_id)
    if before_id:
        stmt = stmt.where(OutboxMessage.id < before_id)
    rows = list((await session.execute(stmt)).scalars())
    by_row: dict[int, list[WebhookAttempt]] = {r.id: [] for r in rows}
    if rows:
        found = await session.execute(select(WebhookAttempt).where(WebhookAttempt.outbox_id.in_(list(by_row)))
                                      .order_by(WebhookAttempt.outbox_id, WebhookAttempt.attempt))
        for attempt in found.scalars():
            by_row[attempt.outbox_id].append(attempt)
    return [Delivery(r, by_row[r.id]) for r in rows]


async def attempts_of(session: AsyncSession, outbox_id: int) -> list[WebhookAttempt]:
    stmt = select(WebhookAttempt).where(WebhookAttempt.outbox_id == outbox_id).order_by(WebhookAttempt.attempt)
    return list((await session.execute(stmt)).scalars())


async def delivery(session: AsyncSession, outbox_id: int) -> OutboxMessage | None:
    row = await session.get(OutboxMessage, outbox_id)
    return row if row is not None and row.target == CRM_TARGET else None


async def resend(session: AsyncSession, row: OutboxMessage, *, now: datetime) -> dict[str, Any]:
    """Queue the same delivery again (same row, same idempotency key: the receiver keeps it once) with a fresh
    attempt budget; what it was before, for the audit entry. Wakes this process's sender after the commit."""
    before = {"status": row.status, "attempts": row.attempts}
    await session.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(
        status="pending", attempts=0, next_attempt_at=now, last_error=None))
    await session.refresh(row)
    wake_after_commit(session)
    return before
