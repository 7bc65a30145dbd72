"""storage/repos/journey_enrolments.py on the real databases: one active enrolment per (journey, lead) even when
two transactions enrol at once, claims that skip each other's rows, the dormant-lead query."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from storage.db import session_factory
from storage.models import JourneyEnrolment, JourneyStep, Lead, utcnow
from storage.repos.journey_enrolments import NewEnrolment, claim_due, enrol, inactive_leads


async def leads(engine, n: int, *, idle_days: int = 0) -> list[int]:
    at = utcnow() - timedelta(days=idle_days)
    async with engine.begin() as conn:
        return list((await conn.execute(insert(Lead).returning(Lead.id), [
            {"stage": "lead", "consent": "granted", "profile": {}, "created_at": at, "last_activity_at": at}
            for _ in range(n)])).scalars())


async def test_two_transactions_enrolling_the_same_leads_at_once_make_one_enrolment_each(engine, backend):
    if not backend.is_production:
        pytest.skip("concurrent writers are the PostgreSQL deployment")
    ids = await leads(engine, 50)
    sessions = session_factory(engine)
    now = utcnow()
    gate = asyncio.Event()

    async def writer() -> int:
        async with sessions() as s, s.begin():
            await gate.wait()
            return await enrol(s, [NewEnrolment("j", i, "v1", "form:x", now) for i in ids])

    tasks = [asyncio.create_task(writer()) for _ in range(3)]
    await asyncio.sleep(0.1)
    gate.set()
    made = await asyncio.gather(*tasks)
    assert sum(made) == 50
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(JourneyEnrolment))).scalar() == 50
        assert (await conn.execute(select(func.count()).select_from(JourneyStep))).scalar() == 50


async def test_claims_skip_rows_another_transaction_holds(engine, backend):
    if not backend.is_production:
        pytest.skip("SKIP LOCKED is PostgreSQL's")
    ids = await leads(engine, 10)
    sessions = session_factory(engine)
    now = utcnow()
    async with sessions() as s, s.begin():
        await enrol(s, [NewEnrolment("j", i, "v1", "", now) for i in ids])
    async with sessions() as first, first.begin():
        held = await claim_due(first, now, 4)
        async with sessions() as second, second.begin():
            other = await claim_due(second, now, 100)
    assert len(held) == 4 and len(other) == 6
    assert not {c.enrolled.id for c in held} & {c.enrolled.id for c in other}


async def test_dormant_leads_are_found_once_per_sleep(engine):
    asleep = await leads(engine, 3, idle_days=40)
    await leads(engine, 2, idle_days=5)
    sessions = session_factory(engine)
    now = utcnow()
    async with sessions() as s:
        found = await inactive_leads(s, "wake", 30, now, 100)
    assert sorted(i for i, _ in found) == asleep
    async with sessions() as s, s.begin():
        await enrol(s, [NewEnrolment("wake", asleep[0], "v1", "inactive:40d", now)])
    async with sessions() as s:
        assert sorted(i for i, _ in await inactive_leads(s, "wake", 30, now, 100)) == asleep[1:]
        assert [i for i, _ in await inactive_leads(s, "other", 30, now, 100)] == asleep  # per journey
