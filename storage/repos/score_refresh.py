"""The scheduled refresh: stored motivation values decay with time, so they are recomputed from the stored
state (no touchpoints read), and a lead whose decayed score leaves its quadrant is published as
QuadrantEntered (its quadrant actions run through the subscribers, in the batch's transaction).

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL: the job is cluster-wide (bot/jobs), and a
run that overlaps the hand-over to another process skips what the other holds instead of waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from leads.events import DomainEvents, QuadrantEntered
from leads.lifecycle import MERGED
from leads.scoring import MotivationState, ScoreModel
from storage.models import Lead, LeadScore, utcnow
from storage.repos.events import EventTx
from storage.repos.quadrant_actions import standard_events

log = logging.getLogger(__name__)


async def refresh_scores(sessions: async_sessionmaker, model: ScoreModel, *, older_than_s: float,
                         clock: Callable[[], datetime] = utcnow, batch_size: int = 500,
                         max_batches: int = 1_000, events: DomainEvents[EventTx] | None = None) -> int:
    """Refresh rows last scored more than ``older_than_s`` ago whose value can still change; returns how many.

    ``events``: who hears the quadrant changes; by default the quadrant actions of ``model``'s rules.
    """
    events = events if events is not None else standard_events(model.rules.actions)
    refreshed = 0
    for _ in range(max_batches):
        done = await _refresh_batch(sessions, model, events, clock(), older_than_s, batch_size)
        refreshed += done
        if done < batch_size:
            break
    if refreshed:
        log.info("score refresh: %d stored scores brought up to date", refreshed)
    return refreshed


async def _refresh_batch(sessions: async_sessionmaker, model: ScoreModel, events: DomainEvents[EventTx],
                         now: datetime, older_than_s: float, batch_size: int) -> int:
    async with sessions() as session, session.begin():
        postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
        # Only rows built with the current rules (others are rebuilt by `leadrelay scores recompute` or their
        # next touchpoint) and with motivation left to decay.
        stmt = (select(LeadScore, Lead).join(Lead, Lead.id == LeadScore.lead_id)
                .where(LeadScore.rules == model.fingerprint, LeadScore.motivation != 0,
                       LeadScore.scored_at < now - timedelta(seconds=older_than_s))
                .order_by(LeadScore.scored_at).limit(batch_size))
        if postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        rows = (await session.execute(stmt)).all()
        entered: list[QuadrantEntered] = []
        for score, lead in rows:
            if lead.stage == MERGED:
                await session.delete(score)  # its history lives on the survivor now
                continue
            score.motivation = model.motivation(MotivationState.from_json(score.state), now)
            score.scored_at = now
            quadrant = model.rules.quadrant(score.ability, score.motivation)
            if quadrant != score.quadrant:
                entered.append(QuadrantEntered(lead.id, score.quadrant, quadrant, lead.stage, now))
                score.quadrant = quadrant
        await session.flush()
        await EventTx(session, events).publish(entered)
        return len(rows)
