"""LeadRepository.resolve and merge_pair on both backends: weak identities give suggestions, never merges."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from leads.identity import EMAIL, MP_OPENID, OA_OPENID, PHONE, Conflict, IdentityKey, Merge
from storage.db import session_factory
from storage.models import DuplicateSuggestion, Identity, Lead, LeadMerge, MergeConflict, utcnow
from storage.repos.erasure import erase_lead
from storage.repos.leads import LeadRepository
from storage.tx import Retry, in_transaction
from tests.support.locks import until_blocked

NOW = utcnow()
VICTIM_OPENID = IdentityKey(OA_OPENID, "wxapp", "o_victim")
OWN_OPENID = IdentityKey(MP_OPENID, "wxmp", "mp_self")
TYPED = IdentityKey(PHONE, "", "13800000001")
VERIFIED = IdentityKey(PHONE, "", "13800000001", verified=True)
MAIL = IdentityKey(EMAIL, "", "v@corp.cn")


async def resolve(sessions, *observed: IdentityKey, days_ago: int = 0) -> int:
    async with sessions() as session, session.begin():
        lead = await LeadRepository(session).resolve(list(observed), now=NOW - timedelta(days=days_ago),
                                                     inbox_id=None)
        return lead.id


async def rows(sessions, model, *columns):
    async with sessions() as session:
        return [tuple(r) for r in (await session.execute(select(*columns).order_by(model.id))).all()]


async def test_repeated_anonymous_typing_of_a_known_phone_never_touches_its_lead(engine, backend):
    sessions = session_factory(engine)
    victim = await resolve(sessions, VICTIM_OPENID, TYPED, MAIL, days_ago=30)
    first = await resolve(sessions, TYPED, MAIL)
    again = await resolve(sessions, OWN_OPENID, TYPED)
    again_2 = await resolve(sessions, OWN_OPENID, TYPED)  # the same pair and identity: no second row
    assert victim not in (first, again) and first != again and again == again_2
    assert await rows(sessions, Identity, Identity.lead_id, Identity.kind, Identity.value) == [
        (victim, OA_OPENID, "o_victim"), (victim, PHONE, TYPED.value), (victim, EMAIL, MAIL.value),
        (again, MP_OPENID, "mp_self")]
    assert await rows(sessions, DuplicateSuggestion, DuplicateSuggestion.lead_id, DuplicateSuggestion.other_lead_id,
                      DuplicateSuggestion.identity_kind, DuplicateSuggestion.status) == [
        (first, victim, PHONE, "open"), (first, victim, EMAIL, "open"), (again, victim, PHONE, "open")]
    assert await rows(sessions, LeadMerge, LeadMerge.id) == []


async def test_a_verified_phone_upgrades_the_own_typed_copy(engine, backend):
    sessions = session_factory(engine)
    own = await resolve(sessions, OWN_OPENID, TYPED)
    assert await resolve(sessions, OWN_OPENID, VERIFIED) == own
    assert await rows(sessions, Identity, Identity.lead_id, Identity.value, Identity.verified) == [
        (own, "mp_self", False), (own, TYPED.value, True)]
    assert await rows(sessions, DuplicateSuggestion, DuplicateSuggestion.id) == []


async def test_a_verified_phone_takes_the_number_from_a_lead_that_only_typed_it(engine, backend):
    sessions = session_factory(engine)
    typer = await resolve(sessions, VICTIM_OPENID, TYPED, days_ago=30)
    verifier = await resolve(sessions, OWN_OPENID)
    assert await resolve(sessions, OWN_OPENID, VERIFIED) == verifier  # no merge into the older typer
    assert await rows(sessions, Identity, Identity.lead_id, Identity.value, Identity.verified) == [
        (typer, "o_victim", False), (verifier, TYPED.value, True), (verifier, "mp_self", False)]
    assert await rows(sessions, DuplicateSuggestion, DuplicateSuggestion.lead_id,
                      DuplicateSuggestion.other_lead_id) == [(verifier, typer)]


async def test_merge_pair_merges_the_older_and_closes_moot_suggestions(engine, backend):
    sessions = session_factory(engine)
    older = await resolve(sessions, VICTIM_OPENID, TYPED, days_ago=30)
    newer = await resolve(sessions, OWN_OPENID, TYPED, MAIL)
    third = await resolve(sessions, MAIL)  # suggestion third -> newer, stays open
    async with sessions() as session, session.begin():
        outcome = await LeadRepository(session).merges.merge_pair(newer, older, TYPED, now=NOW)
    assert outcome == Merge(older, newer, TYPED)
    async with sessions() as session:
        assert (await session.get_one(Lead, newer)).merged_into_id == older
        suggestions = (await session.execute(select(DuplicateSuggestion).order_by(DuplicateSuggestion.id))).scalars()
        assert [(s.lead_id, s.status, s.resolved_by) for s in suggestions] == [
            (newer, "merged", "merge"), (third, "open", "")]
    assert sorted(await rows(sessions, Identity, Identity.value, Identity.lead_id)) == sorted([
        ("o_victim", older), (TYPED.value, older), ("mp_self", older), (MAIL.value, older)])


async def test_merge_pair_with_clashing_verified_phones_records_a_conflict(engine, backend):
    sessions = session_factory(engine)
    a = await resolve(sessions, VICTIM_OPENID, VERIFIED, days_ago=3)
    b = await resolve(sessions, OWN_OPENID, IdentityKey(PHONE, "", "13900000002", verified=True))
    for _ in range(2):
        async with sessions() as session, session.begin():
            outcome = await LeadRepository(session).merges.merge_pair(a, b, MAIL, now=NOW)
        assert isinstance(outcome, Conflict) and (outcome.lead_id, outcome.other_lead_id) == (a, b)
    assert await rows(sessions, MergeConflict, MergeConflict.lead_id, MergeConflict.other_lead_id,
                      MergeConflict.status) == [(a, b, "open")]
    assert await rows(sessions, LeadMerge, LeadMerge.id) == []


async def test_a_strong_merge_later_closes_the_suggestion_it_answers(engine, backend):
    sessions = session_factory(engine)
    union = IdentityKey("unionid", "", "u_same")
    first = await resolve(sessions, VICTIM_OPENID, union, TYPED, days_ago=30)
    second = await resolve(sessions, OWN_OPENID, TYPED)  # weak: a suggestion, not a merge
    assert await rows(sessions, DuplicateSuggestion, DuplicateSuggestion.status) == [("open",)]
    assert await resolve(sessions, OWN_OPENID, union) == first  # WeChat says they are one person
    assert await rows(sessions, LeadMerge, LeadMerge.survivor_id, LeadMerge.merged_id) == [(first, second)]
    assert await rows(sessions, DuplicateSuggestion, DuplicateSuggestion.status,
                      DuplicateSuggestion.resolved_by) == [("merged", "merge")]


def _hasher(message: str) -> list[str]:
    return [hashlib.sha256(message.encode()).hexdigest()]


async def _resolve_while_held(engine, backend, sessions, hold, observed: list[IdentityKey],
                              profile: dict | None = None) -> int:
    """Resolve (in storage.tx.in_transaction) while ``hold(session)`` runs uncommitted; commit it; the lead."""
    async def work(session) -> int:
        repo = LeadRepository(session)
        lead = await repo.resolve(observed, now=NOW, inbox_id=None)
        await repo.merge_profile(lead, profile or {})
        return lead.id

    async with sessions() as held:
        await held.begin()
        await hold(held)
        task = asyncio.create_task(in_transaction(sessions, work))
        try:
            await until_blocked(engine, backend, task)
        finally:
            await held.commit()
    return await asyncio.wait_for(task, 20)


async def test_resolution_waiting_on_an_erasure_never_writes_onto_the_erased_lead(engine, backend):
    sessions = session_factory(engine)
    erased = await resolve(sessions, VICTIM_OPENID, MAIL)

    async def erase(session) -> None:
        assert await erase_lead(session, erased, NOW, hasher=_hasher)

    lead_id = await _resolve_while_held(engine, backend, sessions, erase,
                                        [VICTIM_OPENID, IdentityKey(EMAIL, "", "p@x.cn")], {"name": "张伟"})
    assert lead_id != erased
    async with sessions() as session:
        lead = await session.get_one(Lead, erased)
        assert lead.profile == {"erased": True} and lead.erased_at is not None
    assert await rows(sessions, Identity, Identity.lead_id, Identity.value) == [
        (lead_id, "o_victim"), (lead_id, "p@x.cn")]
    assert await rows(sessions, DuplicateSuggestion, DuplicateSuggestion.id) == []


async def test_resolution_waiting_on_a_merge_lands_on_the_survivor(engine, backend):
    sessions = session_factory(engine)
    older = await resolve(sessions, VICTIM_OPENID, days_ago=2)
    newer = await resolve(sessions, OWN_OPENID, days_ago=1)

    async def merge(session) -> None:
        assert isinstance(await LeadRepository(session).merges.merge_pair(older, newer, MAIL, now=NOW), Merge)

    assert await _resolve_while_held(engine, backend, sessions, merge, [OWN_OPENID]) == older
    assert await rows(sessions, Identity, Identity.lead_id) == [(older,), (older,)]


async def test_resolve_raises_retry_when_its_lead_was_erased_while_it_waited(engine, backend):
    if not backend.is_production:
        pytest.skip("SQLite has one writer: no transaction reads a lead another is erasing")
    sessions = session_factory(engine)
    erased = await resolve(sessions, VICTIM_OPENID)
    async with sessions() as held, sessions() as waiting:
        await held.begin()
        await erase_lead(held, erased, NOW, hasher=_hasher)
        await waiting.begin()
        task = asyncio.create_task(LeadRepository(waiting).resolve([VICTIM_OPENID], now=NOW, inbox_id=None))
        await until_blocked(engine, backend, task)
        await held.commit()
        with pytest.raises(Retry):
            await task
        await waiting.rollback()
