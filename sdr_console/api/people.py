"""Users, teams and the audit log over the JSON API. Every change is audited with its before and after.

GET|POST /api/users, PATCH /api/users/{user_id}, POST /api/users/{user_id}/disable, GET|POST /api/teams,
POST /api/teams/{team_id}/members
(GET /api/audit is in audit_log.py). Who may call which is the rule table's (leads/access.py): users and team
changes are the admin's; managers read users and teams; team leads read teams.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bot.keys import CONFIG, EVENTS, SESSIONS
from bot.people.accounts import AccountError, Who, create_user, disable, generate_password, update_user, user_json
from bot.people.passwords import hash_password
from bot.web.errors import ApiError
from bot.web.params import body_limit, not_found, path_id
from leads.access import TEAM_READ, TEAM_WRITE, USER_READ, USER_WRITE
from sdr_console.api.auth import actor_of, client_ip, requires
from sdr_console.api.people_models import (
    ListedUser,
    MemberIn,
    OneTeam,
    TeamIn,
    Teams,
    UserCreated,
    UserDisabled,
    UserIn,
    UserPage,
    UserPatch,
    UsersQuery,
    UserUpdated,
    api_error,
)
from sdr_console.api.spec import api_spec, parse_body, parse_query, respond
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
    team_ids_of,
    team_member,
)
from storage.repos.users import list_users, user_by_id, user_by_name
from storage.tx import in_transaction

MAX_BODY = 16 * 1024


def _who(request: web.Request) -> Who:
    actor = actor_of(request)
    return Who(actor.label, actor.user_id, client_ip(request))


@requires(USER_READ)
@api_spec("用户列表", query=UsersQuery, response=UserPage, tags=("people",))
async def get_users(request: web.Request) -> web.Response:
    query = parse_query(request, UsersQuery)
    limit, offset = query.limit, query.offset
    async with request.app[SESSIONS]() as session:
        users = await list_users(session, limit=limit, offset=offset)
        teams = {t.id: t.name for t in await list_teams(session)}
        membership: dict[int, list[str]] = {}
        for member, _ in await members_of(session, list(teams)):
            membership.setdefault(member.user_id, []).append(teams[member.team_id])
    return respond(UserPage(users=[ListedUser(**user_json(u, membership.get(u.id, []))) for u in users],
                            limit=limit, offset=offset))


@requires(USER_WRITE)
@body_limit(MAX_BODY)
@api_spec("新建用户", body=UserIn, response=UserCreated, status=201, errors=(409,), tags=("people",))
async def post_user(request: web.Request) -> web.Response:
    """{"username", "role", "password"?, "display_name"?, "wecom_userid"?, "team"?}: without a password one is
    generated and returned once."""
    body = await parse_body(request, UserIn)
    username, role, display, wecom, team = body.username, body.role, body.display_name, body.wecom_userid, body.team
    generated = body.password is None
    password = generate_password() if body.password is None else body.password

    hashed = await asyncio.to_thread(hash_password, password)  # ~0.2 s of CPU: not on the event loop

    async def work(session: Any) -> dict[str, Any]:
        user = await create_user(session, _who(request), username=username, role=role, password_hash=hashed,
                                 display_name=display, wecom_userid=wecom, team=team)
        return user_json(user, [team] if team else [])

    try:
        payload = await in_transaction(request.app[SESSIONS], work)
    except AccountError as exc:
        raise api_error(exc) from exc
    created = UserCreated(user=ListedUser(**payload), password=password if generated else None)
    return respond(created, status=201)


@requires(USER_WRITE)
@body_limit(MAX_BODY)
@api_spec("修改用户（显示名称、企业微信 UserID、卡片样式）", body=UserPatch, response=UserUpdated, errors=(404,),
          tags=("people",))
async def patch_user(request: web.Request) -> web.Response:
    """{"display_name"?, "wecom_userid"?, "card_style"?}: the fields present are set (wecom_userid null clears
    it), absent ones are kept. ``changed`` is false, and nothing is audited, when nothing differed."""
    user_id = path_id(request, "user_id", what="用户")
    body = await parse_body(request, UserPatch)
    changes = {name: getattr(body, name) for name in body.model_fields_set}

    async def work(session: Any) -> dict[str, Any]:
        user = await user_by_id(session, user_id)
        if user is None:
            raise not_found("用户", user_id)
        changed = await update_user(session, _who(request), user, changes)
        mine = set(await team_ids_of(session, user.id))
        return {"user": user_json(user, [t.name for t in await list_teams(session) if t.id in mine]),
                "changed": changed}

    return respond(UserUpdated.model_validate(await in_transaction(request.app[SESSIONS], work)))


@requires(USER_WRITE)
@api_spec("停用用户", response=UserDisabled, errors=(404,), tags=("people",))
async def post_disable(request: web.Request) -> web.Response:
    user_id = path_id(request, "user_id", what="用户")

    async def work(session: Any) -> dict[str, Any]:
        user = await user_by_id(session, user_id)
        if user is None:
            raise not_found("用户", user_id)
        changed = await disable(session, _who(request), user, routing=request.app[CONFIG].routing,
                                events=request.app[EVENTS])  # their pending MQLs go to others, in this transaction
        return {"user": user_json(user), "changed": changed}

    return respond(UserDisabled.model_validate(await in_transaction(request.app[SESSIONS], work)))


def _member_json(member: TeamMember, username: str, role: str) -> dict[str, Any]:
    return {"user_id": member.user_id, "username": username, "role": role, "away": member.away,
            "capacity": member.capacity, "monthly_cap": member.monthly_cap, "weight": member.weight}


async def _team_json(session: Any, team: Team) -> dict[str, Any]:
    members = [_member_json(m, u.username, u.role) for m, u in await members_of(session, [team.id])]
    return {"id": team.id, "name": team.name, "members": members}


@requires(TEAM_READ)
@api_spec("团队及成员", response=Teams, tags=("people",))
async def get_teams(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        teams = await list_teams(session)
        by_team: dict[int, list[dict[str, Any]]] = {t.id: [] for t in teams}
        for member, user in await members_of(session, list(by_team)):
            by_team[member.team_id].append(_member_json(member, user.username, user.role))
    return respond(Teams.model_validate({"teams": [{"id": t.id, "name": t.name, "members": by_team[t.id]}
                                                  for t in teams]}))


def _member_audit(member: TeamMember) -> dict[str, Any]:
    """The member's routing settings; monthly_cap and weight only when set (not 0), so entries of members who
    never had them read as they always have."""
    extra = {name: value for name in ("monthly_cap", "weight") if (value := getattr(member, name))}
    return {"user_id": member.user_id, "away": member.away, "capacity": member.capacity, **extra}


async def _apply_member(session: Any, request: web.Request, team: Team, body: MemberIn) -> None:
    user = await user_by_name(session, body.username)
    if user is None:
        raise ApiError(400, "unknown_user", f"用户不存在：{body.username}")
    member = await team_member(session, team.id, user.id)
    before = None if member is None else _member_audit(member)
    if body.remove:
        await remove_member(session, team.id, user.id)
        after = None
    else:
        after = _member_audit(await set_member(session, team.id, user.id, away=body.away, capacity=body.capacity,
                                               monthly_cap=body.monthly_cap, weight=body.weight))
    who = _who(request)
    await audit_repo.record(session, action="team.member", actor_user_id=who.user_id, actor_label=who.label,
                            target_kind="team", target_id=team.id, before=before, after=after, ip=who.ip)


@requires(TEAM_WRITE)
@body_limit(MAX_BODY)
@api_spec("新建团队", body=TeamIn, response=OneTeam, status=201, errors=(409,), tags=("people",))
async def post_team(request: web.Request) -> web.Response:
    """{"name", "members"?: [{"username", "away"?, "capacity"?, "monthly_cap"?, "weight"?}]}: a new team (409
    when the name is taken)."""
    body = await parse_body(request, TeamIn)
    name, members = body.name, body.members

    async def work(session: Any) -> dict[str, Any]:
        if await team_by_name(session, name) is not None:
            raise ApiError(409, "exists", f"团队已存在：{name}")
        team = await add_team(session, name)
        who = _who(request)
        await audit_repo.record(session, action="team.create", actor_user_id=who.user_id, actor_label=who.label,
                                target_kind="team", target_id=team.id, after={"name": name}, ip=who.ip)
        for member in members:
            await _apply_member(session, request, team, member)
        return await _team_json(session, team)

    return respond(OneTeam.model_validate({"team": await in_transaction(request.app[SESSIONS], work)}), status=201)


@requires(TEAM_WRITE)
@body_limit(MAX_BODY)
@api_spec("添加、更新或移除团队成员", body=MemberIn, response=OneTeam, errors=(404,), tags=("people",))
async def post_member(request: web.Request) -> web.Response:
    """{"username", "away"?, "capacity"?, "monthly_cap"?, "weight"?, "remove"?}: adds, updates or (remove: true)
    removes a member. away and capacity are set to the body's (false and 0 when omitted, as always); monthly_cap
    (30-day cap, 0 none) and weight (0: the capacity when above 0, else 1; see leads/routing.py) are kept when
    omitted, 0 for a new member."""
    team_id = path_id(request, "team_id", what="团队")
    body = await parse_body(request, MemberIn)

    async def work(session: Any) -> dict[str, Any]:
        team = await team_by_id(session, team_id)
        if team is None:
            raise not_found("团队", team_id)
        await _apply_member(session, request, team, body)
        return await _team_json(session, team)

    return respond(OneTeam.model_validate({"team": await in_transaction(request.app[SESSIONS], work)}))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/users", get_users)
    app.router.add_post("/api/users", post_user)
    app.router.add_patch("/api/users/{user_id}", patch_user)
    app.router.add_post("/api/users/{user_id}/disable", post_disable)
    app.router.add_get("/api/teams", get_teams)
    app.router.add_post("/api/teams", post_team)
    app.router.add_post("/api/teams/{team_id}/members", post_member)
