"""``leadrelay serve --demo``: demo prospects through the real pipeline, the demo people in two teams, and a
banner saying where to click and who to sign in as; loading twice adds nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.demo import DEMO_PASSWORD, DEMO_USERS, load_demo_on_startup
from bot.keys import ENGINE
from storage.models import Team, User
from tests.sdr_console.console_support import sign_in


async def _count(engine, model) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(model))


async def test_the_demo_brings_people_who_can_sign_in_and_says_where(app_client, capsys) -> None:
    client = await app_client()
    app = client.server.app
    await load_demo_on_startup(app)
    banner = capsys.readouterr().out
    assert "/console/" in banner and DEMO_PASSWORD in banner
    assert all(username in banner for username, *_ in DEMO_USERS)
    engine = app[ENGINE]
    assert await _count(engine, User) == len(DEMO_USERS) and await _count(engine, Team) == 2
    for username, display_name, *_ in DEMO_USERS:
        resp = await sign_in(client, username, DEMO_PASSWORD)
        assert resp.status in (302, 303), (username, resp.status)
        page = await (await client.get("/console/")).text()
        assert display_name in page
        client.session.cookie_jar.clear()
    await load_demo_on_startup(app)  # a restart on the same database
    assert await _count(engine, User) == len(DEMO_USERS)
