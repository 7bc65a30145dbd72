"""storage/repos/lead_work.py on both backends: task order, tags added twice, and erasure blanking what people
wrote about the person while keeping that they wrote it."""

from __future__ import annotations

from datetime import timedelta

from bot.crypto.keyring import KeyRing, Purpose
from leads.identity import OA_OPENID, IdentityKey
from storage.db import session_factory
from storage.models import Lead, utcnow
from storage.repos import lead_work
from storage.repos.erasure import erase_lead
from storage.repos.leads import LeadRepository

KEYS = KeyRing([b"tombstone-key-0123456789abcdefghijklmnopqr"])


async def _lead(session, openid: str) -> Lead:
    return await LeadRepository(session).resolve([IdentityKey(OA_OPENID, "wx", openid)], now=utcnow(),
                                                 inbox_id=None, display_name=openid)


async def test_open_tasks_come_first_by_due_date(engine):
    now = utcnow()
    async with session_factory(engine)() as session, session.begin():
        lead = await _lead(session, "o_1")
        later = await lead_work.add_task(session, lead.id, "later", due_at=now + timedelta(days=2),
                                         assignee_user_id=None, created_by_user_id=None, now=now)
        undated = await lead_work.add_task(session, lead.id, "undated", due_at=None, assignee_user_id=None,
                                           created_by_user_id=None, now=now)
        soon = await lead_work.add_task(session, lead.id, "soon", due_at=now + timedelta(hours=1),
                                        assignee_user_id=None, created_by_user_id=None, now=now)
        done = await lead_work.add_task(session, lead.id, "done", due_at=now, assignee_user_id=None,
                                        created_by_user_id=None, now=now)
        assert await lead_work.mark_done(session, done, now)
        assert not await lead_work.mark_done(session, done, now + timedelta(hours=1))
        assert done.done_at == now
        lead_id = lead.id
    async with session_factory(engine)() as session:
        rows = await lead_work.list_tasks(session, lead_id, None, 10, 0)
        assert [t.id for t, _ in rows] == [soon.id, later.id, undated.id, done.id]
        assert [t.id for t, _ in await lead_work.list_tasks(session, lead_id, "done", 10, 0)] == [done.id]
        assert await lead_work.find_task(session, lead_id + 1, soon.id) is None


async def test_tags_added_twice_and_removed(engine):
    async with session_factory(engine)() as session, session.begin():
        lead = await _lead(session, "o_1")
        await lead_work.change_tags(session, lead.id, ["a", "b"], [], utcnow())
        await lead_work.change_tags(session, lead.id, ["b", "c"], ["a", "zz"], utcnow())  # b again: no error
        assert await lead_work.tags_of(session, lead.id) == ["b", "c"]


async def test_erasure_blanks_notes_and_task_titles_of_the_lead_only(engine):
    now = utcnow()
    async with session_factory(engine)() as session, session.begin():
        erased, kept = await _lead(session, "o_1"), await _lead(session, "o_2")
        for lead in (erased, kept):
            await lead_work.add_note(session, lead.id, "手机 13900001111", author_user_id=None, author_label="x",
                                     now=now)
            await lead_work.add_task(session, lead.id, "给王芳回电", due_at=None, assignee_user_id=None,
                                     created_by_user_id=None, now=now)
        ids = erased.id, kept.id
    async with session_factory(engine)() as session, session.begin():
        assert await erase_lead(session, ids[0], now, hasher=KEYS.hasher(Purpose.TOMBSTONE))
    async with session_factory(engine)() as session:
        gone_notes, kept_notes = [await lead_work.list_notes(session, i, 10, 0) for i in ids]
        assert [n.body for n in gone_notes] == [""] and [n.body for n in kept_notes] == ["手机 13900001111"]
        gone_tasks, kept_tasks = [await lead_work.list_tasks(session, i, None, 10, 0) for i in ids]
        assert [t.title for t, _ in gone_tasks] == [""] and [t.title for t, _ in kept_tasks] == ["给王芳回电"]


async def test_a_merge_brings_the_absorbed_leads_notes_and_tasks_to_the_survivor(engine):
    now = utcnow()
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        survivor, absorbed = await _lead(session, "o_old"), await _lead(session, "o_new")
        await lead_work.add_note(session, absorbed.id, "约了下周演示", author_user_id=None, author_label="sdr", now=now)
        await lead_work.add_task(session, absorbed.id, "发送报价", due_at=None, assignee_user_id=None,
                                 created_by_user_id=None, now=now)
        survivor_id, absorbed_id = survivor.id, absorbed.id
    async with sessions() as session, session.begin():
        await LeadRepository(session).merges.merge_pair(survivor_id, absorbed_id,
                                                        IdentityKey(OA_OPENID, "wx", "o_new"), now=now)
    async with sessions() as session:
        assert [n.body for n in await lead_work.list_notes(session, survivor_id, 10, 0)] == ["约了下周演示"]
        assert [t.title for t, _ in await lead_work.list_tasks(session, survivor_id, None, 10, 0)] == ["发送报价"]
        assert await lead_work.list_notes(session, absorbed_id, 10, 0) == []
