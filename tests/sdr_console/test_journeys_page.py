"""The console's journey pages on both backends (sdr_console/pages/journeys.py): /console/journeys lists every
configured journey with its counts and its step tree, each step with the active enrolments waiting for it;
/console/journeys/{id} lists the leads in one journey by status and step, in pages, each linked to its 360 —
a team lead only their team's. Salespeople may not read journeys: a 403 page, audited, and no link in the
navigation. Then a real browser follows a step's waiting count to its leads.

Screenshots: /tmp/journeys_page.png, /tmp/journey_page.png and tests/artifacts/console/<backend>/journeys.png,
journey.png (look at them).
"""

from __future__ import annotations

import re
import shutil
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.keys import ENGINE, SESSIONS
from storage.models import JourneyEnrolment, Lead, utcnow
from storage.repos.teams import add_team, set_member
from tests.sdr_console.console_support import PASSWORD, audit_rows, make_user, sign_in
from tests.support.browser import desktop_browser, screenshots, signed_in_page

EXAMPLE = tomllib.loads((Path(__file__).resolve().parents[2] / "deploy/journeys.example.toml").read_text("utf-8"))
NO_JOBS = {"enabled": ["inbox_sweep"]}  # nothing runs the journeys meanwhile: the counts stay as seeded


async def journeys_app(app_client) -> Any:
    return await app_client(journeys=EXAMPLE["journeys"], nurture={**EXAMPLE["nurture"], "quiet_hours": ""},
                            jobs=NO_JOBS)


async def enrolments(client, journey: str, *rows: tuple[str, int | None, str, str]) -> list[int]:
    """(lead name, owner, position, status) each: a lead and its enrolment."""
    now = utcnow()
    ids = []
    async with client.server.app[SESSIONS]() as session, session.begin():
        for i, (name, owner, position, status) in enumerate(rows):
            lead = Lead(display_name=name, owner_user_id=owner)
            session.add(lead)
            await session.flush()
            active = status == "active"
            session.add(JourneyEnrolment(
                journey_id=journey, lead_id=lead.id, version="test", trigger="form_submitted:demo", position=position,
                seq=1, status=status, reason="" if active else ("completed" if status == "done" else "stage:sal"),
                enrolled_at=now - timedelta(days=3, minutes=i), due_at=now + timedelta(hours=5) if active else None,
                ended_at=None if active else now - timedelta(hours=2)))
            ids.append(lead.id)
    return ids


async def world(client) -> dict[str, int]:
    engine = client.server.app[ENGINE]
    ids = {"sdr": await make_user(engine, "chenjing", role="sdr", display_name="陈静"),
           "tl": await make_user(engine, "zhouqiang", role="team_lead", display_name="周强"),
           "sales": await make_user(engine, "wanglei", role="sales", display_name="王磊"),
           "other": await make_user(engine, "zhaomin", role="sales", display_name="赵敏")}
    async with client.server.app[SESSIONS]() as session, session.begin():
        team = await add_team(session, "华东")
        await set_member(session, team.id, ids["tl"])
        await set_member(session, team.id, ids["sales"])
    lina, wangfang, zhangwei, _, _ = await enrolments(
        client, "welcome", ("李娜", ids["sales"], "2", "active"), ("王芳", ids["other"], "2", "active"),
        ("张伟", None, "2.no.0", "active"), ("刘洋", None, "9", "done"), ("赵磊", None, "5", "exited"))
    await enrolments(client, "accelerate", ("孙丽", None, "4", "active"))
    return {**ids, "lina": lina, "wangfang": wangfang, "zhangwei": zhangwei}


def step(html: str, position: str) -> str:
    match = re.search(rf'<li class="lr-flow-step[^"]*" data-position="{re.escape(position)}">.*?</li>', html,
                      flags=re.S)
    return match[0] if match else ""


async def test_the_journeys_page_shows_counts_and_the_waiting_per_step(app_client) -> None:
    client = await journeys_app(app_client)
    await world(client)
    assert (await sign_in(client, "chenjing")).status == 303
    resp = await client.get("/console/journeys")
    html = await resp.text()
    assert resp.status == 200 and 'href="/console/journeys" aria-current="page"' in html
    for name in ("新线索欢迎系列（22 天）", "中等分线索加速", "沉睡线索唤醒", "销售退回再培育"):
        assert name in html
    welcome = re.search(r'id="journey-welcome".*?</section>', html, flags=re.S)[0]
    assert "触发：表单提交" in welcome
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', welcome))
    assert counts == {"active": "3", "entered": "5", "done": "1", "exited": "1"}
    assert "2 人等待" in step(welcome, "2") and "判断：1 天内打开过内容" in step(welcome, "2")
    no_branch = step(welcome, "2.no.0")
    assert "lr-depth-1" in no_branch and ">否<" in no_branch and "1 人等待" in no_branch
    assert "0 人等待" in step(welcome, "0") and "<progress" not in step(welcome, "0")
    assert 'href="/console/journeys/welcome?status=active&amp;position=2.no.0"' in no_branch


