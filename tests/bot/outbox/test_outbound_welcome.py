"""WeCom welcome messages through the real /wecom/callback endpoint, in live mode against the fake API:
sent once for the contact's State, within seconds of the add event, never after the code's 20 s."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from bot.config.capture import WelcomeConfig
from bot.ingress.simulate import wecom_contact_event
from bot.keys import ENGINE
from bot.outbox.enqueue import enqueue
from bot.outbox.methods import ApiClients
from bot.outbox.sender import OutboxSender
from bot.wechat.api import WeComAPI
from storage.db import session_factory
from storage.models import OutboxMessage
from tests.support.calls import AUTH, send_wecom
from tests.support.fakes.configs import wecom_config
from tests.support.fakes.wechat_state import FakeWeChatState
from tests.support.forms import fake_state
from tests.support.helpers import CORP_ID, wait_processed

WELCOME = "/cgi-bin/externalcontact/send_welcome_msg"
TEXTS = {"sales_card": "您好，我是陈顾问，展会资料稍后发您。"}


@pytest.fixture
def wechat_state() -> FakeWeChatState:
    state = fake_state()
    state.register_external_contact("wm_sun", "孙丽")
    return state


@pytest.fixture
async def client(app_client, fake):
    return await app_client(api_base_url=fake.base_url, welcome={"wecom_by_state": TEXTS})


async def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def outbox(client, status: str = "") -> list[dict]:
    resp = await client.get(f"/api/outbox?status={status}", headers=AUTH)
    assert resp.status == 200
    return (await resp.json())["items"]


async def test_the_welcome_for_the_state_is_sent_once_within_seconds(client, fake):
    code = fake.state.issue_welcome_code()
    xml = wecom_contact_event(CORP_ID, "add_external_contact", "sales_chen", "wm_sun", state="sales_card",
                              welcome_code=code)
    started = time.monotonic()
    for _ in range(3):  # WeCom's retries of the same callback
        assert (await send_wecom(client, xml)).status == 200
    assert await wait_for(lambda: fake.state.count(WELCOME) >= 1, timeout=2.0)
    assert time.monotonic() - started < 2.0
    await asyncio.sleep(0.5)  # room for a duplicate, if there were one
    (request,) = fake.state.requests_to(WELCOME)
    assert request.json == {"welcome_code": code, "text": {"content": TEXTS["sales_card"]}}
    await wait_processed(client.server.app[ENGINE], expected=1)
    (row,) = await outbox(client)
    assert (row["method"], row["status"], row["attempts"]) == ("wecom.welcome", "sent", 1)
    assert row["lead_id"] is not None and row["payload"]["welcome_code"] == code


async def test_a_state_without_its_own_text_gets_the_default(client, fake):
    code = fake.state.issue_welcome_code()
    await send_wecom(client, wecom_contact_event(CORP_ID, "add_external_contact", "sales_chen", "wm_sun",
                                                 state="unknown_card", welcome_code=code))
    assert await wait_for(lambda: fake.state.count(WELCOME) == 1, timeout=2.0)
    (request,) = fake.state.requests_to(WELCOME)
    assert request.json["text"]["content"] == WelcomeConfig().wecom_default


async def test_an_add_event_older_than_20_seconds_is_not_welcomed(client, fake):
    code = fake.state.issue_welcome_code()
    xml = wecom_contact_event(CORP_ID, "add_external_contact", "sales_chen", "wm_sun", state="sales_card",
                              welcome_code=code, at=int(time.time()) - 30)
    await send_wecom(client, xml)
    await wait_processed(client.server.app[ENGINE], expected=1)
    (row,) = await outbox(client)
    for _ in range(100):  # the sender decides right after the event's commit
        if row["status"] != "pending":
            break
        await asyncio.sleep(0.05)
        (row,) = await outbox(client)
    assert row["status"] == "failed" and "too late" in row["last_error"]
    assert fake.state.requests_to(WELCOME) == []


async def test_an_already_used_code_counts_as_sent(engine, redis_client, backend, fake):
    code = fake.state.issue_welcome_code()
    fake.state.welcome_codes[code].used = True  # an earlier attempt got through, then we crashed
    wecom = WeComAPI(wecom_config(fake.base_url, corp_id=CORP_ID), redis_client, backend.redis_prefix)
    try:
        async with session_factory(engine)() as session, session.begin():
            await enqueue(session, target="wecom", method="wecom.welcome", payload={"welcome_code": code, "text": "hi"},
                          idempotency_key="welcome:1", sandbox=False)
        assert await OutboxSender(engine, ApiClients(wecom=wecom)).run_once() == 1
    finally:
        await wecom.aclose()
    async with session_factory(engine)() as session:
        (row,) = (await session.execute(select(OutboxMessage))).scalars()
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.response["errcode"] == 41051 and "already sent" in row.response["note"]


async def test_a_commit_that_enqueued_wakes_the_sender_at_once(engine, redis_client, backend, fake):
    wecom = WeComAPI(wecom_config(fake.base_url, corp_id=CORP_ID), redis_client, backend.redis_prefix)
    sender = OutboxSender(engine, ApiClients(wecom=wecom), poll_interval_s=30)
    task = asyncio.create_task(sender.run())
    try:
        await asyncio.sleep(0.2)  # the first pass found nothing: the loop now sleeps for up to 30 s
        sessions = session_factory(engine)
        with pytest.raises(RuntimeError):  # a rolled-back enqueue leaves nothing to send
            async with sessions() as session, session.begin():
                await enqueue(session, target="wecom", method="wecom.welcome",
                              payload={"welcome_code": "nope", "text": "hi"}, idempotency_key="w0", sandbox=False)
                raise RuntimeError("handler failed")
        code = fake.state.issue_welcome_code()
        async with sessions() as session, session.begin():
            await enqueue(session, target="wecom", method="wecom.welcome", payload={"welcome_code": code, "text": "hi"},
                          idempotency_key="w1", sandbox=False)
        assert await wait_for(lambda: fake.state.count(WELCOME) == 1, timeout=2.0)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wecom.aclose()
    assert [r.json["welcome_code"] for r in fake.state.requests_to(WELCOME)] == [code]
