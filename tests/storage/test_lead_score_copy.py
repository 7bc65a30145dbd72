"""The lead row's copy of its scores (migration 0009's trigger) follows every write to lead_scores: insert,
update (a decay, a recompute) and delete (a merge), on both backends."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from storage.db import session_factory
from storage.models import Lead, LeadScore, utcnow


async def copy_of(engine, lead_id: int) -> tuple[str | None, float | None, float | None]:
    async with session_factory(engine)() as session:
        row = (await session.execute(select(Lead.quadrant, Lead.ability, Lead.motivation)
                                     .where(Lead.id == lead_id))).one()
        return tuple(row)


async def test_the_copy_follows_lead_scores(engine):
    async with session_factory(engine)() as session, session.begin():
        lead = Lead(display_name="复制", profile={})
        session.add(lead)
        await session.flush()
        lead_id = lead.id
    assert await copy_of(engine, lead_id) == (None, None, None)
    async with session_factory(engine)() as session, session.begin():
        session.add(LeadScore(lead_id=lead_id, ability=40.0, motivation=70.0, quadrant="nurture", rules="r",
                              state={}, scored_at=utcnow()))
    assert await copy_of(engine, lead_id) == ("nurture", 40.0, 70.0)
    async with session_factory(engine)() as session, session.begin():
        await session.execute(update(LeadScore).where(LeadScore.lead_id == lead_id)
                              .values(motivation=85.5, quadrant="sales_ready"))
    assert await copy_of(engine, lead_id) == ("sales_ready", 40.0, 85.5)
    async with session_factory(engine)() as session, session.begin():  # not a score column: nothing to copy
        await session.execute(update(LeadScore).where(LeadScore.lead_id == lead_id).values(rules="s"))
    assert await copy_of(engine, lead_id) == ("sales_ready", 40.0, 85.5)
    async with session_factory(engine)() as session, session.begin():
        await session.execute(delete(LeadScore).where(LeadScore.lead_id == lead_id))
    assert await copy_of(engine, lead_id) == (None, None, None)
