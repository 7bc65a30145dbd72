"""Database commands behind ``leadrelay db`` and ``leadrelay scores``."""

from __future__ import annotations

import sys

from leads.events import DomainEvents
from leads.scoring_rules import ScoringRules
from storage.db import create_engine
from storage.repos.events import EventTx
from storage.settings import DatabaseConfig


async def db_upgrade(database: DatabaseConfig) -> None:
    from storage.migrate import upgrade  # here: importing Alembic logs its plugin set-up at INFO

    engine = create_engine(database)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def scores_recompute(database: DatabaseConfig, rules: ScoringRules, events: DomainEvents[EventTx], *,
                           dry_run: bool, batch_size: int, restart: bool, workers: int) -> int:
    """``leadrelay scores recompute``: prints a plain summary; 0 on success."""
    from leads.scoring import ScoreModel
    from storage.models import utcnow
    from storage.recompute.run import RunTakenOver, recompute

    if batch_size < 1 or workers < 1:
        print("leadrelay: --batch-size and --workers must be at least 1", file=sys.stderr)
        return 2
    engine = create_engine(database)
    try:
        report = await recompute(engine, ScoreModel(rules), now=utcnow(), dry_run=dry_run, events=events,
                                 batch_size=batch_size, restart=restart, workers=workers)
    except RunTakenOver as exc:
        print(f"leadrelay: {exc}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    verb = "would change" if dry_run else "changed"
    if dry_run:
        print("dry run: nothing was written")
    else:
        resumed = f", resumed after lead {report.resumed_from}" if report.resumed_from else ""
        state = "finished" if report.finished else "stopped early (run it again to resume)"
        print(f"recompute run {report.run_id}{resumed}: {state}")
    print(f"leads seen: {report.leads_seen}")
    print(f"{verb} score: {report.score_changes}")
    print(f"{verb} quadrant: {report.quadrant_changes}")
    print(f"{verb} stage: {report.stage_changes}")
    print(f"seconds: {report.seconds:.1f}")
    return 0
