"""Several queued events in one transaction: same effects as one by one, and a failure costs only itself."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace

import pytest
from sqlalchemy import select, text

from bot.dispatch.router import Router
from bot.inbox.gauge import CpuMeter, IngestGauge
from bot.inbox.processor import InboxProcessor
from bot.inbox.tx import Batch
from bot.keys import CONFIG, ENGINE, SERVICES, SESSIONS
from handlers import build_router
from storage.models import InboxEvent, Touchpoint
from tests.support.calls import post_texts
from tests.support.helpers import CORP_ID, OA_APP_ID, count
from tests.support.inbox import handling, statuses

BOOM = "触发一个处理错误"


def failing_router() -> Router:
    """The real handlers, except that a text saying BOOM fails after its lead and touchpoint were written."""
    root = Router("test-failing")

    def says_boom(event) -> bool:
        return event.msg_type == "text" and event.fields.get("Content") == BOOM

    real = build_router()

    @root.on(says_boom)
    async def boom(ctx) -> None:
        handler = real.match(ctx.event)
        assert handler is not None
        await handler(ctx)
        await ctx.session.flush()
        raise RuntimeError("handler failed on purpose")

    root.include(real)
    return root


@pytest.fixture
async def app(app_client):
    # No workers: rows stay pending until the test hands them to the code under test.
    return await app_client(router=failing_router(), inbox={"workers": 0})


async def touched_inbox_ids(engine) -> set[int]:
    async with engine.connect() as conn:
        return set((await conn.execute(select(Touchpoint.inbox_id))).scalars())


async def test_a_batch_commits_every_event_with_its_done_mark(app):
    ids = await post_texts(app, [(f"o_batch_{n}", "你好") for n in range(5)])
    engine = app.server.app[ENGINE]
    assert await handling(app).many(ids) == Batch(waiting=[], unstarted=[], handled=5)
    assert await statuses(engine) == {i: ("done", 1) for i in ids}
    assert await touched_inbox_ids(engine) == set(ids)


async def test_a_failing_event_rolls_its_batch_back_and_only_it_is_retried(app):
    ids = await post_texts(app, [("o_a", "你好"), ("o_b", BOOM), ("o_c", "你好")])
    engine = app.server.app[ENGINE]
    # Nothing kept: every event goes back to be handled alone.
    assert await handling(app).many(ids) == Batch(waiting=ids, unstarted=[])
    assert await statuses(engine) == {i: ("pending", 0) for i in ids}
    assert await touched_inbox_ids(engine) == set()

    processor = InboxProcessor(engine, app.server.app[SESSIONS], failing_router(), app.server.app[SERVICES],
                               replace(app.server.app[CONFIG].inbox, workers=1), {"oa": OA_APP_ID, "wecom": CORP_ID})
    processor.start()
    try:
        processor.notify(ids)  # queued together: the worker takes them as one batch
        deadline = time.monotonic() + 20
        while (await statuses(engine))[ids[0]][0] == "pending" or (await statuses(engine))[ids[2]][0] == "pending":
            assert time.monotonic() < deadline, await statuses(engine)
            await asyncio.sleep(0.05)
    finally:
        await processor.stop()
    final = await statuses(engine)
    assert final[ids[0]] == ("done", 1) and final[ids[2]] == ("done", 1)
    assert final[ids[1]][0] in ("pending", "failed") and final[ids[1]][1] >= 1  # recorded, retried with backoff
    async with engine.connect() as conn:
        error = (await conn.execute(select(InboxEvent.last_error).where(InboxEvent.id == ids[1]))).scalar_one()
    assert "handler failed on purpose" in error
    assert await touched_inbox_ids(engine) == {ids[0], ids[2]}  # the failed event left nothing behind


async def test_a_senders_later_events_wait_for_an_earlier_one_outside_the_batch(app):
    ids = await post_texts(app, [("o_same", "第一条"), ("o_other", "你好"), ("o_same", "第二条"), ("o_same", "第三条")])
    engine = app.server.app[ENGINE]
    first, other, second, third = ids
    assert (await handling(app).many([other, second, third])).waiting == [second, third]
    assert await touched_inbox_ids(engine) == {other}
    # In order, within one transaction:
    assert await handling(app).many([first, second, third]) == Batch([], [], handled=3)
    assert await statuses(engine) == {i: ("done", 1) for i in ids}
    async with engine.connect() as conn:
        order = list((await conn.execute(
            select(Touchpoint.inbox_id).where(Touchpoint.inbox_id.in_([first, second, third]))
            .order_by(Touchpoint.id))).scalars())
    assert order == [first, second, third]


async def test_a_row_another_process_holds_is_left_to_it(app, backend):
    if not backend.is_production:
        pytest.skip("row locks (SKIP LOCKED) are PostgreSQL's; SQLite serialises writers instead")
    ids = await post_texts(app, [("o_held", "你好"), ("o_free", "你好")])
    engine = app.server.app[ENGINE]
    async with engine.connect() as other_process:
        await other_process.execute(text("SELECT id FROM inbox WHERE id = :id FOR UPDATE"), {"id": ids[0]})
        assert await handling(app).many(ids) == Batch([], [], handled=1)
        await other_process.rollback()
    assert await statuses(engine) == {ids[0]: ("pending", 0), ids[1]: ("done", 1)}
    assert await count(engine, Touchpoint) == 1


async def test_an_unknown_or_finished_row_in_a_batch_is_ignored(app):
    ids = await post_texts(app, [("o_once", "你好")])
    assert await handling(app).many([*ids, 987_654]) == Batch([], [], handled=1)
    assert await handling(app).many([*ids, 987_655]) == Batch([], [])  # already done: not handled twice
    assert await count(app.server.app[ENGINE], Touchpoint) == 1


async def test_cpu_meter_tells_a_busy_process_from_an_idle_one():
    meter = CpuMeter(window_s=0.05)
    end = time.monotonic() + 0.12
    while time.monotonic() < end:
        pass
    busy = meter.utilisation()
    await asyncio.sleep(0.12)
    idle = meter.utilisation()
    assert busy > 0.3 > 0.2 > idle


async def test_a_batch_stops_when_answers_pile_up_and_keeps_what_it_did(app):
    ids = await post_texts(app, [(f"o_stop_{n}", "你好") for n in range(4)])
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) >= 2  # asked before the 2nd and 3rd events: stop before the 3rd

    outcome = await handling(app).many(ids, stop=stop)
    assert outcome == Batch(waiting=[], unstarted=ids[2:], handled=2)
    assert await statuses(app.server.app[ENGINE]) == {
        ids[0]: ("done", 1), ids[1]: ("done", 1), ids[2]: ("pending", 0), ids[3]: ("pending", 0)}


async def test_the_gauge_sees_answers_piling_up_and_lets_work_run_in_a_pause():
    gauge = IngestGauge(crowd=3, quiet_s=0.05)
    assert not gauge.piling_up()
    assert await gauge.wait_for_room(1.0)  # no traffic at all: at once

    async def traffic() -> None:
        while True:
            gauge.arrived()
            gauge.settled()
            await asyncio.sleep(0.01)

    for _ in range(3):
        gauge.arrived()  # three callbacks waiting for their commit
    flow = asyncio.create_task(traffic())
    try:
        assert gauge.piling_up()
        started = time.monotonic()
        assert not await gauge.wait_for_room(0.1)  # callbacks keep arriving and pile up: the wait runs out
        assert time.monotonic() - started >= 0.1
    finally:
        flow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flow
    for _ in range(3):
        gauge.settled()
    await asyncio.sleep(0.06)
    assert not gauge.piling_up()
    assert await gauge.wait_for_room(1.0)  # a pause in the traffic ends the flood


class AlwaysCrowded:
    """A gauge saying answers always pile up: every batch stops after its first event."""

    def piling_up(self) -> bool:
        return True

    async def wait_for_room(self, limit_s: float) -> bool:
        return True


async def test_events_a_batch_stopped_before_are_handled_by_its_worker_in_order(app):
    texts = [("o_carry", f"第{n}条") for n in range(3)] + [(f"o_carry_{n}", "你好") for n in range(4)]
    ids = await post_texts(app, texts)
    engine = app.server.app[ENGINE]
    processor = InboxProcessor(engine, app.server.app[SESSIONS], failing_router(), app.server.app[SERVICES],
                               replace(app.server.app[CONFIG].inbox, workers=1), {"oa": OA_APP_ID, "wecom": CORP_ID},
                               gauge=AlwaysCrowded())  # type: ignore[arg-type]
    processor.start()
    try:
        processor.notify(ids)
        deadline = time.monotonic() + 20
        while any(status == "pending" for status, _ in (await statuses(engine)).values()):
            assert time.monotonic() < deadline, await statuses(engine)
            await asyncio.sleep(0.05)
    finally:
        await processor.stop()
    assert await statuses(engine) == {i: ("done", 1) for i in ids}
    async with engine.connect() as conn:
        order = list((await conn.execute(select(Touchpoint.inbox_id).order_by(Touchpoint.id))).scalars())
    assert order == ids  # one event per transaction, in arrival order, none lost or repeated
    assert processor.processed == len(ids)
