"""``leadrelay serve --demo``: demo prospects through the real pipeline, the demo people in two teams, and a
banner saying where to click and who to sign in as; loading twice adds nothing."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from sqlalchemy import func, select

from bot.demo import DEMO_PASSWORD, DEMO_USERS, load_demo_on_startup
from bot.demo_handoff import DEMO_MQLS
from bot.keys import ENGINE, SESSIONS
from storage.models import Team, User
from storage.repos.assignments import list_assignments
from tests.sdr_console.console_support import sign_in

ROOT = Path(__file__).resolve().parents[2]


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


async def test_the_demo_routes_mqls_to_sales_and_prints_a_link_into_their_mobile_inbox(app_client, capsys) -> None:
    example = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
    client = await app_client(routing=example["routing"])
    app = client.server.app
    await load_demo_on_startup(app)
    banner = capsys.readouterr().out
    link = re.search(r"http://\S+(/m/login\?token=\S+)", banner)
    assert link is not None, banner
    async with app[SESSIONS]() as session:
        rows, _ = await list_assignments(session, status="pending")
    assert len(rows) == len(DEMO_MQLS)  # every demo MQL went through the configured rules to someone
    assert {v.team for v in rows} == {"华东销售组", "华南销售组"}
    mine = sorted(v.row.lead_id for v in rows if v.username == "sales")
    assert mine, "the demo salesperson has pending MQLs to open"
    resp = await client.get(link.group(1), allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/m/"
    inbox = await (await client.get("/m/")).text()
    assert all(f"/m/leads/{lead_id}" in inbox for lead_id in mine)
    again = await client.get(link.group(1), allow_redirects=False)  # the link works once
    assert again.status != 303