async def test_the_enrolments_of_a_journey_by_status_and_step_in_the_callers_scope(app_client) -> None:
    client = await journeys_app(app_client)
    ids = await world(client)
    assert (await sign_in(client, "chenjing")).status == 303
    html = await (await client.get("/console/journeys/welcome")).text()
    assert "新线索欢迎系列（22 天）" in html and 'aria-current="page">进行中' in html
    assert all(f'href="/console/leads/{ids[k]}"' in html for k in ("lina", "wangfang", "zhangwei"))
    assert "判断：1 天内打开过内容" in html and "刘洋" not in html
    filtered = await (await client.get("/console/journeys/welcome?status=active&position=2.no.0")).text()
    assert "张伟" in filtered and "李娜" not in filtered and 'id="step-filter"' in filtered
    exited = await (await client.get("/console/journeys/welcome?status=exited")).text()
    assert "赵磊" in exited and "阶段变为" in exited and "张伟" not in exited
    for bad in ("status=late", "position=2.maybe.0", "before=%C2%B2", "before=-1"):
        assert (await client.get(f"/console/journeys/welcome?{bad}")).status == 400, bad
    assert (await client.get("/console/journeys/nope")).status == 404
    # A team lead: only the team's leads.
    assert (await sign_in(client, "zhouqiang")).status == 303
    team_view = await (await client.get("/console/journeys/welcome")).text()
    assert "李娜" in team_view and "王芳" not in team_view and "张伟" not in team_view


async def test_pages_of_fifty(app_client) -> None:
    client = await journeys_app(app_client)
    await make_user(client.server.app[ENGINE], "chenjing", role="sdr")
    await enrolments(client, "wake_up", *[(f"潜客{i:02d}", None, "1", "active") for i in range(51)])
    assert (await sign_in(client, "chenjing")).status == 303
    first = await (await client.get("/console/journeys/wake_up")).text()
    assert first.count("data-enrolment=") == 50 and "潜客50" in first and "潜客00" not in first
    more = re.search(r'id="enrolments-next" href="([^"]+)"', first)[1].replace("&amp;", "&")
    rest = await (await client.get(more)).text()
    assert rest.count("data-enrolment=") == 1 and "潜客00" in rest and 'id="enrolments-next"' not in rest


async def test_salespeople_get_a_403_audited_and_no_link(app_client) -> None:
    client = await journeys_app(app_client)
    ids = await world(client)
    assert (await sign_in(client, "wanglei")).status == 303
    start = await (await client.get("/console/")).text()
    assert 'href="/console/journeys"' not in start and 'href="/console/tasks"' in start
    for path in ("/console/journeys", "/console/journeys/welcome"):
        resp = await client.get(path)
        assert resp.status == 403 and "李娜" not in await resp.text()
    denied = await audit_rows(client, outcome="denied")
    assert [(e.action, e.actor_user_id) for e in denied] == [("journey.read", ids["sales"])] * 2


async def test_an_sdr_follows_a_step_to_its_leads_in_a_browser(app_client, backend, playwright_api) -> None:
    client = await journeys_app(app_client)
    ids = await world(client)
    base = str(client.make_url("")).rstrip("/")
    shots = screenshots(backend)
    async with desktop_browser(playwright_api) as context:
        page, errors = await signed_in_page(context, base, "chenjing", PASSWORD)
        await page.click("nav a:has-text('培育旅程')")
        await page.wait_for_selector("#journey-welcome")
        indent = await page.eval_on_selector('#journey-welcome [data-position="2.no.0"]',
                                             "e => getComputedStyle(e).marginLeft")
        assert indent == "28px"  # the branch is indented under its condition: the stylesheet is there
        await page.screenshot(path=str(shots / "journeys.png"), full_page=True)
        shutil.copy(shots / "journeys.png", "/tmp/journeys_page.png")
        await page.click('#journey-welcome [data-position="2"] a.lr-waiting')
        await page.wait_for_selector("#enrolments")
        assert "判断：1 天内打开过内容" in await page.inner_text("#step-filter")
        assert await page.locator("#enrolments tbody tr").count() == 2
        await page.screenshot(path=str(shots / "journey.png"), full_page=True)
        shutil.copy(shots / "journey.png", "/tmp/journey_page.png")
        await page.click("#enrolments a:has-text('李娜')")
        await page.wait_for_url(f"**/console/leads/{ids['lina']}")
        assert errors == []


async def test_lead_names_are_escaped(app_client) -> None:
    client = await journeys_app(app_client)
    await make_user(client.server.app[ENGINE], "chenjing", role="sdr")
    await enrolments(client, "welcome", ('<script>alert("x")</script><img src=x onerror=alert(1)>', None, "2",
                                         "active"))
    assert (await sign_in(client, "chenjing")).status == 303
    html = await (await client.get("/console/journeys/welcome")).text()
    assert "<script>alert" not in html and "<img src=x" not in html and "&lt;script&gt;alert(&#34;x&#34;)" in html
