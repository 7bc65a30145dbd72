"""The authorisation matrix, generated from the app's route table: every /api/ route and every console page ×
every role, on a lead the caller owns, one a team mate owns and one someone else owns. Each call is allowed
(neither 401 nor 403) or refused with exactly 403 as the rule table (leads/access.py) says for the action the
handler declares (sdr_console/api/auth.py); a route that declares none is the admin's alone. Every 403 leaves
an audit entry (outcome "denied"). A new route is in the matrix the moment it is added: nothing to forget.

One app per backend, one test each: the cases run in a loop and the failures are reported together.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from bot.keys import SESSIONS
from bot.people.passwords import hash_password
from leads import access
from sdr_console.api.auth import declared_action
from sdr_console.web.assets import PREFIX
from sdr_console.web.csrf import LOGIN_PATH
from storage.models import AuditEntry, Handoff, Lead
from storage.repos.api_tokens import issue_token
from storage.repos.audit import DENIED
from storage.repos.teams import add_team, set_member
from storage.repos.users import add_user
from tests.sdr_console.console_support import PASSWORD, csrf_of, session_cookie, sign_in
from tests.support.calls import AUTH

HASH = hash_password(PASSWORD)  # once: hashing is slow on purpose
CALLERS = (*access.ROLES, "service")  # "service": a configured api.tokens token, an admin without a user
# /api/ routes that are not behind the bearer token, each with its own authentication (the mini program's login).
PUBLIC_API = re.compile(r"^/api/(mp/|openapi\.json$|docs$)")  # docs: the page over the public document
CONSOLE_OPEN = {LOGIN_PATH, "/console/logout"}  # signing in and out: for everyone, tested in test_console_sessions
LEAD_PARAMS = {"lead_id", "handoff_id"}  # path parameters that name a lead (or something of one lead)
MISSING_ID = "999999999"
# Bodies that pass validation, so a refusal is not hidden behind a 400 by a handler that validates first.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/leads/{lead_id}/stage"): {"to": "mql", "reason": "矩阵测试"},
    ("PUT", "/api/leads/{lead_id}/bant"): {"need": "矩阵测试"},
    ("POST", "/api/leads/{lead_id}/notes"): {"body": "矩阵测试"},
    ("POST", "/api/leads/{lead_id}/tasks"): {"title": "矩阵测试"},
    ("POST", "/api/leads/{lead_id}/tags"): {"add": ["矩阵"]},
    ("PATCH", "/api/leads/{lead_id}/profile"): {"city": "矩阵"},
    ("POST", "/api/saved-filters"): {"name": "矩阵测试", "query": "stage=mql"},
    ("POST", "/api/handoffs/{handoff_id}/reply"): {"text": "矩阵测试"},
}


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # canonical, with {parameters}
    handler: Any

    @property
    def action(self) -> str | None:
        return declared_action(self.handler)

    @property
    def params(self) -> list[str]:
        return re.findall(r"\{(\w+)", self.path)

    @property
    def about_a_lead(self) -> bool:
        return bool(LEAD_PARAMS & set(self.params))


def routes(app: web.Application, prefix: str) -> list[Route]:
    """HEAD routes share their GET's handler: the GET stands for both."""
    found = []
    for r in app.router.routes():
        path = r.resource.canonical if r.resource else ""
        if r.method != "HEAD" and path.startswith(prefix):
            found.append(Route(r.method, path, r.handler))
    return found


def expected(route: Route, role: str, whose: str | None) -> bool:
    """May ``role`` call the route, on a lead that is ``whose`` ("own", "mate", "other"; None: no lead)?"""
    action = route.action
    if action is None:
        return role == access.ADMIN  # deny by default
    if whose is None:  # a list: a lead action is filtered to the caller's scope, so any scope may ask
        return access.scope(role, action) is not None if action in access.LEAD_ACTIONS else access.allowed(role, action)
    return access.allowed(role, action, owns=whose == "own", same_team=whose == "mate")


