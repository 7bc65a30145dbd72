"""``leadrelay scores recompute`` (storage/recompute/run.py) on both backends: it rebuilds exactly the rows the
incremental path writes, a dry run counts without writing, a rule change moves leads between quadrants with
the quadrant's actions, runs are deterministic and resumable, merged leads are left alone."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from bot.config.scoring import default_scoring
from leads.identity import IdentityKey
from leads.lifecycle import transition
from leads.scoring import ScoreModel
from leads.scoring_rules import MotivationRule, ScoringRules
from leads.sources import Source
from storage.db import create_engine, session_factory
from storage.models import Lead, LeadScore, LeadTag, ScoreRecomputeRun, StageTransition
from storage.recompute.run import recompute
from storage.repos.leads import LeadRepository
from storage.repos.scores import LeadScorer, apply_transition
from storage.settings import DatabaseConfig

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RULES = default_scoring().rules
HIGH = {"job_title": "vp_plus", "department": "hr", "company_type": "b2b"}  # ability 35
LOW = {"job_title": "staff", "company_type": "nonprofit"}  # ability -5
OA = Source(channel="wechat_oa", scene="menu")


def changed(rules: ScoringRules) -> ScoringRules:
    """Other rules: webinar registrations weigh 15 instead of 10, "high" motivation starts at 25."""
    motivation = tuple(dataclasses.replace(r, points=15) if r.id == "webinar_register" else r for r in rules.motivation)
    return dataclasses.replace(rules, motivation=motivation, motivation_threshold=25.0)


async def add_lead(engine: AsyncEngine, model: ScoreModel, name: str, profile: dict[str, Any],
                   events: list[tuple[str, float, dict[str, Any]]], *, now: datetime, stage: str | None = None) -> int:
    """A lead built through the incremental path at ``now``; events are (kind, days before now, detail)."""
    async with session_factory(engine)() as session, session.begin():
        repo = LeadRepository(session, model, clock=lambda: now)
        lead = await repo.resolve([IdentityKey("oa_openid", "wx1", name)], now=now - timedelta(days=60),
                                  inbox_id=None)
        await repo.merge_profile(lead, profile)
        for kind, days, detail in events:
            await repo.add_touchpoint(lead, kind=kind, source=OA, occurred_at=now - timedelta(days=days),
                                      inbox_id=None, detail=detail)
        if stage is not None:  # a person moved it on
            await apply_transition(session, lead, transition(lead.stage, stage, "sdr", "qualified by phone"),
                                   at=now, touchpoint_id=None)
        return lead.id


WEBINAR = ("webinar_register", 3.0, {"content_id": "w1"})
PRICING = ("visit_pricing", 2.0, {})


async def scenario(engine: AsyncEngine, now: datetime = NOW) -> dict[str, int]:
    """Leads scored incrementally with the default rules (threshold 50), some events out of order."""
    model = ScoreModel(RULES)
    ids = {
        # 20 + 10 = 30: nurture; with the changed rules 20 + 15 = 35 >= 25: sales_ready (and an MQL)
        "nurture_to_mql": await add_lead(engine, model, "a", HIGH, [PRICING, WEBINAR, ("oa_message_text", 1, {})],
                                         now=now),
        # public_pool -> other_solution: tags change, the stage does not
        "pool_to_other": await add_lead(engine, model, "b", LOW, [WEBINAR, PRICING], now=now),
        # no motivation at all: nurture either way
        "quiet": await add_lead(engine, model, "c", HIGH, [("oa_message_text", 5, {}), ("oa_click", 4, {})], now=now),
        # sales_ready under the changed rules, but sales accepted it already: no system stage change
        "accepted": await add_lead(engine, model, "d", HIGH, [PRICING, WEBINAR], now=now, stage="mql"),
        # many events, out of order, caps and content: the default rules' whole machinery
        "busy": await add_lead(engine, model, "e", LOW, [
            ("content_view", 9, {"content_id": "a1"}), ("content_download", 8, {"content_id": "wp", "key": False}),
            ("content_view", 10, {"content_id": "a2"}), ("content_view", 7, {"content_id": "a3"}),
            ("content_download", 6, {"content_id": "wp", "key": False}), ("email_open", 5, {}),
            ("email_open", 5.01, {}), ("oa_unsubscribe", 1, {})], now=now),
    }
    async with session_factory(engine)() as session, session.begin():
        accepted = await session.get_one(Lead, ids["accepted"])
        await apply_transition(session, accepted, transition("mql", "sal", "sales", "accepted"), at=now,
                               touchpoint_id=None)
    return ids


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    async with engine.connect() as conn:
        async def rows(stmt: Any) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in (await conn.execute(stmt)).all()]

        s, t = LeadScore, StageTransition
        return {
            "scores": await rows(select(s.lead_id, s.ability, s.motivation, s.quadrant, s.rules, s.state, s.scored_at)
                                 .order_by(s.lead_id)),
            "tags": await rows(select(LeadTag.lead_id, LeadTag.tag).order_by(LeadTag.lead_id, LeadTag.tag)),
            "stages": await rows(select(Lead.id, Lead.stage, Lead.merged_into_id).order_by(Lead.id)),
            "transitions": await rows(select(t.lead_id, t.from_stage, t.to_stage, t.actor, t.actor_id, t.reason,
                                             t.touchpoint_id, t.occurred_at).order_by(t.id)),
            "runs": await rows(select(ScoreRecomputeRun.id, ScoreRecomputeRun.status, ScoreRecomputeRun.last_lead_id)),
        }


async def incremental_rows(engine: AsyncEngine, model: ScoreModel, lead_ids: list[int]) -> list[tuple[Any, ...]]:
    """What LeadScorer writes for each lead at NOW (in a transaction rolled back afterwards)."""
    out = []
    async with session_factory(engine)() as session:
        for lead_id in lead_ids:
            await LeadScorer(session, model, clock=lambda: NOW).rebuild(await session.get_one(Lead, lead_id))
            s = await session.get_one(LeadScore, lead_id)
            out.append((s.lead_id, s.ability, s.motivation, s.quadrant, s.rules, s.state, s.scored_at))
        await session.rollback()
    return out


async def test_recompute_rebuilds_exactly_the_incremental_rows(engine: AsyncEngine) -> None:
    ids = await scenario(engine)
    before = await snapshot(engine)
    assert len(before["scores"]) == 5

    report = await recompute(engine, ScoreModel(RULES), now=NOW)

    assert (report.leads_seen, report.score_changes, report.quadrant_changes, report.stage_changes) == (5, 0, 0, 0)
    assert report.finished and report.run_id is not None and report.resumed_from == 0
    after = await snapshot(engine)
    assert after["scores"] == before["scores"]  # ability, motivation, quadrant, rules, state, scored_at
    assert {k: after[k] for k in ("tags", "stages", "transitions")} == {
        k: before[k] for k in ("tags", "stages", "transitions")}
    assert after["runs"] == [(report.run_id, "finished", max(ids.values()))]


async def test_rule_change_dry_run_counts_then_the_run_applies_and_a_rerun_changes_nothing(
        engine: AsyncEngine) -> None:
    ids = await scenario(engine)
    model = ScoreModel(changed(RULES))
    before = await snapshot(engine)

    dry = await recompute(engine, model, now=NOW, dry_run=True)

    # nurture_to_mql, pool_to_other, accepted change quadrant; only nurture_to_mql becomes an MQL; "busy" has
    # no webinar: the same scores.
    assert (dry.leads_seen, dry.score_changes, dry.quadrant_changes, dry.stage_changes) == (5, 3, 3, 1)
    assert dry.run_id is None and dry.finished and dry.dry_run
    assert await snapshot(engine) == before  # nothing written, not even a run row

    real = await recompute(engine, model, now=NOW)

    assert (real.leads_seen, real.score_changes, real.quadrant_changes, real.stage_changes) == (5, 3, 3, 1)
    after = await snapshot(engine)
    assert after["scores"] == await incremental_rows(engine, model, sorted(ids.values()))
    stages = dict((i, stage) for i, stage, _ in after["stages"])
    assert stages[ids["nurture_to_mql"]] == "mql" and stages[ids["accepted"]] == "sal"
    assert after["transitions"][len(before["transitions"]):] == [
        (ids["nurture_to_mql"], "lead", "mql", "system", "quadrant:sales_ready", "评分进入象限 sales_ready", None, NOW)]
    tags = {(i, t) for i, t in after["tags"]}
    assert {t for i, t in tags if i == ids["pool_to_other"]} == {"other_solution"}
    assert not {t for i, t in tags if i in (ids["nurture_to_mql"], ids["accepted"])}
    assert {t for i, t in tags if i == ids["quiet"]} == {"nurture"}

    again = await recompute(engine, model, now=NOW)

    assert (again.leads_seen, again.score_changes, again.quadrant_changes, again.stage_changes) == (5, 0, 0, 0)
    assert again.run_id != real.run_id  # a finished run is not resumed: a new one
    final = await snapshot(engine)
    assert {k: v for k, v in final.items() if k != "runs"} == {k: v for k, v in after.items() if k != "runs"}


async def restore(engine: AsyncEngine, state: dict[str, list[tuple[Any, ...]]]) -> None:
    """Put scores, tags, stages and transitions back as snapshotted (runs are forgotten)."""
    async with engine.begin() as conn:
        for model in (StageTransition, LeadTag, LeadScore, ScoreRecomputeRun):
            await conn.execute(delete(model))
        keys = ("lead_id", "ability", "motivation", "quadrant", "rules", "state", "scored_at")
        await conn.execute(insert(LeadScore), [dict(zip(keys, r, strict=True)) for r in state["scores"]])
        await conn.execute(insert(LeadTag), [{"lead_id": i, "tag": t, "created_at": NOW} for i, t in state["tags"]])
        for lead_id, stage, _ in state["stages"]:
            await conn.execute(update(Lead).where(Lead.id == lead_id).values(stage=stage))
        keys = ("lead_id", "from_stage", "to_stage", "actor", "actor_id", "reason", "touchpoint_id", "occurred_at")
        await conn.execute(insert(StageTransition), [dict(zip(keys, r, strict=True)) for r in state["transitions"]])


async def test_an_interrupted_run_resumes_and_ends_like_an_uninterrupted_one(engine: AsyncEngine) -> None:
    ids = await scenario(engine)
    model = ScoreModel(changed(RULES))
    initial = await snapshot(engine)

    first = await recompute(engine, model, now=NOW, batch_size=2, max_batches=1)
    assert (first.leads_seen, first.finished) == (2, False)
    second_lead = sorted(ids.values())[1]
    assert (await snapshot(engine))["runs"] == [(first.run_id, "running", second_lead)]
    second = await recompute(engine, model, now=NOW, batch_size=2)
    assert (second.run_id, second.resumed_from, second.leads_seen, second.finished) == (
        first.run_id, second_lead, 3, True)
    assert first.quadrant_changes + second.quadrant_changes == 3
    resumed = await snapshot(engine)

    await restore(engine, initial)
    whole = await recompute(engine, model, now=NOW, batch_size=2)
    assert (whole.leads_seen, whole.quadrant_changes, whole.stage_changes, whole.finished) == (5, 3, 1, True)
    assert {k: v for k, v in (await snapshot(engine)).items() if k != "runs"} == {
        k: v for k, v in resumed.items() if k != "runs"}


async def test_restart_starts_over_and_other_rules_supersede_an_unfinished_run(engine: AsyncEngine) -> None:
    await scenario(engine)
    model = ScoreModel(changed(RULES))
    first = await recompute(engine, model, now=NOW, batch_size=2, max_batches=1)
    restarted = await recompute(engine, model, now=NOW, batch_size=2, max_batches=1, restart=True)
    assert restarted.run_id != first.run_id and restarted.resumed_from == 0
    other = await recompute(engine, ScoreModel(RULES), now=NOW)
    assert other.finished and other.resumed_from == 0
    resumed = await recompute(engine, model, now=NOW, batch_size=2)  # its unfinished run was superseded
    assert resumed.resumed_from == 0 and resumed.run_id not in (first.run_id, restarted.run_id)
    runs = {run_id: status for run_id, status, _ in (await snapshot(engine))["runs"]}
    assert runs == {first.run_id: "superseded", restarted.run_id: "superseded", other.run_id: "finished",
                    resumed.run_id: "finished"}


async def test_merged_leads_are_skipped(engine: AsyncEngine) -> None:
    ids = await scenario(engine)
    absorbed = ids["busy"]
    async with engine.begin() as conn:  # what LeadRepository._merge leaves behind (plus a stale score row)
        await conn.execute(update(Lead).where(Lead.id == absorbed).values(stage="merged",
                                                                          merged_into_id=ids["quiet"]))
    before = await snapshot(engine)

    report = await recompute(engine, ScoreModel(changed(RULES)), now=NOW)

    assert report.leads_seen == 4
    after = await snapshot(engine)
    assert [r for r in after["scores"] if r[0] == absorbed] == [r for r in before["scores"] if r[0] == absorbed]
    assert [r for r in after["tags"] if r[0] == absorbed] == [r for r in before["tags"] if r[0] == absorbed]


async def test_an_empty_database_finishes_at_once(engine: AsyncEngine) -> None:
    report = await recompute(engine, ScoreModel(RULES), now=NOW)
    assert (report.leads_seen, report.finished) == (0, True)


async def test_without_motivation_rules_only_ability_counts(engine: AsyncEngine) -> None:
    ids = await scenario(engine)
    model = ScoreModel(dataclasses.replace(RULES, motivation=(MotivationRule("x", "never_happens", 1),)))
    await recompute(engine, model, now=NOW)
    rows = {r[0]: r for r in (await snapshot(engine))["scores"]}
    assert rows[ids["nurture_to_mql"]][1:4] == (35.0, 0.0, "nurture")
    assert rows[ids["pool_to_other"]][1:4] == (-5.0, 0.0, "public_pool")


def test_cli_dry_run_prints_the_summary(tmp_path: Path, sqlite_template: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "leadrelay.db"
    db.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite+aiosqlite:///{db}"

    async def seed() -> None:
        engine = create_engine(DatabaseConfig(url=url))
        try:
            await scenario(engine, datetime.now(UTC))
        finally:
            await engine.dispose()

    asyncio.run(seed())
    config = tmp_path / "leadrelay.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[wechat]\napp_id = "wx1"\ntoken = "t"\n'
                      "[scoring]\nmotivation_threshold = 25\n", encoding="utf-8")

    assert main(["scores", "recompute", "--config", str(config), "--dry-run", "--batch-size", "2"]) == 0

    out = capsys.readouterr().out
    assert "dry run: nothing was written" in out
    assert "leads seen: 5" in out
    # threshold 25 alone (webinars still 10): nurture_to_mql (30) and accepted (30) become sales_ready,
    # pool_to_other (-5, 30) other_solution; one lead becomes an MQL
    assert "would change quadrant: 3" in out and "would change stage: 1" in out
    # Scores themselves change by decay between seeding and the run (milliseconds, but above 1e-6 on a slow
    # machine): only that the line is there is certain.
    assert "would change score: " in out
    assert "seconds:" in out


# -- PostgreSQL: the snapshot stream, locking against incremental updates, worker processes ---------------
def production_only(backend: Any) -> None:
    if not backend.is_production:
        pytest.skip("PostgreSQL path")


async def add_touchpoint(engine: AsyncEngine, lead_id: int, kind: str, days: float, detail: dict[str, Any]) -> None:
    async with session_factory(engine)() as session, session.begin():
        lead = await session.get_one(Lead, lead_id, with_for_update=True)
        await LeadRepository(session, ScoreModel(RULES), clock=lambda: NOW).add_touchpoint(
            lead, kind=kind, source=OA, occurred_at=NOW - timedelta(days=days), inbox_id=None, detail=detail)


async def test_touchpoints_committed_after_the_snapshot_are_read_again_under_the_lock(
        engine: AsyncEngine, backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    production_only(backend)
    from storage.recompute import pg as recompute_pg

    ids = await scenario(engine)
    original, late = recompute_pg.PgBatches._prepare, ids["busy"]

    async def prepare_after_a_late_touchpoint(self: Any, conn: Any, lo: int, hi: int) -> Any:
        if lo < late <= hi and not getattr(self, "late_added", False):
            self.late_added = True  # the stream's snapshot is taken: this touchpoint is not in it
            await add_touchpoint(engine, late, "request_demo", 0.5, {})
        return await original(self, conn, lo, hi)

    monkeypatch.setattr(recompute_pg.PgBatches, "_prepare", prepare_after_a_late_touchpoint)
    report = await recompute(engine, ScoreModel(RULES), now=NOW, batch_size=2)

    assert report.score_changes == 0  # the row the incremental update wrote is exactly what was rebuilt
    rows = {r[0]: r for r in (await snapshot(engine))["scores"]}
    assert [rows[i] for i in sorted(ids.values())] == await incremental_rows(engine, ScoreModel(RULES),
                                                                             sorted(ids.values()))
    assert "request_demo" in {h[0] for h in rows[late][5]["hits"]}


async def test_a_batch_waits_for_an_incremental_update_that_holds_its_lead(engine: AsyncEngine, backend: Any) -> None:
    production_only(backend)
    ids = await scenario(engine)
    lead_id = ids["quiet"]
    async with session_factory(engine)() as session:
        async with session.begin():
            lead = await session.get_one(Lead, lead_id, with_for_update=True)
            await LeadRepository(session, ScoreModel(RULES), clock=lambda: NOW).add_touchpoint(
                lead, kind="request_demo", source=OA, occurred_at=NOW - timedelta(hours=1), inbox_id=None)
            task = asyncio.ensure_future(recompute(engine, ScoreModel(RULES), now=NOW))
            await asyncio.sleep(0.5)
            assert not task.done()  # its batch waits for the lead's lock
        report = await task

    assert report.finished and report.score_changes == 0
    rows = {r[0]: r for r in (await snapshot(engine))["scores"]}
    assert rows[lead_id] == (await incremental_rows(engine, ScoreModel(RULES), [lead_id]))[0]
    assert [h[0] for h in rows[lead_id][5]["hits"]] == ["request_demo"]


async def more_leads(engine: AsyncEngine, count: int) -> None:
    model = ScoreModel(RULES)
    for i in range(count):
        profile = HIGH if i % 2 else LOW
        events = [WEBINAR, PRICING] if i % 3 else [("content_view", d, {"content_id": f"c{d}"}) for d in (3, 2, 1)]
        await add_lead(engine, model, f"extra{i}", profile, events, now=NOW)


async def test_two_worker_processes_give_the_result_of_one_and_keep_progress_a_prefix(
        engine: AsyncEngine, backend: Any) -> None:
    production_only(backend)
    await scenario(engine)
    await more_leads(engine, 9)
    model = ScoreModel(changed(RULES))
    initial = await snapshot(engine)

    single = await recompute(engine, model, now=NOW, batch_size=2)
    expected = await snapshot(engine)
    await restore(engine, initial)
    dry = await recompute(engine, model, now=NOW, batch_size=2, dry_run=True, workers=2)
    parallel = await recompute(engine, model, now=NOW, batch_size=2, workers=2)

    counts = (single.leads_seen, single.score_changes, single.quadrant_changes, single.stage_changes)
    assert (parallel.leads_seen, parallel.score_changes, parallel.quadrant_changes, parallel.stage_changes) == counts
    assert (dry.leads_seen, dry.score_changes, dry.quadrant_changes, dry.stage_changes) == counts
    assert parallel.finished and counts[2] > 3
    got = await snapshot(engine)
    assert {k: v for k, v in got.items() if k not in ("runs", "transitions")} == {
        k: v for k, v in expected.items() if k not in ("runs", "transitions")}
    assert sorted(got["transitions"]) == sorted(expected["transitions"])  # committed in either worker's order

    await restore(engine, initial)
    first = await recompute(engine, model, now=NOW, batch_size=2, workers=2, max_batches=3)
    third_batch_end = sorted(r[0] for r in initial["stages"])[5]
    assert (first.leads_seen, first.finished) == (6, False)
    assert (await snapshot(engine))["runs"] == [(first.run_id, "running", third_batch_end)]
    rest = await recompute(engine, model, now=NOW, batch_size=2, workers=2)
    assert (rest.resumed_from, rest.leads_seen, rest.finished) == (third_batch_end, 8, True)
    got = await snapshot(engine)
    assert got["scores"] == expected["scores"] and got["tags"] == expected["tags"]
