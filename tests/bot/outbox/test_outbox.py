"""The outbox: sandbox recording, idempotent enqueue, and the live sender with retries, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.outbox.enqueue import enqueue
from bot.outbox.methods import ApiClients
from bot.outbox.sender import OutboxSender
from bot.wechat.api import OfficialAccountAPI, WeComAPI
from storage.db import create_engine, session_factory
from storage.models import OutboxMessage
from storage.settings import DatabaseConfig
from tests.support.clock import Clock
from tests.support.fakes.configs import oa_config, wecom_config
from tests.support.fakes.wechat_state import FakeWeChatState

CUSTOM_SEND = "/cgi-bin/message/custom/send"


@pytest.fixture
def wechat_state() -> FakeWeChatState:
    state = FakeWeChatState()  # the apps of fakes/configs.py, which these clients use
    state.register_user("o-alice", unionid="u-alice")
    state.register_employee("sdr-1")
    return state


@pytest.fixture
async def apis(fake, redis_client, backend) -> AsyncIterator[ApiClients]:
    oa = OfficialAccountAPI(oa_config(fake.base_url), redis_client, backend.redis_prefix)
    wecom = WeComAPI(wecom_config(fake.base_url), redis_client, backend.redis_prefix)
    yield ApiClients(oa=oa, wecom=wecom)
    await oa.aclose()
    await wecom.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sender(engine, apis, clock) -> OutboxSender:
    return OutboxSender(engine, apis, clock=clock, jitter=0.0, max_attempts=3)


async def add(engine: AsyncEngine, key: str, method: str = "oa.custom_text", *, sandbox: bool = False,
              **payload: object) -> int | None:
    payload = payload or {"openid": "o-alice", "content": f"hello {key}"}
    target = method.split(".", 1)[0]
    async with session_factory(engine)() as session, session.begin():
        return await enqueue(session, target=target, method=method, payload=payload,
                             idempotency_key=key, sandbox=sandbox)


async def rows(engine: AsyncEngine) -> list[OutboxMessage]:
    async with session_factory(engine)() as session:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


# ---- enqueue ---------------------------------------------------------------------------------------------

async def test_sandbox_records_the_call_and_sends_nothing(engine, fake, sender):
    row_id = await add(engine, "k1", sandbox=True)
    assert row_id is not None
    assert await sender.run_once() == 0
    (row,) = await rows(engine)
    assert (row.id, row.status, row.attempts, row.sent_at) == (row_id, "sandboxed", 0, None)
    assert row.payload == {"openid": "o-alice", "content": "hello k1"}
    assert fake.state.requests == []


async def test_a_duplicate_idempotency_key_inserts_nothing(engine):
    first = await add(engine, "same-key")
    assert first is not None
    assert await add(engine, "same-key") is None
    assert await add(engine, "same-key", sandbox=True) is None
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(OutboxMessage))).scalar() == 1


async def test_duplicates_inside_one_transaction_are_caught_too(engine):
    async with session_factory(engine)() as session, session.begin():
        args = {"target": "oa", "method": "oa.custom_text", "payload": {"openid": "o", "content": "c"},
                "idempotency_key": "k", "sandbox": False}
        assert await enqueue(session, **args) is not None
        assert await enqueue(session, **args) is None


@pytest.mark.parametrize(("target", "method", "payload"), [
    ("oa", "oa.unknown", {}),
    ("wecom", "oa.custom_text", {"openid": "o", "content": "c"}),
    ("oa", "oa.custom_text", {"openid": "o"}),
])
async def test_enqueue_refuses_malformed_calls(engine, target, method, payload):
    async with session_factory(engine)() as session, session.begin():
        with pytest.raises(ValueError):
            await enqueue(session, target=target, method=method, payload=payload,
                          idempotency_key="k", sandbox=False)


# ---- live sending ------------------------------------------------------------------------------------------

async def test_pending_rows_of_every_method_are_sent(engine, fake, sender):
    code = fake.state.issue_welcome_code()
    await add(engine, "custom")
    await add(engine, "template", "oa.template", openid="o-alice", template_id="TPL-1",
              data={"first": {"value": "hi"}}, url="https://example.com/")
    await add(engine, "welcome", "wecom.welcome", welcome_code=code, text="欢迎")
    await add(engine, "app", "wecom.app_text", userid="sdr-1", content="New MQL")
    assert await sender.run_once() == 4
    assert await sender.run_once() == 0
    for row in await rows(engine):
        assert (row.status, row.attempts, row.last_error) == ("sent", 1, None), row.method
        assert row.sent_at is not None and row.response["errcode"] == 0
    assert sorted(m["kind"] for m in fake.state.sent) == [
        "oa.custom", "oa.template", "wecom.app", "wecom.welcome"]


async def test_a_quota_error_keeps_the_row_pending_with_a_later_attempt(engine, fake, sender, clock):
    await add(engine, "k1")
    fake.state.fail_next(CUSTOM_SEND, 45009, errmsg="reach max api daily quota limit")
    assert await sender.run_once() == 1
    (row,) = await rows(engine)
    assert (row.status, row.attempts, row.sent_at) == ("pending", 1, None)
    assert "45009" in row.last_error
    assert row.response["errcode"] == 45009
    assert row.next_attempt_at >= clock() + timedelta(seconds=60)  # the quota back-off floor

    assert await sender.run_once() == 0  # not due yet: WeChat is left alone
    assert fake.state.count(CUSTOM_SEND) == 1
    clock.advance(61)
    assert await sender.run_once() == 1
    (row,) = await rows(engine)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    assert fake.state.count(CUSTOM_SEND) == 2


async def test_backoff_grows_and_the_row_fails_after_max_attempts(engine, fake, sender, clock):
    await add(engine, "k1")
    fake.state.fail_next(CUSTOM_SEND, -1, times=5, errmsg="system busy")
    delays = []
    for _ in range(3):
        assert await sender.run_once() == 1
        (row,) = await rows(engine)
        if row.status == "pending":
            delays.append((row.next_attempt_at - clock()).total_seconds())
        clock.advance(3600)
    assert (row.status, row.attempts) == ("failed", 3)
    assert "-1" in row.last_error
    assert delays == pytest.approx([5.0, 10.0])
    assert await sender.run_once() == 0
    assert fake.state.count(CUSTOM_SEND) == 3


async def test_an_error_no_retry_can_fix_fails_at_once(engine, fake, sender):
    await add(engine, "k1", openid="o-stranger", content="hi")
    assert await sender.run_once() == 1
    (row,) = await rows(engine)
    assert (row.status, row.attempts, row.response["errcode"]) == ("failed", 1, 40003)


async def test_a_welcome_message_too_late_to_send_is_not_sent(engine, fake, sender, clock):
    await add(engine, "w", "wecom.welcome", welcome_code=fake.state.issue_welcome_code(), text="hi")
    clock.advance(25)
    assert await sender.run_once() == 1
    (row,) = await rows(engine)
    assert row.status == "failed" and "expired" in row.last_error
    assert fake.state.requests_to("/cgi-bin/externalcontact/send_welcome_msg") == []


async def test_a_target_without_client_is_left_pending(engine, fake, apis, clock):
    await add(engine, "app", "wecom.app_text", userid="sdr-1", content="hi")
    oa_only = OutboxSender(engine, ApiClients(oa=apis.oa), clock=clock)
    assert await oa_only.run_once() == 0
    assert [r.status for r in await rows(engine)] == ["pending"]


async def test_concurrent_senders_send_each_row_once(engine, fake, apis, backend, clock):
    for i in range(20):
        await add(engine, f"k{i}")
    fake.state.set_delay(CUSTOM_SEND, 0.05)
    if backend.is_production:
        # Two processes: separate engines, rows claimed with FOR UPDATE SKIP LOCKED.
        other_engine = create_engine(DatabaseConfig(url=backend.database_url))
        senders = [OutboxSender(e, apis, clock=clock, concurrency=4) for e in (engine, other_engine)]
    else:
        other_engine = None
        senders = [OutboxSender(engine, apis, clock=clock, concurrency=4)]
    try:
        done = await asyncio.gather(*(s.run_once() for s in senders))
    finally:
        if other_engine is not None:
            await other_engine.dispose()
    assert sum(done) == 20
    assert all(r.status == "sent" and r.attempts == 1 for r in await rows(engine))
    contents = sorted(m["text"]["content"] for m in fake.state.sent)
    assert contents == sorted(f"hello k{i}" for i in range(20))


async def test_run_loop_sends_when_woken(engine, fake, apis, clock):
    sender = OutboxSender(engine, apis, clock=clock, poll_interval_s=30)
    task = asyncio.create_task(sender.run())
    try:
        await asyncio.sleep(0.1)  # the first pass found nothing; the loop now sleeps for 30 s
        await add(engine, "k1")
        sender.wake()
        for _ in range(100):
            if fake.state.sent:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(fake.state.sent) == 1
