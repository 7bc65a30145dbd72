"""Recompute batches through SQLAlchemy Core: the portable path (SQLite; PostgreSQL uses recompute_pg.py).

The same batch, transaction and progress rules as the PostgreSQL path; SQLite has a single writer, so the
batch's transaction already excludes concurrent incremental updates.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from leads.events import DomainEvents
from leads.scoring import ScoreModel
from storage.models import Lead, LeadScore, ScoreRecomputeRun, Touchpoint
from storage.recompute.batch import BatchResult, LeadRow, group_events, score_batch
from storage.recompute.pg import NO_UPPER_BOUND, RunTakenOver
from storage.repos.events import EventTx


class SqlBatches:
    def __init__(self, conn: AsyncConnection, model: ScoreModel, *, now: datetime, dry_run: bool,
                 run_id: int | None, events: DomainEvents[EventTx]) -> None:
        self.conn = conn
        self.tx = EventTx(conn, events)  # subscribers run in the batch's transaction, on its connection
        self.model = model
        self.now = now
        self.dry_run = dry_run
        self.run_id = run_id
        self.kinds = sorted(model.scored_kinds)
        self.postgres = conn.dialect.name == "postgresql"
        self._insert: Callable[..., Any] = postgresql.insert if self.postgres else sqlite.insert

    async def run(self, after: int, limit: int, upto: int = NO_UPPER_BOUND) -> BatchResult | None:
        conn = self.conn
        async with conn.begin():
            query = (select(Lead.id, Lead.stage, Lead.profile)
                     .where(Lead.id > after, Lead.id <= upto, Lead.merged_into_id.is_(None))
                     .order_by(Lead.id).limit(limit))
            if self.postgres and not self.dry_run:
                query = query.with_for_update()
            leads = (await conn.execute(query)).all()
            if not leads:
                return None
            first, last = leads[0].id, leads[-1].id
            stored = {r.lead_id: r for r in (await conn.execute(
                select(LeadScore.lead_id, LeadScore.ability, LeadScore.motivation, LeadScore.quadrant)
                .where(LeadScore.lead_id.between(first, last)))).all()}
            events = group_events((await conn.execute(
                select(Touchpoint.lead_id, Touchpoint.id, Touchpoint.kind, Touchpoint.occurred_at,
                       Touchpoint.channel, Touchpoint.scene, Touchpoint.detail)
                .where(Touchpoint.lead_id.between(first, last), Touchpoint.kind.in_(self.kinds))
                .order_by(Touchpoint.lead_id, Touchpoint.occurred_at, Touchpoint.id))).all())
            rows = []
            for lead in leads:
                old = stored.get(lead.id)
                rows.append(LeadRow(lead.id, lead.stage, lead.profile or {}, *(
                    (old.ability, old.motivation, old.quadrant) if old is not None else ())))
            result = score_batch(self.model, rows, events, self.now)
            if not self.dry_run:
                await self._write(result, after)
            return result

    async def _write(self, result: BatchResult, after: int) -> None:
        conn, now, fingerprint = self.conn, self.now, self.model.fingerprint
        stmt = self._insert(LeadScore)
        await conn.execute(stmt.on_conflict_do_update(index_elements=[LeadScore.lead_id], set_={
            name: stmt.excluded[name] for name in ("ability", "motivation", "quadrant", "rules", "state", "scored_at")
        }), [{"lead_id": i, "ability": a, "motivation": m, "quadrant": q, "rules": fingerprint, "state": s,
              "scored_at": now} for i, a, m, q, s in result.scores])
        await self.tx.publish(result.entered)
        run = ScoreRecomputeRun
        done = await conn.execute(update(run).where(
            run.id == self.run_id, run.last_lead_id == after, run.status == "running").values(
            last_lead_id=result.last_lead_id, leads_seen=run.leads_seen + result.leads_seen,
            score_changes=run.score_changes + result.score_changes,
            quadrant_changes=run.quadrant_changes + result.quadrant_changes,
            stage_changes=run.stage_changes + result.stage_changes))
        if done.rowcount != 1:
            raise RunTakenOver(f"score recompute run {self.run_id} moved on without this process "
                               "(another `leadrelay scores recompute` is running?)")
