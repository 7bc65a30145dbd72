"""Domain events from storage (leads/events.py, storage/repos/events.py) on both backends: the incremental
path, a person's stage change, the decay refresh and the recompute publish what happened; subscribers run in
the publisher's transaction (their writes commit with it, their failure rolls it back); the quadrant actions
are themselves a subscriber."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.config.scoring import build_scoring, default_scoring
from leads.events import BecameMQL, DomainEvents, QuadrantEntered, StageChanged
from leads.identity import IdentityKey
from leads.lifecycle import transition
from leads.scoring import ScoreModel
from leads.sources import Source
from storage.db import session_factory
from storage.models import Lead, LeadScore, LeadTag, ScoreRecomputeRun, StageTransition, Touchpoint
from storage.recompute.run import recompute
from storage.repos.events import NO_SUBSCRIBERS, EventTx
from storage.repos.leads import LeadRepository
from storage.repos.quadrant_actions import standard_events
from storage.repos.score_refresh import refresh_scores
from storage.repos.scores import apply_transition
from tests.support.clock import Clock

RULES = default_scoring().rules
HOT = {"job_title": "vp_plus", "department": "hr", "company_size": "500_999", "company_type": "b2b"}
WEB = Source("website", "form")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
Heard = list[tuple[Any, Any]]  # (the transaction a subscriber got, the event)


def listening(heard: Heard, base: DomainEvents[EventTx] | None = None) -> DomainEvents[EventTx]:
    """``base`` (the standard subscribers by default) plus one that notes every event and its transaction."""
    async def note(tx: EventTx, events: Sequence[Any]) -> None:
        heard.extend((tx.db, e) for e in events)

    registry = standard_events(RULES.actions) if base is None else base
    for kind in (QuadrantEntered, StageChanged, BecameMQL):
        registry = registry.subscribe(kind, note)
    return registry


async def new_lead(sessions: async_sessionmaker, events: DomainEvents[EventTx], openid: str,
                   kinds: Sequence[str] = (), *, model: ScoreModel | None = None,
                   clock: Any = lambda: NOW) -> int:
    async with sessions() as session, session.begin():
        repo = LeadRepository(session, model or ScoreModel(RULES), clock, events)
        lead = await repo.resolve([IdentityKey("oa_openid", "wx_app", openid)], now=clock(), inbox_id=None)
        await repo.merge_profile(lead, HOT)
        for kind in kinds:
            await repo.add_touchpoint(lead, kind=kind, source=WEB, occurred_at=clock(), inbox_id=None)
        return lead.id


async def touch(sessions: async_sessionmaker, events: DomainEvents[EventTx], lead_id: int, kind: str) -> Lead:
    async with sessions() as session, session.begin():
        lead = await session.get_one(Lead, lead_id)
        await LeadRepository(session, ScoreModel(RULES), lambda: NOW, events).add_touchpoint(
            lead, kind=kind, source=WEB, occurred_at=NOW, inbox_id=None)
        return lead


async def stored(engine: AsyncEngine, lead_id: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        def where(model: Any) -> Any:
            return select(model).where(model.lead_id == lead_id)

        return {
            "stage": (await conn.execute(select(Lead.stage).where(Lead.id == lead_id))).scalar_one(),
            "quadrant": (await conn.execute(select(LeadScore.quadrant).where(LeadScore.lead_id == lead_id)))
            .scalar_one_or_none(),
            "tags": sorted((await conn.execute(select(LeadTag.tag).where(LeadTag.lead_id == lead_id))).scalars()),
            "moves": [(r.from_stage, r.to_stage) for r in (await conn.execute(where(StageTransition))).all()],
            "touchpoints": (await conn.execute(select(func.count()).select_from(Touchpoint)
                                               .where(Touchpoint.lead_id == lead_id))).scalar_one(),
        }


async def test_a_touchpoint_that_makes_an_mql_publishes_in_order_in_its_own_transaction(engine: AsyncEngine) -> None:
    sessions, heard = session_factory(engine), []
    events = listening(heard)
    lead_id = await new_lead(sessions, events, "o_1", ["visit_pricing"])
    assert [(e.old, e.new) for _, e in heard] == [(None, "public_pool"), ("public_pool", "nurture")]
    heard.clear()

    async with sessions() as session, session.begin():
        lead = await session.get_one(Lead, lead_id)
        await LeadRepository(session, ScoreModel(RULES), lambda: NOW, events).add_touchpoint(
            lead, kind="request_demo", source=WEB, occurred_at=NOW, inbox_id=None)
        assert lead.stage == "mql"  # the session's lead learnt what the subscriber wrote
        touchpoint_id = (await session.execute(select(func.max(Touchpoint.id)))).scalar_one()

    assert [type(e) for _, e in heard] == [QuadrantEntered, StageChanged, BecameMQL]
    assert all(db is session for db, _ in heard)
    entered, changed, became = (e for _, e in heard)
    assert (entered.lead_id, entered.old, entered.new, entered.stage, entered.touchpoint_id) == (
        lead_id, "nurture", "sales_ready", "lead", touchpoint_id)
    assert (changed.from_stage, changed.to_stage, changed.actor, changed.actor_id, changed.touchpoint_id) == (
        "lead", "mql", "system", "quadrant:sales_ready", touchpoint_id)
    assert (became.lead_id, became.from_stage, became.at) == (lead_id, "lead", NOW)
    # The quadrant actions (the standard subscriber) ran too: the nurture tag went, the stage moved.
    assert await stored(engine, lead_id) == {"stage": "mql", "quadrant": "sales_ready", "tags": [],
                                             "moves": [("lead", "mql")], "touchpoints": 2}


async def test_what_a_subscriber_writes_commits_with_the_touchpoint_and_its_failure_rolls_it_back(
        engine: AsyncEngine) -> None:
    sessions = session_factory(engine)

    async def route(tx: EventTx, became: Sequence[BecameMQL]) -> None:
        await tx.db.execute(insert(LeadTag), [{"lead_id": e.lead_id, "tag": "routed", "created_at": e.at}
                                              for e in became])

    async def refuse(tx: EventTx, became: Sequence[BecameMQL]) -> None:
        raise RuntimeError("routing is down")

    failing = standard_events(RULES.actions).subscribe(BecameMQL, route).subscribe(BecameMQL, refuse)
    lead_id = await new_lead(sessions, failing, "o_2", ["visit_pricing"])
    before = await stored(engine, lead_id)
    assert before == {"stage": "lead", "quadrant": "nurture", "tags": ["nurture"], "moves": [], "touchpoints": 1}

    with pytest.raises(RuntimeError, match="routing is down"):
        await touch(sessions, failing, lead_id, "request_demo")
    assert await stored(engine, lead_id) == before  # no touchpoint, score, tag, stage or history: all or nothing

    await touch(sessions, standard_events(RULES.actions).subscribe(BecameMQL, route), lead_id, "request_demo")
    after = await stored(engine, lead_id)
    assert (after["stage"], after["tags"], after["touchpoints"]) == ("mql", ["routed"], 2)


async def test_without_the_quadrant_actions_subscribed_scores_change_and_nothing_else(engine: AsyncEngine) -> None:
    sessions, heard = session_factory(engine), []
    lead_id = await new_lead(sessions, listening(heard, NO_SUBSCRIBERS), "o_3", ["request_demo", "visit_pricing"])
    assert [e.new for _, e in heard] == ["public_pool", "nurture", "sales_ready"]  # still reported
    assert await stored(engine, lead_id) == {"stage": "lead", "quadrant": "sales_ready", "tags": [], "moves": [],
                                             "touchpoints": 2}


async def test_a_person_moving_a_lead_publishes_the_change(engine: AsyncEngine) -> None:
    sessions, heard = session_factory(engine), []
    lead_id = await new_lead(sessions, NO_SUBSCRIBERS, "o_4")
    async with sessions() as session, session.begin():
        lead = await session.get_one(Lead, lead_id)
        await apply_transition(session, lead, transition("lead", "mql", "sdr", "called, interested", "u7"), at=NOW,
                               touchpoint_id=None, events=listening(heard))
        assert lead.stage == "mql"
    assert [(type(e), e.actor, e.actor_id) for _, e in heard] == [(StageChanged, "sdr", "u7"), (BecameMQL, "sdr", "u7")]
    assert (await stored(engine, lead_id))["moves"] == [("lead", "mql")]


async def test_the_decay_refresh_publishes_a_fading_lead_in_its_batch_transaction(engine: AsyncEngine) -> None:
    sessions, heard, clock = session_factory(engine), [], Clock()
    model = ScoreModel(build_scoring({"half_life_days": 10, "decay_grace_days": 0}).rules)
    lead_id = await new_lead(sessions, NO_SUBSCRIBERS, "o_5", ["request_demo", "visit_pricing"], model=model,
                             clock=clock)
    clock.advance(10 * 86_400)

    assert await refresh_scores(sessions, model, older_than_s=3600, clock=clock, events=listening(heard)) == 1

    [(db, entered)] = heard
    assert isinstance(entered, QuadrantEntered)
    assert (entered.lead_id, entered.old, entered.new, entered.touchpoint_id, entered.at) == (
        lead_id, "sales_ready", "nurture", None, clock())
    assert (await stored(engine, lead_id))["tags"] == ["nurture"]  # the standard subscriber ran in that batch


# -- recompute: the batch's events, published in the batch's transaction ------------------------------------
def lower_threshold(model: ScoreModel) -> ScoreModel:
    return ScoreModel(dataclasses.replace(model.rules, motivation_threshold=15.0))


async def warm_leads(engine: AsyncEngine, count: int) -> list[int]:
    """Leads in nurture (visit_pricing: 20 < 50) that a threshold of 15 makes sales_ready (and MQLs)."""
    sessions = session_factory(engine)
    return [await new_lead(sessions, standard_events(RULES.actions), f"o_warm{i}", ["visit_pricing"])
            for i in range(count)]


async def note_heard(tx: EventTx, entered: Sequence[QuadrantEntered]) -> None:
    """Module level: picklable, so it can travel to recompute worker processes."""
    await tx.db.execute(insert(LeadTag), [{"lead_id": e.lead_id, "tag": f"heard:{e.new}", "created_at": e.at}
                                          for e in entered])


async def test_recompute_publishes_each_batch_and_runs_its_subscribers_in_the_batch(engine: AsyncEngine) -> None:
    ids = await warm_leads(engine, 3)
    heard: Heard = []
    events = listening(heard).subscribe(QuadrantEntered, note_heard)
    batches: list[int] = []

    async def count_batches(tx: EventTx, entered: Sequence[QuadrantEntered]) -> None:
        batches.append(len(entered))

    report = await recompute(engine, lower_threshold(ScoreModel(RULES)), now=NOW, batch_size=2,
                             events=events.subscribe(QuadrantEntered, count_batches))

    assert (report.quadrant_changes, report.stage_changes, report.finished) == (3, 3, True)
    assert batches == [2, 1]  # one call per batch, not per lead
    kinds = [(type(e), e.lead_id) for _, e in heard]
    assert kinds == [(QuadrantEntered, ids[0]), (QuadrantEntered, ids[1]), (StageChanged, ids[0]),
                     (StageChanged, ids[1]), (BecameMQL, ids[0]), (BecameMQL, ids[1]),
                     (QuadrantEntered, ids[2]), (StageChanged, ids[2]), (BecameMQL, ids[2])]
    entered = heard[0][1]
    assert (entered.old, entered.new, entered.stage, entered.at, entered.touchpoint_id) == (
        "nurture", "sales_ready", "lead", NOW, None)
    for lead_id in ids:
        assert await stored(engine, lead_id) == {"stage": "mql", "quadrant": "sales_ready", "touchpoints": 1,
                                                 "tags": ["heard:sales_ready"], "moves": [("lead", "mql")]}


async def test_a_failing_subscriber_rolls_back_its_recompute_batch(engine: AsyncEngine) -> None:
    ids = await warm_leads(engine, 3)
    before = [await stored(engine, i) for i in ids]

    async def fail_on_the_last(tx: EventTx, entered: Sequence[QuadrantEntered]) -> None:
        if any(e.lead_id == ids[2] for e in entered):
            raise RuntimeError("subscriber failed")

    with pytest.raises(RuntimeError, match="subscriber failed"):
        await recompute(engine, lower_threshold(ScoreModel(RULES)), now=NOW, batch_size=2,
                        events=standard_events(RULES.actions).subscribe(QuadrantEntered, note_heard)
                        .subscribe(QuadrantEntered, fail_on_the_last))

    first, second, third = [await stored(engine, i) for i in ids]
    assert first["tags"] == second["tags"] == ["heard:sales_ready"] and first["stage"] == "mql"  # committed batch
    assert third == before[2]  # its batch rolled back: no score, tag, stage or history of it
    async with engine.connect() as conn:
        assert (await conn.execute(select(ScoreRecomputeRun.last_lead_id))).scalar_one() == ids[1]


async def test_worker_processes_run_picklable_subscribers_in_their_batches(engine: AsyncEngine, backend: Any) -> None:
    if not backend.is_production:
        pytest.skip("worker processes: PostgreSQL only")
    ids = await warm_leads(engine, 4)
    report = await recompute(engine, lower_threshold(ScoreModel(RULES)), now=NOW, batch_size=1, workers=2,
                             events=standard_events(RULES.actions).subscribe(QuadrantEntered, note_heard))
    assert (report.quadrant_changes, report.stage_changes, report.finished) == (4, 4, True)
    for lead_id in ids:
        assert (await stored(engine, lead_id))["tags"] == ["heard:sales_ready"]

