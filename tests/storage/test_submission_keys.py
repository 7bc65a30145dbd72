"""storage/repos/submission_keys.py on both backends: a key is claimed once, a keyless (windowed) key is claimed
again once its window has passed, old keys are pruned."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from storage.db import session_factory
from storage.models import Lead, SubmissionKey, utcnow
from storage.repos.submission_keys import (
    AlreadySubmitted,
    claim_submission_key,
    prune_submission_keys,
    submitted_lead,
)


async def _lead(sessions) -> int:
    async with sessions() as session, session.begin():
        lead = Lead()
        session.add(lead)
        await session.flush()
        return lead.id


async def test_a_key_is_claimed_once_and_a_windowed_key_again_after_its_window(engine):
    sessions = session_factory(engine)
    lead_id, now = await _lead(sessions), utcnow()
    async with sessions() as session, session.begin():
        await claim_submission_key(session, "k" * 64, lead_id, now)
        await claim_submission_key(session, "b" * 64, lead_id, now - timedelta(seconds=90),
                                   since=now - timedelta(seconds=150))
    async with sessions() as session:
        with pytest.raises(AlreadySubmitted):
            await claim_submission_key(session, "k" * 64, lead_id, now)
        window = now - timedelta(seconds=60)
        assert await submitted_lead(session, "b" * 64, since=window) is None  # 90 s old: outside a 60 s window
    async with sessions() as session, session.begin():
        await claim_submission_key(session, "b" * 64, lead_id, now, since=window)  # replaces the stale row
    async with sessions() as session:
        assert await submitted_lead(session, "b" * 64, since=window) == lead_id
        with pytest.raises(AlreadySubmitted):
            await claim_submission_key(session, "b" * 64, lead_id, now, since=window)


async def test_old_keys_are_pruned(engine):
    sessions = session_factory(engine)
    lead_id, now = await _lead(sessions), utcnow()
    async with sessions() as session, session.begin():
        await claim_submission_key(session, "o" * 64, lead_id, now - timedelta(days=8))
        await claim_submission_key(session, "n" * 64, lead_id, now)
    async with sessions() as session, session.begin():
        assert await prune_submission_keys(session, now - timedelta(days=7)) == 1
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SubmissionKey)) == 1
