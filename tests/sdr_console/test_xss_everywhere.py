"""Hostile text renders as text everywhere: a prospect's nickname, company and profile fields, a note, a tag, a
task title, a hand-off question, a prospect's message, a suspected duplicate's name, a saved filter's name and a
colleague's display name all hold ``<script>`` and ``<img onerror>``.

In Chromium, every console page and 360 fragment that shows them must leave ``window.__xss`` undefined, hold no
<script>/<img> element made from the data, and show the literal text. The browser context bypasses the
Content-Security-Policy on purpose: the CSP would block an injected inline script anyway, and this test is about
the first line of defence (escaping), so an unescaped payload must run and be caught. Screenshot of the 360:
tests/artifacts/console/<backend>/xss-360.png. Over HTTP, every GET route
under /console/ (from the route table) never answers the raw payload and shows it escaped, and the JSON API returns
it as the plain string.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import update

from bot.keys import ENGINE, EVENTS, SESSIONS
from leads.events import FormSubmitted
from sdr_console.web.assets import PREFIX
from sdr_console.web.csrf import LOGIN_PATH
from storage.models import Handoff, Lead, LeadTask, utcnow
from storage.repos.events import EventTx
from tests.bot.journeys.test_runner import EXAMPLE
from tests.sdr_console.console_support import (
    bearer,
    call,
    make_handoff,
    make_user,
    sign_in,
    user_with_token,
)
from tests.sdr_console.lead_seed import seed_360
from tests.support.browser import desktop_browser, screenshots

SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1">'
PAYLOAD = SCRIPT + IMG
ESCAPED = "&lt;script&gt;window.__xss=1&lt;/script&gt;"
TOKEN_PASSWORD = "correct horse battery"  # console_support.user_with_token's users
# What the 360 fragments show of the payload (score and BANT hold no free text of a person or a prospect).
FRAGMENTS_WITHOUT_TEXT = {"score", "bant"}


async def seed(client: Any) -> dict[str, Any]:
    """chenjing's lead, full of the payload everywhere a person or a prospect writes; a colleague named by it."""
    engine = client.server.app[ENGINE]
    sdr, sdr_token = await user_with_token(client, "chenjing", "sdr")
    other = await make_user(engine, "xss_user", display_name=PAYLOAD, role="sdr")
    lead = await seed_360(engine, owner=sdr, text=PAYLOAD, name=PAYLOAD, touches=2)
    status, _ = await call(client, "PATCH", f"/api/leads/{lead}/profile", bearer(sdr_token),
                           json={"company": PAYLOAD, "product_interest": PAYLOAD, "city": IMG})  # and in the history
    assert status == 200, _
    status, _ = await call(client, "POST", "/api/saved-filters", bearer(sdr_token),
                           json={"name": IMG, "query": "stage=lead"})
    assert status in (200, 201)
    handoffs = [await make_handoff(client, lead, PAYLOAD, last_oa_hours_ago=2) for _ in range(4)]
    now = utcnow()
    async with client.server.app[SESSIONS]() as session, session.begin():
        session.add(LeadTask(lead_id=lead, title=PAYLOAD, due_at=now - timedelta(hours=1), assignee_user_id=sdr))
        session.add(LeadTask(lead_id=lead, title="回访", due_at=now + timedelta(days=2), assignee_user_id=other))
        await session.execute(update(Lead).where(Lead.display_name == "王芳（表单）").values(display_name=PAYLOAD))
        claimed_by_other, mine, closed = [await session.get(Handoff, h) for h in handoffs[1:]]
        claimed_by_other.claimed_by_user_id, claimed_by_other.claimed_at = other, now
        mine.claimed_by_user_id, mine.claimed_at = sdr, now
        closed.status, closed.closed_at, closed.closed_by_user_id = "closed", now, other
    return {"lead": lead, "sdr": sdr, "token": sdr_token}


def pages(lead: int) -> list[tuple[str, bool]]:
    """(path, shows the payload) for every console page and fragment the data reaches."""
    from sdr_console.pages.lead_sections import SECTIONS  # noqa: PLC0415 (the 360's own list of fragments)

    found = [("/console/", True), ("/console/leads", True), (f"/console/leads?q={quote('<script>window')}", True),
             (f"/console/leads?q={quote(PAYLOAD)}", True), (f"/console/leads/{lead}", True)]
    found += [(f"/console/leads/{lead}/{section}", section not in FRAGMENTS_WITHOUT_TEXT) for section in SECTIONS]
    tabs = ("", "?tab=mine", "?tab=closed")  # no tab: 待处理
    found += [(f"/console/handoffs{path}{tab}", True) for path in ("", "/list") for tab in tabs]
    return found


DOM_CHECK = """() => ({
    xss: typeof window.__xss,
    scripts: [...document.scripts].filter(s => s.textContent.includes('__xss')).length,
    imgs: document.querySelectorAll('img[src="x"], [onerror]').length,
    text: document.body ? document.body.innerText : '',
})"""


