"""Users, teams and the audit log over the JSON API. Every change is audited with its before and after.

GET|POST /api/users, POST /api/users/{user_id}/disable, GET|POST /api/teams, POST /api/teams/{team_id}/members
(GET /api/audit is in audit_log.py). Who may call which is the rule table's (leads/access.py): users and team
changes are the admin's; managers read users and teams; team leads read teams.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bot.keys import SESSIONS
from bot.people.accounts import (
    MAX_TEAM_NAME,
    AccountError,
    Who,
    check_password,
    check_role,
    check_text,
    check_username,
    create_user,
    disable,
    generate_password,
    user_json,
)
from bot.people.passwords import hash_password
from bot.web.errors import ApiError, json_response
from bot.web.params import body_limit, int_param, json_object, not_found, path_id
from leads.access import TEAM_READ, TEAM_WRITE, USER_READ, USER_WRITE
from sdr_console.api.auth import actor_of, client_ip, requires
from storage.models import Team, TeamMember
from storage.repos import audit as audit_repo
from storage.repos.teams import (
    add_team,
    list_teams,
    members_of,
    remove_member,
    set_member,
    team_by_id,
    team_by_name,
    team_member,
)
from storage.repos.users import list_users, user_by_id, user_by_name
from storage.tx import in_transaction

MAX_BODY = 16 * 1024
MAX_CAPACITY = 100_000


def _who(request: web.Request) -> Who:
    actor = actor_of(request)
    return Who(actor.label, actor.user_id, client_ip(request))


def _api_error(exc: AccountError) -> ApiError:
    return ApiError(409 if exc.code == "exists" else 400, exc.code, str(exc))


@requires(USER_READ)
async def get_users(request: web.Request) -> web.Response:
    limit, offset = int_param(request, "limit", 100, 1, 500), int_param(request, "offset", 0, 0, 10**9)
    async with request.app[SESSIONS]() as session:
        users = await list_users(session, limit=limit, offset=offset)
        teams = {t.id: t.name for t in await list_teams(session)}
        membership: dict[int, list[str]] = {}
        for member, _ in await members_of(session, list(teams)):
            membership.setdefault(member.user_id, []).append(teams[member.team_id])
    return json_response({"users": [user_json(u, membership.get(u.id, [])) for u in users],
                          "limit": limit, "offset": offset})


@requires(USER_WRITE)
@body_limit(MAX_BODY)
async def post_user(request: web.Request) -> web.Response:
    """{"username", "role", "password"?, "display_name"?, "wecom_userid"?, "team"?}: without a password one is
    generated and returned once."""
    body = await json_object(request)
    try:
        username, role = check_username(body.get("username")), check_role(body.get("role"))
        generated = "password" not in body
        password = generate_password() if generated else check_password(body["password"])
        display = check_text("display_name", body.get("display_name"), 100)
        wecom = check_text("wecom_userid", body.get("wecom_userid"), 64)
        team = check_text("team", body.get("team"), MAX_TEAM_NAME)
    except AccountError as exc:
        raise _api_error(exc) from exc

    hashed = await asyncio.to_thread(hash_password, password)  # ~0.2 s of CPU: not on the event loop

    async def work(session: Any) -> dict[str, Any]:
        user = await create_user(session, _who(request), username=username, role=role, password_hash=hashed,
                                 display_name=display, wecom_userid=wecom, team=team)
        return user_json(user, [team] if team else [])

    try:
        payload = await in_transaction(request.app[SESSIONS], work)
    except AccountError as exc:
        raise _api_error(exc) from exc
    return json_response({"user": payload, **({"password": password} if generated else {})}, status=201)


@requires(USER_WRITE)
async def post_disable(request: web.Request) -> web.Response:
    user_id = path_id(request, "user_id", what="用户")

    async def work(session: Any) -> dict[str, Any]:
        user = await user_by_id(session, user_id)
        if user is None:
            raise not_found("用户", user_id)
        changed = await disable(session, _who(request), user)
        return {"user": user_json(user), "changed": changed}

    return json_response(await in_transaction(request.app[SESSIONS], work))


def _member_json(member: TeamMember, username: str, role: str) -> dict[str, Any]:
    return {"user_id": member.user_id, "username": username, "role": role, "away": member.away,
            "capacity": member.capacity}


async def _team_json(session: Any, team: Team) -> dict[str, Any]:
    members = [_member_json(m, u.username, u.role) for m, u in await members_of(session, [team.id])]
    return {"id": team.id, "name": team.name, "members": members}


@requires(TEAM_READ)
async def get_teams(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        teams = await list_teams(session)
        by_team: dict[int, list[dict[str, Any]]] = {t.id: [] for t in teams}
        for member, user in await members_of(session, list(by_team)):
            by_team[member.team_id].append(_member_json(member, user.username, user.role))
    return json_response({"teams": [{"id": t.id, "name": t.name, "members": by_team[t.id]} for t in teams]})


def _member_fields(raw: Any) -> tuple[str, bool, int, bool]:
    """(username, away, capacity, remove) of a member object; capacity 0 means unlimited."""
    if not isinstance(raw, dict):
        raise ApiError(400, "bad_field", "成员须为对象：{\"username\", \"away\"?, \"capacity\"?}")
    try:
        username = check_username(raw.get("username"))
    except AccountError as exc:
        raise _api_error(exc) from exc
    away, capacity, remove = raw.get("away", False), raw.get("capacity", 0), raw.get("remove", False)
    if not isinstance(away, bool) or not isinstance(remove, bool):
        raise ApiError(400, "bad_field", "away 和 remove 须为 true 或 false")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 0 <= capacity <= MAX_CAPACITY:
        raise ApiError(400, "bad_field", f"capacity 须为 0 到 {MAX_CAPACITY} 之间的整数（0 表示不限）")
    return username, away, capacity, remove


async def _apply_member(session: Any, request: web.Request, team: Team, fields: tuple[str, bool, int, bool]) -> None:
    username, away, capacity, remove = fields
    user = await user_by_name(session, username)
    if user is None:
        raise ApiError(400, "unknown_user", f"用户不存在：{username}")
    member = await team_member(session, team.id, user.id)
    before = None if member is None else {"user_id": user.id, "away": member.away, "capacity": member.capacity}
    if remove:
        await remove_member(session, team.id, user.id)
        after = None
    else:
        await set_member(session, team.id, user.id, away=away, capacity=capacity)
        after = {"user_id": user.id, "away": away, "capacity": capacity}
    who = _who(request)
    await audit_repo.record(session, action="team.member", actor_user_id=who.user_id, actor_label=who.label,
                            target_kind="team", target_id=team.id, before=before, after=after, ip=who.ip)


@requires(TEAM_WRITE)
@body_limit(MAX_BODY)
async def post_team(request: web.Request) -> web.Response:
    """{"name", "members"?: [{"username", "away"?, "capacity"?}]}: a new team (409 when the name is taken)."""
    body = await json_object(request)
    try:
        name = check_text("name", body.get("name"), MAX_TEAM_NAME, required=True)
    except AccountError as exc:
        raise _api_error(exc) from exc
    raw_members = body.get("members", [])
    if not isinstance(raw_members, list) or len(raw_members) > 500:
        raise ApiError(400, "bad_field", "members 须为不超过 500 项的数组")
    members = [_member_fields(m) for m in raw_members]
    assert name is not None

    async def work(session: Any) -> dict[str, Any]:
        if await team_by_name(session, name) is not None:
            raise ApiError(409, "exists", f"团队已存在：{name}")
        team = await add_team(session, name)
        who = _who(request)
        await audit_repo.record(session, action="team.create", actor_user_id=who.user_id, actor_label=who.label,
                                target_kind="team", target_id=team.id, after={"name": name}, ip=who.ip)
        for fields in members:
            await _apply_member(session, request, team, fields)
        return await _team_json(session, team)

    return json_response({"team": await in_transaction(request.app[SESSIONS], work)}, status=201)


@requires(TEAM_WRITE)
@body_limit(MAX_BODY)
async def post_member(request: web.Request) -> web.Response:
    """{"username", "away"?, "capacity"?, "remove"?}: adds, updates or (remove: true) removes a member."""
    team_id = path_id(request, "team_id", what="团队")
    fields = _member_fields(await json_object(request))

    async def work(session: Any) -> dict[str, Any]:
        team = await team_by_id(session, team_id)
        if team is None:
            raise not_found("团队", team_id)
        await _apply_member(session, request, team, fields)
        return await _team_json(session, team)

    return json_response({"team": await in_transaction(request.app[SESSIONS], work)})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/users", get_users)
    app.router.add_post("/api/users", post_user)
    app.router.add_post("/api/users/{user_id}/disable", post_disable)
    app.router.add_get("/api/teams", get_teams)
    app.router.add_post("/api/teams", post_team)
    app.router.add_post("/api/teams/{team_id}/members", post_member)
