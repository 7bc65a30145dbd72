"""``leadrelay user disable NAME`` hands the member's pending MQLs to their teammates (rule "member_disabled"), in
the transaction that disables them, with the running app's subscribers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from bot.cli import main
from bot.config.handoff import build_routing
from storage.db import create_engine, session_factory
from storage.models import Assignment, Lead, utcnow
from storage.repos.events import NO_SUBSCRIBERS, EventTx
from storage.repos.routing import route_lead
from storage.repos.teams import add_team, set_member
from storage.repos.users import add_user
from storage.settings import DatabaseConfig
from tests.support.backends import Backend

ROUTING = build_routing({"rules": [{"team": "east"}]})


async def _seed(url: str) -> tuple[int, int, list[int]]:
    engine = create_engine(DatabaseConfig(url=url))
    try:
        sessions = session_factory(engine)
        async with sessions() as s, s.begin():
            team = await add_team(s, "east")
            a = await add_user(s, username="a", role="sales", password_hash="x")
            b = await add_user(s, username="b", role="sales", password_hash="x")
            await set_member(s, team.id, a.id)
            await set_member(s, team.id, b.id)
            leads = [Lead(stage="mql") for _ in range(4)]
            s.add_all(leads)
            await s.flush()
            ids = [lead.id for lead in leads]
        for lead_id in ids:
            async with sessions() as s, s.begin():
                await route_lead(EventTx(s, NO_SUBSCRIBERS), lead_id, ROUTING, at=utcnow())
        return a.id, b.id, ids
    finally:
        await engine.dispose()


async def _pending(url: str) -> list[tuple[int, int, str]]:
    engine = create_engine(DatabaseConfig(url=url))
    try:
        async with session_factory(engine)() as s:
            stmt = select(Assignment.lead_id, Assignment.user_id, Assignment.rule).where(Assignment.status == "pending")
            return sorted(tuple(r) for r in (await s.execute(stmt)).all())
    finally:
        await engine.dispose()


def test_disabling_a_member_from_the_cli_reroutes_their_mqls(tmp_path: Path, backend: Backend) -> None:
    config = tmp_path / "leadrelay.toml"
    config.write_text(f'[database]\nurl = "{backend.database_url}"\n[wechat]\napp_id = "wx1"\ntoken = "t"\n'
                      '[[routing.rules]]\nteam = "east"\n', encoding="utf-8")
    a, b, leads = asyncio.run(_seed(backend.database_url))
    before = asyncio.run(_pending(backend.database_url))
    held = [lead for lead, user, _ in before if user == a]
    assert len(held) == 2
    assert main(["user", "disable", "a", "--config", str(config)]) == 0
    after = asyncio.run(_pending(backend.database_url))
    assert [(lead, user) for lead, user, _ in after] == [(lead, b) for lead in leads]
    assert sorted(lead for lead, _, rule in after if rule == "member_disabled") == held
