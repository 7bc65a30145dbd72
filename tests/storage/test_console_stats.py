"""The start page's counts: live leads by stage (merged-away and erased leads are not counted), open hand-offs."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from storage.db import session_factory
from storage.models import Handoff, Lead
from storage.repos.console_stats import leads_by_stage, open_handoffs
from tests.sdr_console.console_support import seed_leads


async def test_leads_by_stage_counts_live_leads_only(engine) -> None:
    async with session_factory(engine)() as session:
        assert await leads_by_stage(session) == {} and await open_handoffs(session) == 0
    ids = await seed_leads(engine, {"lead": 3, "mql": 2, "disqualified": 1}, open_handoffs=2)
    async with engine.begin() as conn:
        await conn.execute(update(Lead).where(Lead.id == ids[1]).values(merged_into_id=ids[0]))
        await conn.execute(update(Lead).where(Lead.id == ids[3]).values(erased_at=datetime.now(UTC)))
        await conn.execute(update(Handoff).where(Handoff.message == "问题 0").values(status="closed"))
    async with session_factory(engine)() as session:
        assert await leads_by_stage(session) == {"lead": 2, "mql": 1, "disqualified": 1}
        assert await open_handoffs(session) == 1