@dataclass
class World:
    users: dict[str, int]  # caller role -> user id ("mate", "stranger", "victim" too)
    tokens: dict[str, str]  # caller -> bearer token
    team_id: int


async def build_world(app: web.Application) -> World:
    """A user of every role, all in one team with a salesperson (the team mate); a stranger in no team."""
    users, tokens = {}, {}
    async with app[SESSIONS]() as session, session.begin():
        team = await add_team(session, "矩阵组")
        for name in (*access.ROLES, "mate", "stranger", "victim"):
            role = name if name in access.ROLES else access.SALES
            user = await add_user(session, username=f"m_{name}", role=role, password_hash=HASH)
            users[name] = user.id
            if name not in ("stranger", "victim"):
                await set_member(session, team.id, user.id)
            if name in access.ROLES:
                tokens[name], _ = await issue_token(session, user.id, "matrix")
    tokens["service"] = AUTH["Authorization"].removeprefix("Bearer ")
    return World(users, tokens, team.id)


async def fresh_lead(app: web.Application, owner: int | None) -> tuple[int, int]:
    """A new lead (each call gets its own: some calls erase, merge or move theirs) and an open hand-off on it."""
    async with app[SESSIONS]() as session, session.begin():
        lead = Lead(display_name="矩阵潜客", stage="lead", owner_user_id=owner)
        session.add(lead)
        await session.flush()
        handoff = Handoff(lead_id=lead.id, reason="no_intent", message="矩阵问题", status="open")
        session.add(handoff)
        await session.flush()
        return lead.id, handoff.id


def owners(world: World, caller: str) -> dict[str, int | None]:
    own = world.users.get(caller)  # the service token owns nothing
    cases: dict[str, int | None] = {"mate": world.users["mate"], "other": world.users["stranger"]}
    return cases if own is None else {"own": own, **cases}


def fill(route: Route, world: World, lead_id: int | None, handoff_id: int | None) -> str:
    values = {"lead_id": lead_id, "handoff_id": handoff_id, "user_id": world.users["victim"],
              "team_id": world.team_id}

    def value(match: re.Match[str]) -> str:
        found = values.get(match[1])
        return MISSING_ID if found is None else str(found)

    return re.sub(r"\{(\w+)(?::[^}]*)?\}", value, route.path)


async def denied_count(app: web.Application) -> int:
    async with app[SESSIONS]() as session:
        stmt = select(func.count()).select_from(AuditEntry).where(AuditEntry.outcome == DENIED)
        return int((await session.execute(stmt)).scalar_one())


async def check(client, route: Route, target: str, caller: str, whose: str | None, headers: dict[str, str],
                problems: list[str], **kwargs: Any) -> None:
    app = client.server.app
    role = access.ADMIN if caller == "service" else caller
    before = await denied_count(app)
    resp = await client.request(route.method, target, headers=headers, allow_redirects=False, **kwargs)
    await resp.read()
    allow = expected(route, role, whose)
    label = f"{route.method} {route.path} as {caller} on {whose or '-'} lead (action {route.action})"
    if resp.status >= 500:
        problems.append(f"{label}: {resp.status}")
    elif allow and resp.status in (401, 403):
        problems.append(f"{label}: refused with {resp.status}, the rule table allows it")
    elif not allow and resp.status != 403:
        problems.append(f"{label}: answered {resp.status}, the rule table refuses it (403)")
    elif not allow and await denied_count(app) != before + 1:
        problems.append(f"{label}: a 403 without its audit entry (outcome denied)")


async def api_matrix(client, world: World, problems: list[str]) -> int:
    app, calls = client.server.app, 0
    for route, caller in itertools.product(routes(app, "/api/"), CALLERS):
        if PUBLIC_API.match(route.path):
            continue
        headers = {"Authorization": f"Bearer {world.tokens[caller]}"}
        kwargs: dict[str, Any] = {}
        if route.method != "GET":
            headers["Content-Type"] = "application/json"
            kwargs["data"] = json.dumps(BODIES.get((route.method, route.path), {}))
        cases = owners(world, caller).items() if route.about_a_lead else [(None, None)]
        for whose, owner in cases:
            lead_id, handoff_id = await fresh_lead(app, owner) if route.about_a_lead else (None, None)
            target = fill(route, world, lead_id, handoff_id)
            await check(client, route, target, caller, whose, headers, problems, **kwargs)
            calls += 1
    return calls


