"""The capture endpoints' repositories on both backends: mini-program logins, identity look-ups, the inbox count."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from leads.identity import EMAIL, MP_OPENID, PHONE, IdentityKey
from storage.db import session_factory
from storage.models import Identity, InboxEvent, Lead, MiniProgramSession, utcnow
from storage.repos.identities import knowledge_of
from storage.repos.inbox import count_inbox_events
from storage.repos.mp_sessions import find_mp_session, open_mp_session


async def _lead_with(session, *identities: tuple[str, str, str], profile: dict | None = None) -> int:
    lead = Lead(profile=profile or {})
    session.add(lead)
    await session.flush()
    for kind, app, value in identities:
        session.add(Identity(lead_id=lead.id, kind=kind, app=app, value=value))
    await session.flush()
    return lead.id


async def test_opening_a_login_drops_only_the_leads_expired_ones(engine, backend):
    now = utcnow()
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        lead, other = await _lead_with(session), await _lead_with(session)
        logins = (("old", lead, now - timedelta(seconds=1)), ("live", lead, now + timedelta(hours=1)),
                  ("theirs", other, now - timedelta(hours=1)))
        for token, owner, expires in logins:
            await open_mp_session(session, token_hash=token, lead_id=owner, openid="o", session_key="k",
                                  now=now - timedelta(days=1), expires_at=expires)
    async with sessions() as session, session.begin():
        await open_mp_session(session, token_hash="new", lead_id=lead, openid="o_mp", session_key="sk", now=now,
                              expires_at=now + timedelta(hours=2))
    async with sessions() as session:
        hashes = (await session.execute(select(MiniProgramSession.token_hash))).scalars().all()
        assert sorted(hashes) == ["live", "new", "theirs"]
        found = await find_mp_session(session, "new")
        assert (found.lead_id, found.openid, found.session_key) == (lead, "o_mp", "sk")
        assert found.expires_at == now + timedelta(hours=2)
        assert (await find_mp_session(session, "theirs")).lead_id == other  # expired, still found
        assert await find_mp_session(session, "nope") is None


async def test_knowledge_of_finds_the_lowest_lead_owning_any_identity(engine, backend):
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        first = await _lead_with(session, (MP_OPENID, "wxapp", "o1"), (PHONE, "", "13800000000"),
                                 profile={"company": "甲公司"})
        await _lead_with(session, (MP_OPENID, "wxapp", "o2"), (EMAIL, "", "a@example.com"))
    async with sessions() as session:
        assert await knowledge_of(session, []) is None
        assert await knowledge_of(session, [IdentityKey(MP_OPENID, "wxapp", "stranger")]) is None
        known = await knowledge_of(session, [IdentityKey(MP_OPENID, "wxapp", "o2"),
                                             IdentityKey(MP_OPENID, "wxapp", "o1")])
        assert known.lead_id == first
        assert known.profile == {"company": "甲公司"}
        assert sorted(known.identity_kinds) == sorted([MP_OPENID, PHONE])


async def test_count_inbox_events_counts_every_stored_callback(engine, backend):
    sessions = session_factory(engine)
    async with sessions() as session:
        assert await count_inbox_events(session) == 0
    async with sessions() as session, session.begin():
        for n, status in enumerate(("pending", "done")):
            session.add(InboxEvent(source="oa", dedup_key=f"k{n}", msg_type="text", from_user="o", create_time=n,
                                   payload="<xml/>", status=status))
    async with sessions() as session:
        assert await count_inbox_events(session) == 2
