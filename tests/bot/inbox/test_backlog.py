"""A backlog nobody queued (stored by a process that only answers, or left by a crash) is claimed directly by
the workers of every process, each row by one of them, each sender's events in order."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.inbox.processor import InboxProcessor
from bot.keys import CONFIG, ENGINE, ROUTER, SERVICES, SESSIONS
from storage.models import Handoff, InboxEvent, Touchpoint
from tests.support.calls import post_texts
from tests.support.helpers import CORP_ID, OA_APP_ID
from tests.support.inbox import statuses

SENDERS = 25


@pytest.fixture
async def app(app_client):
    return await app_client(inbox={"workers": 0})  # the app only answers: its rows wait for other processes


def processor(app, workers: int, grace_s: float = 0.0) -> InboxProcessor:
    """Another process's processor on the same database: nothing is queued in it, it only sweeps."""
    a = app.server.app
    cfg = replace(a[CONFIG].inbox, workers=workers, sweep_grace_s=grace_s, fast_lane_ms=0, process_batch=16)
    return InboxProcessor(a[ENGINE], a[SESSIONS], a[ROUTER], a[SERVICES], cfg, {"oa": OA_APP_ID, "wecom": CORP_ID})


async def drained(engine, ids: list[int], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while any(status != "done" for status, _ in (await statuses(engine)).values()):
        assert time.monotonic() < deadline, "the backlog was not drained"
        await asyncio.sleep(0.05)


async def test_two_processes_share_a_backlog_each_row_once_each_sender_in_order(app, backend):
    texts = [(f"o_backlog_{n % SENDERS}", f"第{n}条消息") for n in range(240)]
    ids = await post_texts(app, texts)
    engine = app.server.app[ENGINE]
    first, second = processor(app, workers=2), processor(app, workers=2)
    first.start()
    second.start()
    try:
        assert await first.sweep() == len(ids)  # its workers wake, and claim batches of the oldest rows
        assert await second.sweep() > 0  # ... and so do these, while rows remain
        await drained(engine, ids)
    finally:
        await first.stop()
        await second.stop()
    assert await statuses(engine) == {i: ("done", 1) for i in ids}
    assert first.processed + second.processed == len(ids)
    if backend.is_production:  # SKIP LOCKED: both took a share (SQLite has one writer at a time)
        assert first.processed > 0 and second.processed > 0
    async with engine.connect() as conn:
        touches = (await conn.execute(select(Touchpoint.inbox_id).order_by(Touchpoint.id))).all()
        questions = (await conn.execute(select(Handoff.inbox_id).order_by(Handoff.id))).scalars().all()
    assert sorted(t.inbox_id for t in touches) == ids and sorted(questions) == ids
    order: dict[int, list[int]] = defaultdict(list)  # sender -> inbox ids in the order their touches were written
    for t in touches:
        order[ids.index(t.inbox_id) % SENDERS].append(t.inbox_id)
    assert all(seen == sorted(seen) for seen in order.values())


async def test_rows_younger_than_the_grace_are_left_to_the_process_that_stored_them(app):
    ids = await post_texts(app, [("o_fresh", "刚刚收到")])
    other = processor(app, workers=1, grace_s=3600.0)
    other.start()
    try:
        assert await other.sweep() == 0
        await asyncio.sleep(0.3)
    finally:
        await other.stop()
    assert (await statuses(app.server.app[ENGINE]))[ids[0]] == ("pending", 0)


async def test_after_the_queue_overflows_rows_are_worked_off_in_order_without_waiting_on_each_other(app):
    texts = [(f"o_flood_{n % 3}", f"第{n}条") for n in range(60)]
    ids = await post_texts(app, texts)
    engine = app.server.app[ENGINE]
    a = app.server.app
    cfg = replace(a[CONFIG].inbox, workers=2, fast_lane_ms=0, process_batch=4)
    flooded = InboxProcessor(engine, a[SESSIONS], a[ROUTER], a[SERVICES], cfg, {"oa": OA_APP_ID, "wecom": CORP_ID},
                             queue_size=5)
    flooded.start()
    started = time.monotonic()
    try:
        for i in range(0, len(ids), 10):  # stored in bursts: the queue overflows, then empties, then more come
            flooded.notify(ids[i:i + 10])
            await asyncio.sleep(0.01)
        await drained(engine, ids, timeout_s=30)
    finally:
        await flooded.stop()
    # A queued row never waited (seconds each) for an older row of its sender that was left unqueued.
    assert time.monotonic() - started < 10
    async with engine.connect() as conn:
        touches = (await conn.execute(select(Touchpoint.inbox_id).order_by(Touchpoint.id))).scalars().all()
    assert sorted(touches) == ids
    for sender in range(3):
        mine = [i for i in touches if ids.index(i) % 3 == sender]
        assert mine == sorted(mine)


async def test_a_sender_waiting_behind_a_failed_row_does_not_hold_up_the_backlog_behind_it(app):
    blocked = [("o_poison", f"第{n}条") for n in range(40)]  # more than a batch, all older than the rest
    others = [(f"o_fine_{n}", "你好") for n in range(30)]
    ids = await post_texts(app, blocked + others)
    engine = app.server.app[ENGINE]
    async with engine.begin() as conn:  # its first row failed and backs off for an hour
        await conn.execute(update(InboxEvent).where(InboxEvent.id == ids[0]).values(
            attempts=1, next_attempt_at=datetime.now(UTC) + timedelta(hours=1)))
    worker = processor(app, workers=1)
    worker.start()
    try:
        assert await worker.sweep() == len(ids) - 1
        deadline = time.monotonic() + 20
        while any(status != "done" for i, (status, _) in (await statuses(engine)).items() if i in ids[len(blocked):]):
            assert time.monotonic() < deadline, "the rows behind the blocked sender were not reached"
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()
    final = await statuses(engine)
    assert all(final[i][0] == "pending" for i in ids[:len(blocked)])  # kept in order behind their first row
