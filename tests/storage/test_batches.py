"""storage/repos/batch_queue.py (with batch_audience.py, batch_erasure.py) via bot/batches/queue.py on both
backends: set-based queueing chunks a member's 10,001 customers into two tasks of ≤ 10,000 and points every
recipient at exactly one task of its own member."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import insert, select, text

from bot.batches.queue import queue_batch
from bot.outbox.enqueue import enqueue as real_enqueue
from leads.batches.message import Message
from leads.identity import WECOM_EXTERNAL
from leads.lead_filters import LeadFilter
from storage.db import session_factory
from storage.models import BatchRecipient, BatchTask, Identity, Lead, OutboxMessage, Segment, utcnow
from storage.repos.batch_audience import AudienceRules
from storage.repos.batch_erasure import erase_recipients


async def _enqueue(session, **kwargs) -> int:  # noqa: ANN001, ANN003 - the outbox's signature
    _enqueue.calls.append(kwargs)  # type: ignore[attr-defined]
    return len(_enqueue.calls)  # type: ignore[attr-defined]


def _rules(now) -> AudienceRules:  # noqa: ANN001
    return AudienceRules(period_start=now - timedelta(hours=1), receive_limit=1, week_ago=now - timedelta(days=7),
                         caps={"wecom": None, "oa": None}, oa_template=False)


async def test_ten_thousand_and_one_customers_make_two_tasks_and_each_recipient_is_in_one(engine) -> None:
    _enqueue.calls = []  # type: ignore[attr-defined]
    now = utcnow()
    sizes = {"big_wx": 10_001, "small_wx": 3}
    async with session_factory(engine)() as session, session.begin():
        for member, n in sizes.items():
            first = (await session.execute(select(Lead.id).order_by(Lead.id.desc()).limit(1))).scalar() or 0
            await session.execute(insert(Lead), [{"display_name": f"{member}{i}", "profile": {"wecom_owner": member},
                                                  "stage": "lead", "consent": "unknown", "created_at": now}
                                                 for i in range(n)])
            ids = list((await session.execute(select(Lead.id).where(Lead.id > first).order_by(Lead.id))).scalars())
            await session.execute(insert(Identity), [{"lead_id": i, "kind": WECOM_EXTERNAL, "app": "ww",
                                                      "value": f"{member}-{i}", "verified": True, "created_at": now}
                                                     for i in ids])
    if engine.dialect.name == "postgresql":  # what autovacuum does after a bulk load: the planner needs it
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE leads, identities"))
    async with session_factory(engine)() as session, session.begin():
        segment = Segment(name="全部", query={})
        session.add(segment)
        await session.flush()
        queued = await queue_batch(session, _enqueue, segment_id=segment.id, user_id=None, message=Message("您好"),
                                   item=None, f=LeadFilter(), owners=None, rules=_rules(now), sandbox=True, at=now)
    assert sorted((t.member, t.chunk, t.recipients) for t in queued.tasks) == [
        ("big_wx", 1, 10_000), ("big_wx", 2, 1), ("small_wx", 1, 3)]
    assert queued.counts["channel"] == {"wecom": 10_004}
    assert [len(c["payload"]["external_userid"]) for c in _enqueue.calls] == [10_000, 1, 3]  # type: ignore
    async with session_factory(engine)() as session:
        rows = (await session.execute(select(BatchRecipient.task_id, BatchRecipient.member_userid,
                                             BatchRecipient.external_userid))).all()
        tasks = {t.id: t for t in (await session.execute(select(BatchTask))).scalars()}
    assert all(task_id in tasks and tasks[task_id].member_userid == m for task_id, m, _ in rows)
    assert Counter(task_id for task_id, _, _ in rows) == {t.id: t.recipients for t in tasks.values()}
    sent = [e for c in _enqueue.calls for e in c["payload"]["external_userid"]]  # type: ignore[attr-defined]
    assert sorted(sent) == sorted(e for _, _, e in rows) and len(set(sent)) == len(sent)


async def test_a_customer_over_the_periods_limit_is_excluded(engine) -> None:
    _enqueue.calls = []  # type: ignore[attr-defined]
    now = utcnow()
    async with session_factory(engine)() as session, session.begin():
        leads = [Lead(display_name=n, profile={"wecom_owner": "m_wx"}) for n in ("a", "b")]
        session.add_all(leads)
        await session.flush()
        session.add_all([Identity(lead_id=lead.id, kind=WECOM_EXTERNAL, app="ww", value=f"e{lead.id}")
                         for lead in leads])
        segment = Segment(name="两位", query={})
        session.add(segment)
        await session.flush()
        rules = _rules(now)
        first = await queue_batch(session, _enqueue, segment_id=segment.id, user_id=None, message=Message("一"),
                                  item=None, f=LeadFilter(), owners=[], rules=rules, sandbox=False, at=now)
        assert first.counts == {"channel": {}, "reason": {}, "status": {}}  # an empty scope reaches nobody
        second = await queue_batch(session, _enqueue, segment_id=segment.id, user_id=None, message=Message("二"),
                                   item=None, f=LeadFilter(), owners=None, rules=rules, sandbox=False,
                                   at=now)
        assert second.counts["channel"] == {"wecom": 2}  # queued: each used the period's one reception
        again = await queue_batch(session, _enqueue, segment_id=segment.id, user_id=None, message=Message("三"),
                                  item=None, f=LeadFilter(), owners=None, rules=rules, sandbox=False,
                                  at=now + timedelta(minutes=1))
    assert again.counts["reason"] == {"receive_limit": 2} and again.tasks == []


async def test_erasure_removes_a_persons_ids_from_recipients_and_task_calls(engine) -> None:
    _enqueue.calls = []  # type: ignore[attr-defined]
    now = utcnow()
    async with session_factory(engine)() as session, session.begin():
        leads = [Lead(display_name=n, profile={"wecom_owner": "m_wx"}) for n in ("a", "b")]
        session.add_all(leads)
        await session.flush()
        session.add_all([Identity(lead_id=lead.id, kind=WECOM_EXTERNAL, app="ww", value=f"e{lead.id}")
                         for lead in leads])
        segment = Segment(name="两位", query={})
        session.add(segment)
        await session.flush()
        await queue_batch(session, real_enqueue, segment_id=segment.id, user_id=None, message=Message("一"),
                          item=None, f=LeadFilter(), owners=None, rules=_rules(now), sandbox=True, at=now)
        gone, kept = leads[0].id, leads[1].id
        assert await erase_recipients(session, [gone], [f"e{gone}"]) == 1
    async with session_factory(engine)() as session:
        rows = dict((await session.execute(select(BatchRecipient.lead_id, BatchRecipient.external_userid))).all())
        (call,) = (await session.execute(select(OutboxMessage))).scalars()
    assert rows == {gone: None, kept: f"e{kept}"}
    assert call.payload["external_userid"] == [f"e{kept}"] and call.status == "sandboxed"