async def test_hostile_text_is_only_text_in_the_browser(app_client, backend, playwright_api) -> None:
    client = await app_client()
    seeded = await seed(client)
    lead = seeded["lead"]
    base = str(client.make_url("")).rstrip("/")
    problems: list[str] = []
    async with desktop_browser(playwright_api, bypass_csp=True) as context:
        page = await context.new_page()
        await page.goto(f"{base}{LOGIN_PATH}")
        await page.fill("#username", "chenjing")
        await page.fill("#password", TOKEN_PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_selector("#stages")

        async def check(where: str, shows: bool) -> None:
            found = await page.evaluate(DOM_CHECK)
            if found["xss"] != "undefined" or found["scripts"] or found["imgs"]:
                problems.append(f"{where}: injected {found}")
            if shows and PAYLOAD not in found["text"]:
                problems.append(f"{where}: the literal text is not shown")

        for path, shows in pages(lead):
            response = await page.goto(f"{base}{path}")
            assert response is not None and response.status == 200, path
            await page.wait_for_load_state("networkidle")
            await check(path, shows)

        # The 360 after htmx re-fetched every section and loaded each tab and disclosure.
        await page.goto(f"{base}/console/leads/{lead}")
        await page.evaluate("document.querySelectorAll('[hx-trigger=refresh]')"
                            ".forEach(e => htmx.trigger(e, 'refresh'))")
        await page.wait_for_load_state("networkidle")
        for tab in ("#tab-tasks", "#tab-bant", "#tab-notes"):
            await page.click(tab)
        await page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        await check("360 after refresh", True)
        shots = screenshots(backend)
        await page.screenshot(path=str(shots / "xss-360.png"), full_page=True)
        assert await page.input_value("#pf-company") == PAYLOAD  # the edit form holds it as a value
        # The saved filter's name is an <option>, not markup.
        await page.goto(f"{base}/console/leads")
        assert IMG in await page.inner_text("#saved-filter-select")
        await check("saved filters", True)
    assert problems == [], problems


def console_get_routes(app: web.Application) -> list[str]:
    """Every GET route under /console/ (canonical, with its {parameters}), from the app's route table."""
    paths = {r.resource.canonical for r in app.router.routes()
             if r.method == "GET" and r.resource is not None and r.resource.canonical.startswith("/console")}
    return sorted(p for p in paths if not p.startswith(PREFIX))


def strings(value: Any) -> list[str]:
    """Every string inside a JSON document."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


async def test_every_console_route_escapes_and_the_api_returns_plain_strings(app_client) -> None:
    client = await app_client(journeys=EXAMPLE["journeys"])
    seeded = await seed(client)
    lead = seeded["lead"]
    async with client.server.app[SESSIONS]() as session, session.begin():  # the lead shows in the journey pages
        await EventTx(session, client.server.app[EVENTS]).publish([FormSubmitted(lead, "demo", utcnow())])
    auth = bearer(seeded["token"])  # a batch message to a segment, both named by the payload
    status, made = await call(client, "POST", "/api/segments", auth, json={"name": IMG, "query": ""})
    assert status == 201, made
    status, batch = await call(client, "POST", "/api/batches", auth, json={"segment_id": made["id"], "text": PAYLOAD})
    assert status == 202, batch
    routes = console_get_routes(client.server.app)
    assert "/console/leads/{lead_id}" in routes and "/console/handoffs/list" in routes
    urls = [re.sub(r"\{batch_id\}", str(batch["id"]), re.sub(r"\{journey_id\}", "welcome",
                                                             re.sub(r"\{lead_id\}", str(lead), path)))
            for path in routes]
    assert not [u for u in urls if "{" in u], urls  # a new path parameter: fill it here
    urls += [f"/console/leads?q={quote(PAYLOAD)}", "/console/handoffs?tab=mine", "/console/handoffs?tab=closed",
             "/console/handoffs/list?tab=mine", "/console/handoffs/list?tab=closed"]
    assert (await sign_in(client, "chenjing", TOKEN_PASSWORD)).status == 303
    shown = {path for path, shows in pages(lead) if shows} | {"/console/batches", f"/console/batches/{batch['id']}"}
    problems = []
    for url in urls:
        resp = await client.get(url, allow_redirects=False)
        html = await resp.text()
        if resp.status in (301, 302, 303):
            continue  # "/" and "/console" only point at the start page, fetched on its own
        if resp.status != 200:
            problems.append(f"{url}: {resp.status}")
        if SCRIPT in html or IMG in html or "<img src=x" in html or "<script>window" in html:
            problems.append(f"{url}: the raw payload is in the HTML")
        if url in shown and ESCAPED not in html:
            problems.append(f"{url}: the escaped payload is not shown")
        if "?q=" in url and f'data-lead-id="{lead}"' not in html:
            problems.append(f"{url}: the search does not find the lead")
    assert problems == [], problems

    auth = bearer(seeded["token"])
    for path in (f"/api/leads/{lead}", f"/api/leads/{lead}/timeline", f"/api/leads/{lead}/notes",
                 f"/api/leads/{lead}/tasks", "/api/handoffs", f"/api/leads?q={quote(PAYLOAD)}", "/api/saved-filters"):
        status, body = await call(client, "GET", path, auth)
        assert status == 200, (path, body)
        found = strings(body)
        assert any(PAYLOAD in s or IMG in s for s in found), path  # the plain string, as it was written
        assert not any("&lt;" in s or "&gt;" in s or "&#" in s for s in found), path  # never HTML-escaped in JSON
    _, admin = await user_with_token(client, "xss_admin", "admin")
    status, body = await call(client, "GET", "/api/audit", bearer(admin))  # the profile change, values kept
    assert status == 200 and any(PAYLOAD in s for s in strings(body)), body
    assert not any("&lt;" in s for s in strings(body))
    resp = await client.get(f"/api/leads/{lead}", headers=auth)
    assert resp.content_type == "application/json"
    assert PAYLOAD in json.loads(await resp.text())["display_name"]
