"""storage/repos/outbox.py on both backends: rows in, due rows out in order, outcomes written, the API's list."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from storage.db import session_factory
from storage.models import Lead, OutboxMessage, utcnow
from storage.repos.outbox import (
    OUTBOX_STATUSES,
    due_messages,
    get_message,
    insert_message,
    list_outbox,
    load_lead_facts,
    record_outcome,
)


async def _lead(session, **values) -> int:
    lead = Lead(**values)
    session.add(lead)
    await session.flush()
    return lead.id


async def _insert(session, key: str, *, target: str = "oa", method: str = "oa.text", status: str = "pending",
                  lead_id: int | None = None, at=None) -> int | None:
    return await insert_message(session, idempotency_key=key, target=target, method=method,
                                payload={"openid": "o1", "content": key}, status=status, last_error=None,
                                lead_id=lead_id, created_at=at or utcnow())


async def test_insert_returns_the_id_once_per_idempotency_key(engine, backend):
    async with session_factory(engine)() as session, session.begin():
        first = await _insert(session, "k1")
        again = await _insert(session, "k1")
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    assert first is not None and again is None
    assert [(r.id, r.idempotency_key, r.attempts, r.status) for r in rows] == [(first, "k1", 0, "pending")]


async def test_due_rows_are_pending_of_the_targets_and_past_their_retry_time(engine, backend):
    now = utcnow()
    async with session_factory(engine)() as session, session.begin():
        a = await _insert(session, "a")
        b = await _insert(session, "b", method="wecom.app_text", target="wecom")
        later = await _insert(session, "later")
        await _insert(session, "sent", status="sent")
        await _insert(session, "other-target", target="wecom", method="wecom.welcome")
        row = await get_message(session, later)
        row.next_attempt_at = now + timedelta(minutes=5)
    async with session_factory(engine)() as session, session.begin():
        due = await due_messages(session, targets={"oa", "wecom"}, now=now, limit=10)
        assert [r.idempotency_key for r in due] == ["a", "b", "other-target"]
        assert [r.id for r in await due_messages(session, targets={"oa"}, now=now, limit=10)] == [a]
        assert [r.id for r in await due_messages(session, targets={"oa", "wecom"}, now=now, limit=1)] == [a]
        only = await due_messages(session, targets={"oa", "wecom"}, now=now, limit=10, methods={"wecom.app_text"})
        assert [r.id for r in only] == [b]
        others = await due_messages(session, targets={"oa", "wecom"}, now=now, limit=10,
                                    methods={"wecom.app_text"}, exclude_methods=True)
        assert [r.idempotency_key for r in others] == ["a", "other-target"]
        locked = await due_messages(session, targets={"oa"}, now=now + timedelta(minutes=6), limit=5,
                                    skip_locked=True)
        assert [r.idempotency_key for r in locked] == ["a", "later"]


async def test_record_outcome_counts_attempts_and_keeps_no_response_as_sql_null(engine, backend):
    now = utcnow()
    async with session_factory(engine)() as session, session.begin():
        row_id = await _insert(session, "k")
    async with session_factory(engine)() as session, session.begin():
        row = await get_message(session, row_id)
        record_outcome(row, counts=True, status="pending", response=None, last_error="timeout",
                       next_attempt_at=now + timedelta(seconds=5), sent_at=None)
    async with session_factory(engine)() as session, session.begin():
        row = await get_message(session, row_id)
        assert (row.attempts, row.status, row.last_error, row.sent_at) == (1, "pending", "timeout", None)
        assert (await session.execute(select(OutboxMessage.id).where(OutboxMessage.response.is_(None)))).all()
        record_outcome(row, counts=False, status="sent", response={"errcode": 0}, last_error=None,
                       next_attempt_at=None, sent_at=now)
    async with session_factory(engine)() as session:
        row = await get_message(session, row_id)
        assert (row.attempts, row.status, row.response, row.next_attempt_at) == (1, "sent", {"errcode": 0}, None)
        assert row.sent_at == now
        assert await get_message(session, row_id + 1000) is None


async def test_lead_facts_follow_the_merge_to_the_survivor_and_take_the_latest_interaction(engine, backend):
    now = utcnow()
    async with session_factory(engine)() as session, session.begin():
        survivor = await _lead(session, consent="revoked", oa_last_interaction_at=now - timedelta(hours=30))
        merged = await _lead(session, consent="granted", oa_last_interaction_at=now - timedelta(hours=2),
                             merged_into_id=survivor)
        alone = await _lead(session)
    async with session_factory(engine)() as session:
        via_merged = await load_lead_facts(session, merged)
        via_survivor = await load_lead_facts(session, survivor)
        assert via_merged == via_survivor
        assert via_merged.consent == "revoked"
        assert via_merged.oa_last_interaction_at == now - timedelta(hours=2)
        facts = await load_lead_facts(session, alone)
        assert (facts.consent, facts.oa_last_interaction_at) == ("unknown", None)
        assert await load_lead_facts(session, alone + 1000) is None


async def test_list_outbox_is_newest_first_with_optional_filters(engine, backend):
    async with session_factory(engine)() as session, session.begin():
        lead = await _lead(session)
        ids = [await _insert(session, "a", lead_id=lead), await _insert(session, "b", status="sandboxed"),
               await _insert(session, "c", method="oa.template", lead_id=lead),
               await _insert(session, "d", lead_id=lead)]
    async with session_factory(engine)() as session:
        def keys(rows: list[OutboxMessage]) -> list[str]:
            return [r.idempotency_key for r in rows]

        everything = await list_outbox(session, status=None, method=None, lead_id=None, limit=10, offset=0)
        assert [r.id for r in everything] == ids[::-1]
        assert keys(await list_outbox(session, status=None, method=None, lead_id=None, limit=2, offset=1)) == ["c", "b"]
        assert keys(await list_outbox(session, status="sandboxed", method=None, lead_id=None, limit=10,
                                      offset=0)) == ["b"]
        assert keys(await list_outbox(session, status=None, method="oa.template", lead_id=None, limit=10,
                                      offset=0)) == ["c"]
        assert keys(await list_outbox(session, status="pending", method="oa.text", lead_id=lead, limit=10,
                                      offset=0)) == ["d", "a"]
    assert "cancelled" in OUTBOX_STATUSES and len(set(OUTBOX_STATUSES)) == len(OUTBOX_STATUSES)
