"""The scheduled refresh keeps stored (decayed) motivation current and runs the actions of the quadrant a
fading lead falls into; leads whose value cannot change are left alone."""

from __future__ import annotations

from sqlalchemy import select

from bot.config.scoring import build_scoring
from leads.identity import IdentityKey
from leads.scoring import ScoreModel
from leads.sources import Source
from storage.db import session_factory
from storage.models import LeadScore, LeadTag, StageTransition
from storage.repos.leads import LeadRepository
from storage.repos.score_refresh import refresh_scores
from tests.support.clock import Clock

DAY = 86_400
HOT = {"job_title": "vp_plus", "department": "hr", "company_size": "500_999", "company_type": "b2b"}


async def _lead(sessions, model: ScoreModel, clock: Clock, openid: str, kinds: list[str]) -> int:
    async with sessions() as session, session.begin():
        repo = LeadRepository(session, model, clock)
        lead = await repo.resolve([IdentityKey("oa_openid", "wx_app", openid)], now=clock(), inbox_id=None)
        await repo.merge_profile(lead, HOT)
        for kind in kinds:
            await repo.add_touchpoint(lead, kind=kind, source=Source("website", "form"), occurred_at=clock(),
                                      inbox_id=None)
        return lead.id


async def test_decay_moves_a_fading_lead_out_of_sales_ready_and_leaves_others_alone(engine):
    sessions = session_factory(engine)
    model = ScoreModel(build_scoring({"half_life_days": 10, "decay_grace_days": 0}).rules)
    clock = Clock()
    hot = await _lead(sessions, model, clock, "o_hot", ["request_demo", "visit_pricing"])  # 70
    cold = await _lead(sessions, model, clock, "o_cold", [])  # motivation 0: nothing to decay
    async with engine.connect() as conn:
        rows = {r.lead_id: r for r in (await conn.execute(select(LeadScore))).all()}
    assert rows[hot].quadrant == "sales_ready" and rows[hot].motivation == 70
    cold_scored_at = rows[cold].scored_at

    clock.advance(DAY)  # not yet due: refreshed only when older than the interval
    assert await refresh_scores(sessions, model, older_than_s=2 * DAY, clock=clock) == 0

    clock.advance(9 * DAY)  # one half-life after the events: 35 < 50
    assert await refresh_scores(sessions, model, older_than_s=3600, clock=clock, batch_size=1) == 1
    async with engine.connect() as conn:
        rows = {r.lead_id: r for r in (await conn.execute(select(LeadScore))).all()}
        tags = set((await conn.execute(select(LeadTag.tag).where(LeadTag.lead_id == hot))).scalars())
        moves = (await conn.execute(select(StageTransition.to_stage).where(StageTransition.lead_id == hot))).all()
    assert abs(rows[hot].motivation - 35) < 1e-9 and rows[hot].scored_at == clock()
    assert rows[hot].quadrant == "nurture" and "nurture" in tags
    assert [m.to_stage for m in moves] == ["mql"]  # the MQL stays an MQL: decay does not undo people's work
    assert rows[cold].scored_at == cold_scored_at  # zero motivation never changes: not rewritten
