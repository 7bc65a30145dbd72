"""Scores don't flicker at the threshold (issue 11, point 8), on both backends: a lead scored live at exactly
the MQL threshold, or pushed over it with older decaying points, keeps its quadrant through the grace period;
``leadrelay scores recompute --dry-run`` (storage/cli.py) straight after live scoring finds nothing to change;
the score-refresh job leaves it alone until the grace period ends."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config.scoring import build_scoring
from leads.identity import IdentityKey
from leads.scoring import ScoreModel
from leads.scoring_rules import ScoringRules
from leads.sources import Source
from storage.cli import scores_recompute
from storage.db import session_factory
from storage.models import Lead, LeadScore, LeadTag, utcnow
from storage.recompute.run import recompute
from storage.repos.leads import LeadRepository
from storage.repos.quadrant_actions import standard_events
from storage.repos.score_refresh import refresh_scores
from storage.settings import DatabaseConfig
from tests.support.clock import Clock

HIGH = {"job_title": "vp_plus", "department": "hr", "company_type": "b2b"}  # ability 35
LOW = {"job_title": "staff", "company_type": "nonprofit"}  # ability -5
WEB = Source(channel="website", scene="form")
DAY = 86_400


async def add_lead(engine: AsyncEngine, model: ScoreModel, name: str, profile: dict[str, Any],
                   events: list[tuple[str, float, dict[str, Any]]], now: datetime, clock: Clock | None) -> int:
    """Scored live (the incremental path, the wall clock unless ``clock``); events are (kind, days before
    ``now``, detail)."""
    async with session_factory(engine)() as session, session.begin():
        repo = LeadRepository(session, model, clock) if clock is not None else LeadRepository(session, model)
        lead = await repo.resolve([IdentityKey("oa_openid", "wx1", name)], now=now - timedelta(days=30),
                                  inbox_id=None)
        await repo.merge_profile(lead, profile)
        for kind, days, detail in events:
            await repo.add_touchpoint(lead, kind=kind, source=WEB, occurred_at=now - timedelta(days=days),
                                      inbox_id=None, detail=detail)
        return lead.id


async def seed(engine: AsyncEngine, rules: ScoringRules, clock: Clock | None = None) -> dict[str, int]:
    """With ``clock``, scored at the moment of the newest events (a second ago), as the issue saw it."""
    model = ScoreModel(rules)
    now = clock() if clock is not None else utcnow() - timedelta(seconds=1)
    return {
        # exactly 50: the MQL that read 49.9999987 a moment later
        "demo": await add_lead(engine, model, "demo", HIGH, [("request_demo", 0, {})], now, clock),
        # 30 + 10 points 9-10 days old (past their grace, fading) + 20 now = 57.5: over the threshold, held
        "held": await add_lead(engine, model, "held", HIGH, [
            ("webinar_register", 10, {"content_id": "w1"}), ("webinar_attend", 10, {"content_id": "w1"}),
            ("content_download", 9, {"content_id": "wp", "key": False}), ("visit_pricing", 0, {})], now, clock),
        # 20 points two days old: within their grace
        "fresh": await add_lead(engine, model, "fresh", LOW, [("visit_pricing", 2, {})], now, clock),
    }


async def dry_run(backend: Any, rules: ScoringRules, capsys: pytest.CaptureFixture[str]) -> str:
    """``leadrelay scores recompute --dry-run``: the command's own function, printing its summary."""
    capsys.readouterr()
    code = await scores_recompute(DatabaseConfig(url=backend.database_url), rules, standard_events(rules.actions),
                                  dry_run=True, batch_size=2, restart=False, workers=1)
    assert code == 0
    return capsys.readouterr().out


async def stored(engine: AsyncEngine) -> dict[int, tuple[float, str, str, set[str]]]:
    async with engine.connect() as conn:
        scores = (await conn.execute(select(LeadScore.lead_id, LeadScore.motivation, LeadScore.quadrant))).all()
        stages = dict((await conn.execute(select(Lead.id, Lead.stage))).all())
        tags: dict[int, set[str]] = {}
        for lead_id, tag in (await conn.execute(select(LeadTag.lead_id, LeadTag.tag))).all():
            tags.setdefault(lead_id, set()).add(tag)
    return {s.lead_id: (s.motivation, s.quadrant, stages[s.lead_id], tags.get(s.lead_id, set())) for s in scores}


async def test_a_dry_run_straight_after_live_scoring_changes_nothing(
        engine: AsyncEngine, backend: Any, capsys: pytest.CaptureFixture[str]) -> None:
    rules = build_scoring(None).rules  # the defaults: threshold 50, half-life 30 days, grace 7 days
    ids = await seed(engine, rules)
    rows = await stored(engine)
    assert rows[ids["demo"]] == (50.0, "sales_ready", "mql", set())
    assert rows[ids["held"]][1:3] == ("sales_ready", "mql") and rows[ids["held"]][0] > 50
    assert rows[ids["fresh"]][:2] == (20.0, "public_pool")

    out = await dry_run(backend, rules, capsys)
    assert "leads seen: 3" in out
    assert "would change score: 0" in out
    assert "would change quadrant: 0" in out
    assert "would change stage: 0" in out

    # The score refresh, due at once: every value rewritten as it was, no quadrant left, no nurture tag.
    sessions = session_factory(engine)
    model = ScoreModel(rules)
    assert await refresh_scores(sessions, model, older_than_s=0) == 3
    assert await stored(engine) == rows


async def test_the_mql_keeps_its_quadrant_through_the_grace_period_then_decays(engine: AsyncEngine) -> None:
    rules = build_scoring(None).rules
    ids = await seed(engine, rules)
    before = await stored(engine)
    model = ScoreModel(rules)
    sessions = session_factory(engine)
    clock = Clock()
    clock.advance(7 * DAY - 120)  # the grace period all but over
    assert await refresh_scores(sessions, model, older_than_s=0, clock=clock) == 3
    after = await stored(engine)
    for name in ("demo", "held"):  # held: nothing of theirs faded
        assert after[ids[name]] == before[ids[name]]
    # The fresh lead's points (2 days old at the start) are past their grace: fading, in the same quadrant.
    assert after[ids["fresh"]][0] < 20 and after[ids["fresh"]][1:] == before[ids["fresh"]][1:]
    report = await recompute(engine, model, now=clock(), dry_run=True)
    assert (report.score_changes, report.quadrant_changes, report.stage_changes) == (0, 0, 0)

    clock.advance(DAY)  # a day after: the points fade again
    await refresh_scores(sessions, model, older_than_s=0, clock=clock)
    after = await stored(engine)
    demo = after[ids["demo"]]
    assert 48 < demo[0] < 50 and demo[1:3] == ("nurture", "mql") and "nurture" in demo[3]
    assert after[ids["held"]][0] < before[ids["held"]][0]


async def test_without_a_grace_period_the_threshold_flickers(
        engine: AsyncEngine, backend: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The behaviour the grace period removes (and what shows the test above can fail)."""
    rules = build_scoring({"decay_grace_days": 0}).rules
    clock = Clock()
    clock.advance(-1)
    ids = await seed(engine, rules, clock)
    assert (await stored(engine))[ids["demo"]] == (50.0, "sales_ready", "mql", set())
    out = await dry_run(backend, rules, capsys)  # a second later: 49.99998..
    assert "would change quadrant: 1" in out and "would change score: 0" not in out
