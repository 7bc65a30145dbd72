"""Users, teams, API tokens and the audit log in storage, on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import session_factory
from storage.models import utcnow
from storage.repos import audit
from storage.repos.api_tokens import issue_token, revoke_token, token_hash, tokens_of, user_for_token
from storage.repos.teams import add_team, remove_member, set_member, share_a_team, team_ids_of
from storage.repos.users import add_user, disable_user, list_users, user_by_name


async def test_tokens_are_stored_hashed_and_stop_on_revocation_or_disabling(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as s, s.begin():
        li = await add_user(s, username="li", role="sdr", password_hash="x")
        token, row = await issue_token(s, li.id, "laptop")
        other, _ = await issue_token(s, li.id)
    assert token.startswith("lr_") and len(token) > 40 and row.token_hash == token_hash(token) != token
    async with sessions() as s, s.begin():
        assert (await user_for_token(s, token_hash(token))).username == "li"
        assert await user_for_token(s, token_hash(token + "x")) is None
    async with sessions() as s, s.begin():
        [first, _] = await tokens_of(s, li.id)
        assert first.last_used_at is not None
        assert await revoke_token(s, first.id) and not await revoke_token(s, first.id)
        assert await user_for_token(s, token_hash(token)) is None
        assert await user_for_token(s, token_hash(other)) is not None
        user = await user_by_name(s, "li")
        assert user is not None and await disable_user(s, user) and not await disable_user(s, user)
        assert await user_for_token(s, token_hash(other)) is None
        assert [u.username for u in await list_users(s, include_disabled=False)] == []


async def test_usernames_are_unique(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as s, s.begin():
        await add_user(s, username="li", role="sdr", password_hash="x")
    with pytest.raises(IntegrityError):
        async with sessions() as s, s.begin():
            await add_user(s, username="li", role="admin", password_hash="y")


async def test_team_membership(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as s, s.begin():
        a, b, c = [await add_user(s, username=n, role="sales", password_hash="x") for n in ("a", "b", "c")]
        east, west = await add_team(s, "east"), await add_team(s, "west")
        await set_member(s, east.id, a.id)
        await set_member(s, east.id, b.id, away=True, capacity=3)
        await set_member(s, west.id, c.id)
        await set_member(s, west.id, b.id)
        assert await share_a_team(s, a.id, b.id) and await share_a_team(s, b.id, c.id)
        assert not await share_a_team(s, a.id, c.id)
        assert await team_ids_of(s, b.id) == [east.id, west.id]
        assert await remove_member(s, west.id, b.id) and not await remove_member(s, west.id, b.id)
        assert not await share_a_team(s, b.id, c.id)


async def test_the_audit_log_filters_newest_first(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    now = utcnow()
    async with sessions() as s, s.begin():
        root = await add_user(s, username="root", role="admin", password_hash="x")
        await audit.record(s, action="user.create", actor_user_id=root.id, actor_label="root", target_kind="user",
                           target_id=7, after={"username": "王芳"}, at=now - timedelta(days=2))
        await audit.record(s, action="lead.stage", actor_label="service-token", target_kind="lead", target_id="9",
                           outcome=audit.DENIED, ip="10.0.0.1", at=now - timedelta(hours=1))
        await audit.record(s, action="lead.stage", actor_user_id=root.id, actor_label="root", target_kind="lead",
                           target_id=9, before={"stage": "lead"}, after={"stage": "mql"}, at=now)
    async with sessions() as s:
        every = await audit.list_audit(s)
        assert [e.action for e in every] == ["lead.stage", "lead.stage", "user.create"]
        assert every[2].after == {"username": "王芳"} and every[2].target_id == "7"
        f = audit.AuditFilters
        assert [e.outcome for e in await audit.list_audit(s, f(target_kind="lead", target_id="9"))] == [
            "ok", "denied"]
        assert len(await audit.list_audit(s, f(actor_user_id=root.id))) == 2
        assert [e.ip for e in await audit.list_audit(s, f(outcome=audit.DENIED))] == ["10.0.0.1"]
        assert [e.action for e in await audit.list_audit(s, f(since=now - timedelta(days=1)))] == ["lead.stage"] * 2
        assert [e.action for e in await audit.list_audit(s, f(until=now - timedelta(days=1)))] == ["user.create"]
        assert [e.id for e in await audit.list_audit(s, limit=1, offset=1)] == [every[1].id]
