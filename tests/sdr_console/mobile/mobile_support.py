"""The mobile inbox's test world: salespeople (with WeCom member ids), routed leads with their assignments, the
fake WeCom server, and signing in through a login link or WeCom OAuth."""

from __future__ import annotations

import argparse
import contextlib
import io
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config.core import Config
from bot.keys import CONFIG, ENGINE
from bot.people.cli import run
from leads.identity import WECOM_EXTERNAL
from storage.db import session_factory
from storage.models import Assignment, Identity, Lead, LeadScore, utcnow
from storage.repos.teams import add_team, set_member, team_by_name
from storage.repos.users import add_user
from tests.sdr_console.console_support import token_user_hash
from tests.support.app import Client
from tests.support.fakes.wechat_server import FakeWeChatServer
from tests.support.helpers import CORP_ID, free_port

CONTENT = [
    {"id": "price-guide", "kind": "article", "title": "招聘系统选型指南", "url": "https://example.com/guide",
     "summary": "五个问题帮您选对系统", "stage": "consideration"},
    {"id": "case-sh", "kind": "case_study", "title": "上海某制造企业：招聘效率提升 40%",
     "url": "https://example.com/case", "summary": "300 人规模工厂的上线实录", "stage": "decision"},
    {"id": "demo-video", "kind": "video", "title": "3 分钟产品演示", "url": "https://example.com/video",
     "stage": "consideration"},
]


async def live_client(app_client: Any, fake: FakeWeChatServer, **sections: Any) -> Client:
    """The app in live mode against the fake, on a known port: WeCom sends the visitor back to public_url."""
    port = free_port()
    server = {"public_url": f"http://127.0.0.1:{port}", **sections.pop("server", {})}
    return await app_client(api_base_url=fake.base_url, port=port, server=server, **sections)


async def sandbox_client(app_client: Any, **sections: Any) -> Client:
    port = free_port()
    server = {"public_url": f"http://127.0.0.1:{port}", **sections.pop("server", {})}
    return await app_client(port=port, server=server, content={"items": CONTENT}, **sections)


async def salesperson(engine: AsyncEngine, username: str, *, display_name: str = "", role: str = "sales",
                      wecom_userid: str | None = None, team: str | None = None) -> int:
    async with session_factory(engine)() as session, session.begin():
        user = await add_user(session, username=username, role=role, password_hash=token_user_hash(),
                              display_name=display_name or username, wecom_userid=wecom_userid)
        if team:
            found = await team_by_name(session, team) or await add_team(session, team)
            await set_member(session, found.id, user.id)
        return user.id


async def routed_lead(engine: AsyncEngine, owner: int, *, name: str, company: str = "", status: str = "pending",
                      at: datetime | None = None, reason: str = "华东制造业（routing.rules[0]）",
                      external_userid: str | None = None, score: tuple[float, float, str] | None = None,
                      stage: str = "mql") -> tuple[int, int]:
    """A lead routed to ``owner`` (its pending, accepted or returned assignment); (lead id, assignment id)."""
    at = at or utcnow()
    async with session_factory(engine)() as session, session.begin():
        lead = Lead(display_name=name, stage=stage, owner_user_id=owner,
                    profile={"company": company} if company else {})
        session.add(lead)
        await session.flush()
        if score:
            session.add(LeadScore(lead_id=lead.id, ability=score[0], motivation=score[1], quadrant=score[2],
                                  rules="test", state={}, scored_at=at))
        if external_userid:
            session.add(Identity(lead_id=lead.id, kind=WECOM_EXTERNAL, app=CORP_ID, value=external_userid,
                                 verified=True))
        decided = None if status == "pending" else at + timedelta(minutes=5)
        assignment = Assignment(lead_id=lead.id, user_id=owner, rule="routing.rules[0]", reason=reason,
                                status=status, assigned_at=at, decided_at=decided,
                                return_reason="预算不足" if status == "returned" else None)
        session.add(assignment)
        await session.flush()
        return lead.id, assignment.id


async def login_link(config: Config, username: str) -> tuple[int, str]:
    """``leadrelay user login-link NAME`` as the CLI runs it: (exit code, what it printed)."""
    args = argparse.Namespace(command="user", user_command="login-link", name=username, config="-")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = await run(args, config.database, config=config)
    return code, out.getvalue().strip()


async def sign_in_by_link(client: Client, username: str) -> None:
    code, link = await login_link(client.server.app[CONFIG], username)
    assert code == 0, link
    path = link.removeprefix(client.server.app[CONFIG].server.public_url)
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/m/", await resp.text()


def engine_of(client: Client) -> AsyncEngine:
    return client.server.app[ENGINE]
