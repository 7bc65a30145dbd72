"""Signing in to the console from tests: users in the database, the sign-in form's token, the session cookie."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from http.cookies import SimpleCookie
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.keys import SESSIONS
from bot.people.passwords import hash_password
from leads.identity import OA_OPENID, WECOM_EXTERNAL, IdentityKey
from sdr_console.web.sessions import COOKIE_NAME
from storage.db import session_factory
from storage.models import AuditEntry, Handoff, Identity, Lead, User, utcnow
from storage.repos.api_tokens import issue_token
from storage.repos.leads import LeadRepository
from storage.repos.teams import add_team, set_member, team_by_name
from storage.repos.users import add_user
from tests.support.app import Client

PASSWORD = "correct horse 电池 staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@cache
def token_user_hash() -> str:
    """The password hash of API-token users: computed once (scrypt is slow on purpose)."""
    return hash_password("correct horse battery")


async def user_with_token(client: Client, username: str, role: str, team: str | None = None) -> tuple[int, str]:
    """A user (in ``team``, created when new) and an API token for them."""
    async with client.server.app[SESSIONS]() as session, session.begin():
        user = await add_user(session, username=username, role=role, password_hash=token_user_hash())
        if team:
            found = await team_by_name(session, team) or await add_team(session, team)
            await set_member(session, found.id, user.id)
        token, _ = await issue_token(session, user.id, "test")
        return user.id, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def make_lead(client: Client, openid: str, owner: int | None = None) -> int:
    """A lead with one OA OpenID, assigned to ``owner``."""
    async with client.server.app[SESSIONS]() as session, session.begin():
        lead = await LeadRepository(session).resolve([IdentityKey(OA_OPENID, "wx", openid)], now=utcnow(),
                                                     inbox_id=None, display_name=openid)
        lead.owner_user_id = owner
        return lead.id


async def call(client: Client, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> tuple[int, Any]:
    """Status and JSON body of an API call."""
    resp = await client.request(method, path, headers=headers, **kwargs)
    return resp.status, await resp.json()


async def audit_rows(client: Client, **where: Any) -> list[AuditEntry]:
    async with client.server.app[SESSIONS]() as session:
        stmt = select(AuditEntry).filter_by(**where).order_by(AuditEntry.id)
        return list((await session.execute(stmt)).scalars())


async def make_user(engine: AsyncEngine, username: str, *, role: str = "sdr", display_name: str | None = None,
                    password: str = PASSWORD) -> int:
    async with session_factory(engine)() as session, session.begin():
        user = await add_user(session, username=username, display_name=display_name or username, role=role,
                              password_hash=hash_password(password))
        return user.id


async def disable(engine: AsyncEngine, user_id: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(User).where(User.id == user_id).values(disabled_at=datetime.now(UTC)))


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no csrf_token field on the page"
    return match[1]


async def login_token(client: Client) -> str:
    resp = await client.get("/console/login")
    assert resp.status == 200
    return csrf_of(await resp.text())


async def sign_in(client: Client, username: str, password: str = PASSWORD, *, token: str | None = None):  # noqa: ANN201
    token = token if token is not None else await login_token(client)
    return await client.post("/console/login", data={"username": username, "password": password, "csrf_token": token},
                             allow_redirects=False)


def set_session_cookie(client: Client, value: str) -> None:
    """The browser holds ``value`` as its session cookie (one planted by an attacker, or a thief's copy)."""
    cookie: SimpleCookie = SimpleCookie()
    cookie[COOKIE_NAME] = value
    cookie[COOKIE_NAME]["path"] = "/"
    client.session.cookie_jar.update_cookies(cookie, client.make_url("/console/"))


def session_cookie(client: Client) -> str | None:
    for cookie in client.session.cookie_jar:
        if cookie.key == COOKIE_NAME:
            return cookie.value
    return None


async def seed_leads(engine: AsyncEngine, stages: dict[str, int], *, open_handoffs: int = 0) -> list[int]:
    """``stages[stage]`` leads in each stage, and open hand-off questions on the first lead."""
    async with session_factory(engine)() as session, session.begin():
        leads = [Lead(display_name=f"{stage}-{i}", stage=stage) for stage, n in stages.items() for i in range(n)]
        session.add_all(leads)
        await session.flush()
        session.add_all([Handoff(lead_id=leads[0].id, reason="no_intent", message=f"问题 {i}", status="open")
                         for i in range(open_handoffs)])
        return [lead.id for lead in leads]


async def make_handoff(client: Client, lead_id: int, message: str = "你们支持私有化部署吗？", *,
                       last_oa_hours_ago: float | None = 1.0, wecom: tuple[str, str] | None = None) -> int:
    """An open hand-off question on ``lead_id``; the lead's last own OA action ``last_oa_hours_ago`` hours ago
    (None: never). ``wecom``: (external_userid, owning member's userid) makes it a WeCom contact instead."""
    async with client.server.app[SESSIONS]() as session, session.begin():
        lead = await session.get(Lead, lead_id)
        assert lead is not None
        lead.oa_last_interaction_at = (None if last_oa_hours_ago is None
                                       else utcnow() - timedelta(hours=last_oa_hours_ago))
        if wecom is not None:
            await session.execute(delete(Identity).where(Identity.lead_id == lead_id))  # reachable by WeCom only
            session.add(Identity(lead_id=lead_id, kind=WECOM_EXTERNAL, app="corp", value=wecom[0], verified=True))
            lead.profile = {**(lead.profile or {}), "wecom_owner": wecom[1]}
        handoff = Handoff(lead_id=lead_id, reason="no_intent", message=message, status="open")
        session.add(handoff)
        await session.flush()
        return handoff.id


async def listed_lead(client: Client, name: str | None, *, owner: int | None = None, stage: str = "lead",
                      company: str | None = None, phone: str | None = None, tags: tuple[str, ...] = (),
                      score: tuple[float, float, str] | None = None) -> int:
    """A lead as the lead list shows it: a company in its profile, a phone identity, tags and a score."""
    from storage.models import Identity, LeadScore, LeadTag  # noqa: PLC0415 (keeps this helper self-contained)

    async with client.server.app[SESSIONS]() as session, session.begin():
        profile = {"company": company} if company else {}
        lead = Lead(display_name=name, stage=stage, owner_user_id=owner, profile=profile)
        session.add(lead)
        await session.flush()
        if phone:
            session.add(Identity(lead_id=lead.id, kind="phone", app="", value=phone, verified=True))
        session.add_all([LeadTag(lead_id=lead.id, tag=tag) for tag in tags])
        if score:
            session.add(LeadScore(lead_id=lead.id, ability=score[0], motivation=score[1], quadrant=score[2],
                                  rules="test", state={}, scored_at=utcnow()))
        return lead.id