async def anonymous_api(client, problems: list[str]) -> None:
    """Every /api/ route that is not public wants a token: without one, 401 (before any lookup)."""
    for route in routes(client.server.app, "/api/"):
        if PUBLIC_API.match(route.path):
            continue
        target = re.sub(r"\{(\w+)(?::[^}]*)?\}", MISSING_ID, route.path)
        resp = await client.request(route.method, target, allow_redirects=False)
        if resp.status != 401:
            problems.append(f"{route.method} {route.path} without a token: {resp.status}, not 401 (add it to "
                            f"PUBLIC_API only if it is public on purpose)")


def console_routes(app: web.Application) -> list[Route]:
    return [r for r in routes(app, "/console/") if not r.path.startswith(PREFIX) and r.path not in CONSOLE_OPEN]


async def console_matrix(client, world: World, problems: list[str]) -> int:
    """Pages as each role, signed in. A page may declare an action like an API handler (then the rule table
    decides); one that declares none is for every signed-in user and must not name a lead in its path."""
    app, calls = client.server.app, 0
    pages = console_routes(app)
    for route in pages:
        if route.action is None and route.about_a_lead:
            problems.append(f"{route.method} {route.path}: a page about a lead must declare its action")
    for role in access.ROLES:
        resp = await sign_in(client, f"m_{role}")
        assert resp.status == 303, f"sign-in as {role}: {resp.status}"
        start = await client.get("/console/")
        headers = {"X-CSRF-Token": csrf_of(await start.text())}  # for pages that change something
        for route in pages:
            declared = route.action is not None
            cases = owners(world, role).items() if route.about_a_lead else [(None, None)]
            for whose, owner in cases:
                lead_id, handoff_id = await fresh_lead(app, owner) if route.about_a_lead else (None, None)
                target = fill(route, world, lead_id, handoff_id)
                if declared:
                    await check(client, route, target, role, whose, headers, problems)
                else:
                    resp = await client.request(route.method, target, headers=headers, allow_redirects=False)
                    if resp.status in (401, 403) or resp.status >= 500:
                        problems.append(f"{route.method} {route.path} as {role}: {resp.status}")
                calls += 1
        assert session_cookie(client)
    return calls


async def signed_out_console(client, problems: list[str]) -> None:
    client.session.cookie_jar.clear()
    for route in console_routes(client.server.app):
        if route.method != "GET":
            continue
        target = re.sub(r"\{(\w+)(?::[^}]*)?\}", MISSING_ID, route.path)
        resp = await client.get(target, allow_redirects=False)
        if resp.status != 303 or not resp.headers.get("Location", "").startswith(LOGIN_PATH):
            problems.append(f"GET {route.path} signed out: {resp.status}, not a redirect to the sign-in page")


async def test_every_route_answers_every_role_as_the_rule_table_says(app_client):
    client = await app_client()
    world = await build_world(client.server.app)
    problems: list[str] = []
    api_calls = await api_matrix(client, world, problems)
    await anonymous_api(client, problems)
    page_calls = await console_matrix(client, world, problems)
    await signed_out_console(client, problems)
    assert not problems, "\n".join(problems)
    assert api_calls > 100 and page_calls >= len(access.ROLES)  # the matrix really ran over the route table


def test_a_route_without_a_declared_action_is_for_admins_only():
    async def handler(request: web.Request) -> web.Response:
        raise AssertionError

    undeclared = Route("GET", "/api/new", handler)
    assert [r for r in access.ROLES if expected(undeclared, r, None)] == [access.ADMIN]
    assert [r for r in access.ROLES if expected(undeclared, r, "own")] == [access.ADMIN]
