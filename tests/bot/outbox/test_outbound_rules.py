"""What the platform accepts: the 48-hour window and its template fallback, consent, per-member WeCom limits
and quota back-off, on both backends, against the fake WeChat / WeCom API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config.outbound import OutboundConfig
from bot.outbox.enqueue import enqueue
from bot.outbox.methods import ApiClients
from bot.outbox.rate_limit import MemberRateLimiter
from bot.outbox.sender import OutboxSender
from bot.wechat.api import OfficialAccountAPI, WeComAPI
from storage.db import create_engine, session_factory
from storage.models import Lead, OutboxMessage
from storage.settings import DatabaseConfig
from tests.support.clock import Clock
from tests.support.fakes.configs import oa_config, wecom_config
from tests.support.fakes.wechat_server import FakeWeChatServer
from tests.support.fakes.wechat_state import FakeWeChatState

CUSTOM_SEND = "/cgi-bin/message/custom/send"
TEMPLATE_SEND = "/cgi-bin/message/template/send"
APP_SEND = "/cgi-bin/message/send"
FALLBACK = OutboundConfig(fallback_template_id="TPL-FALLBACK", fallback_template_url="https://example.com/n")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def wechat_state() -> FakeWeChatState:
    state = FakeWeChatState()  # the apps of fakes/configs.py, which these clients use
    state.register_user("o-alice", unionid="u-alice")
    for userid in ("sdr-1", "sdr-2"):
        state.register_employee(userid)
    return state


@pytest.fixture
async def apis(fake, redis_client, backend) -> AsyncIterator[ApiClients]:
    oa = OfficialAccountAPI(oa_config(fake.base_url), redis_client, backend.redis_prefix)
    wecom = WeComAPI(wecom_config(fake.base_url), redis_client, backend.redis_prefix)
    yield ApiClients(oa=oa, wecom=wecom)
    await oa.aclose()
    await wecom.aclose()


def make_sender(engine, apis, clock, redis_client, backend, outbound: OutboundConfig | None = None,
                **kw: Any) -> OutboxSender:
    return OutboxSender(engine, apis, clock=clock, jitter=0.0, max_attempts=3, outbound=outbound,
                        redis=redis_client, key_prefix=backend.redis_prefix, **kw)


async def make_lead(engine: AsyncEngine, *, consent: str = "granted", last_oa: datetime | None = None) -> int:
    async with session_factory(engine)() as session, session.begin():
        lead = Lead(display_name="Alice", stage="lead", consent=consent, profile={}, oa_last_interaction_at=last_oa)
        session.add(lead)
        await session.flush()
        return lead.id


async def set_consent(engine: AsyncEngine, lead_id: int, consent: str) -> None:
    async with session_factory(engine)() as session, session.begin():
        (await session.get_one(Lead, lead_id)).consent = consent


async def add(engine: AsyncEngine, key: str, method: str = "oa.custom_text", *, lead_id: int | None = None,
              sandbox: bool = False, outbound: OutboundConfig | None = None, **payload: Any) -> int | None:
    payload = payload or {"openid": "o-alice", "content": f"hello {key}"}
    async with session_factory(engine)() as session, session.begin():
        return await enqueue(session, target=method.split(".", 1)[0], method=method, payload=payload,
                             idempotency_key=key, sandbox=sandbox, lead_id=lead_id, outbound=outbound)


async def rows(engine: AsyncEngine) -> list[OutboxMessage]:
    async with session_factory(engine)() as session:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


def app_texts(fake: FakeWeChatServer, userid: str) -> list[str]:
    return [m["text"]["content"] for m in fake.state.sent if m["kind"] == "wecom.app" and m["touser"] == userid]


# ---- the 48-hour customer-service window ---------------------------------------------------------------

async def test_a_lead_silent_for_49_hours_gets_no_custom_message(engine, fake, apis, clock, redis_client, backend):
    lead_id = await make_lead(engine, last_oa=clock() - timedelta(hours=49))
    await add(engine, "k1", lead_id=lead_id)
    assert await make_sender(engine, apis, clock, redis_client, backend).run_once() == 1
    (row,) = await rows(engine)
    assert (row.status, row.attempts, row.sent_at) == ("skipped", 0, None)
    assert "window closed" in row.last_error and "no template fallback configured" in row.last_error
    assert fake.state.requests_to(CUSTOM_SEND) == [] and fake.state.sent == []


async def test_a_lead_never_seen_in_the_oa_is_outside_the_window(engine, fake, apis, clock, redis_client, backend):
    lead_id = await make_lead(engine, last_oa=None)
    await add(engine, "k1", lead_id=lead_id)
    await make_sender(engine, apis, clock, redis_client, backend).run_once()
    assert [r.status for r in await rows(engine)] == ["skipped"]
    assert fake.state.count(CUSTOM_SEND) == 0


async def test_a_closed_window_falls_back_to_the_configured_template(engine, fake, apis, clock, redis_client,
                                                                   backend):
    lead_id = await make_lead(engine, last_oa=clock() - timedelta(hours=49))
    await add(engine, "reply-7", lead_id=lead_id, openid="o-alice", content="您的试用账号已开通")
    assert await make_sender(engine, apis, clock, redis_client, backend, FALLBACK).run_once() == 2
    original, template = await rows(engine)
    assert (original.status, original.attempts) == ("fallback", 0)
    assert "TPL-FALLBACK" in original.last_error
    assert (template.method, template.status, template.lead_id) == ("oa.template", "sent", lead_id)
    assert template.idempotency_key == "reply-7:fallback"
    assert fake.state.count(CUSTOM_SEND) == 0
    (sent,) = fake.state.sent
    assert (sent["kind"], sent["touser"], sent["template_id"], sent["url"]) == (
        "oa.template", "o-alice", "TPL-FALLBACK", "https://example.com/n")
    assert sent["data"]["first"]["value"] == "您的试用账号已开通"
    assert sent["data"]["keyword1"]["value"] == "您的试用账号已开通"


async def test_a_lead_active_an_hour_ago_is_sent(engine, fake, apis, clock, redis_client, backend):
    lead_id = await make_lead(engine, last_oa=clock() - timedelta(hours=1))
    await add(engine, "k1", lead_id=lead_id)
    assert await make_sender(engine, apis, clock, redis_client, backend, FALLBACK).run_once() == 1
    (row,) = await rows(engine)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert [m["kind"] for m in fake.state.sent] == ["oa.custom"]


@pytest.mark.parametrize("outbound", [FALLBACK, OutboundConfig()], ids=["fallback", "no-fallback"])
async def test_45015_from_wechat_takes_the_fallback_path_without_retry(engine, fake, apis, clock, redis_client,
                                                                       backend, outbound):
    # Our record says the user was active an hour ago, but WeChat knows better (the fake enforces 48 h).
    fake.state.users["o-alice"].last_interaction = time.time() - 49 * 3600
    lead_id = await make_lead(engine, last_oa=clock() - timedelta(hours=1))
    await add(engine, "k1", lead_id=lead_id)
    sender = make_sender(engine, apis, clock, redis_client, backend, outbound)
    await sender.run_once()
    clock.advance(3600)
    await sender.run_once()
    original, *others = await rows(engine)
    assert original.attempts == 1 and original.response["errcode"] == 45015
    assert "45015" in original.last_error
    assert fake.state.count(CUSTOM_SEND) == 1  # no retry of a closed window
    if outbound.fallback_template_id:
        assert original.status == "fallback"
        assert [(r.method, r.status) for r in others] == [("oa.template", "sent")]
        assert [m["kind"] for m in fake.state.sent] == ["oa.template"]
    else:
        assert original.status == "skipped" and others == []
        assert fake.state.sent == []


async def test_marketing_never_falls_back_to_a_template(engine, fake, apis, clock, redis_client, backend):
    lead_id = await make_lead(engine, last_oa=clock() - timedelta(hours=49))
    await add(engine, "promo", lead_id=lead_id, openid="o-alice", content="新品发布会", marketing=True)
    await make_sender(engine, apis, clock, redis_client, backend, FALLBACK).run_once()
    (row,) = await rows(engine)
    assert row.status == "skipped" and "for marketing" in row.last_error
    assert fake.state.requests_to(TEMPLATE_SEND) == [] and fake.state.requests_to(CUSTOM_SEND) == []


# ---- consent ---------------------------------------------------------------------------------------------

async def test_marketing_to_a_lead_who_revoked_consent_is_suppressed(engine, fake, apis, clock, redis_client,
                                                                     backend):
    recent = clock() - timedelta(hours=1)
    revoked = await make_lead(engine, consent="revoked", last_oa=recent)
    later = await make_lead(engine, consent="granted", last_oa=recent)
    await add(engine, "promo-1", lead_id=revoked, openid="o-alice", content="限时优惠", marketing=True)
    await add(engine, "promo-2", lead_id=later, openid="o-alice", content="限时优惠", marketing=True)
    await add(engine, "reply", lead_id=revoked, openid="o-alice", content="您问的价格是…")  # a service reply
    await set_consent(engine, later, "revoked")  # after the enqueue: checked at send time
    await make_sender(engine, apis, clock, redis_client, backend).run_once()
    by_key = {r.idempotency_key: r for r in await rows(engine)}
    for key in ("promo-1", "promo-2"):
        assert (by_key[key].status, by_key[key].attempts) == ("suppressed", 0)
        assert "consent revoked" in by_key[key].last_error
    assert by_key["reply"].status == "sent"
    assert [m["text"]["content"] for m in fake.state.sent] == ["您问的价格是…"]


async def test_a_marketing_message_needs_a_lead(engine):
    with pytest.raises(ValueError, match="lead_id"):
        await add(engine, "promo", openid="o-alice", content="限时优惠", marketing=True)
    with pytest.raises(ValueError, match="marketing"):
        await add(engine, "promo", openid="o-alice", content="x", marketing="yes")


async def test_sandbox_shows_what_the_rules_would_do(engine, fake, apis, clock, redis_client, backend):
    now = datetime.now(UTC)
    revoked = await make_lead(engine, consent="revoked", last_oa=now - timedelta(hours=1))
    silent = await make_lead(engine, last_oa=now - timedelta(hours=49))
    active = await make_lead(engine, last_oa=now - timedelta(hours=1))
    await add(engine, "promo", lead_id=revoked, sandbox=True, openid="o-alice", content="促销", marketing=True)
    await add(engine, "late", lead_id=silent, sandbox=True, outbound=FALLBACK)
    await add(engine, "late-plain", lead_id=silent, sandbox=True)
    await add(engine, "ok", lead_id=active, sandbox=True)
    assert await make_sender(engine, apis, clock, redis_client, backend).run_once() == 0
    got = {r.idempotency_key: (r.status, r.method) for r in await rows(engine)}
    assert got == {"promo": ("suppressed", "oa.custom_text"), "late": ("fallback", "oa.custom_text"),
                   "late:fallback": ("sandboxed", "oa.template"), "late-plain": ("skipped", "oa.custom_text"),
                   "ok": ("sandboxed", "oa.custom_text")}
    assert fake.state.requests == []


async def test_a_merged_lead_is_judged_by_its_survivor(engine, fake, apis, clock, redis_client, backend):
    survivor = await make_lead(engine, consent="granted", last_oa=None)
    absorbed = await make_lead(engine, consent="granted", last_oa=clock() - timedelta(hours=2))
    async with session_factory(engine)() as session, session.begin():
        (await session.get_one(Lead, absorbed)).merged_into_id = survivor
    await add(engine, "reply", lead_id=absorbed)  # the absorbed lead's OA action keeps the window open
    await make_sender(engine, apis, clock, redis_client, backend).run_once()
    assert [r.status for r in await rows(engine)] == ["sent"]


# ---- WeCom app messages: per-member limits -------------------------------------------------------------

async def test_a_burst_to_one_member_is_spread_over_minutes_in_order(engine, fake, apis, clock, redis_client,
                                                                     backend):
    outbound = OutboundConfig(wecom_member_per_minute=3, wecom_member_per_hour=1000)
    sender = make_sender(engine, apis, clock, redis_client, backend, outbound)
    for i in range(10):
        await add(engine, f"a{i}", "wecom.app_text", userid="sdr-1", content=f"MQL {i}")
    for i in range(2):
        await add(engine, f"b{i}", "wecom.app_text", userid="sdr-2", content=f"other {i}")
    await sender.run_once()
    assert app_texts(fake, "sdr-1") == ["MQL 0", "MQL 1", "MQL 2"]
    assert app_texts(fake, "sdr-2") == ["other 0", "other 1"]  # not held up by sdr-1's queue
    waiting = [r for r in await rows(engine) if r.status == "pending"]
    assert len(waiting) == 7
    assert all(r.attempts == 0 and r.next_attempt_at == clock() + timedelta(seconds=60) for r in waiting)
    assert all("rate limit" in r.last_error for r in waiting)

    clock.advance(30)
    await sender.run_once()
    assert len(app_texts(fake, "sdr-1")) == 3  # the window has not moved on yet
    for expected in (6, 9, 10, 10):
        clock.advance(30)
        await sender.run_once()
        clock.advance(30)
        await sender.run_once()
        assert len(app_texts(fake, "sdr-1")) == expected
    assert app_texts(fake, "sdr-1") == [f"MQL {i}" for i in range(10)]
    assert {(r.status, r.attempts) for r in await rows(engine)} == {("sent", 1)}  # waits were not attempts


async def test_the_hourly_cap_per_member(engine, fake, apis, clock, redis_client, backend):
    outbound = OutboundConfig(wecom_member_per_minute=3, wecom_member_per_hour=5)
    sender = make_sender(engine, apis, clock, redis_client, backend, outbound)
    start = clock()
    for i in range(8):
        await add(engine, f"a{i}", "wecom.app_text", userid="sdr-1", content=f"MQL {i}")
    await sender.run_once()
    clock.advance(60)
    await sender.run_once()
    assert len(app_texts(fake, "sdr-1")) == 5
    waiting = [r for r in await rows(engine) if r.status == "pending"]
    assert {r.next_attempt_at for r in waiting} == {start + timedelta(seconds=3600)}
    clock.advance(1800)
    await sender.run_once()
    assert len(app_texts(fake, "sdr-1")) == 5
    clock.now = start + timedelta(seconds=3600)
    await sender.run_once()
    assert app_texts(fake, "sdr-1") == [f"MQL {i}" for i in range(8)]


async def test_the_limit_is_shared_by_every_sender_process(engine, fake, apis, clock, redis_client, backend):
    outbound = OutboundConfig(wecom_member_per_minute=3, wecom_member_per_hour=1000)
    for i in range(6):
        await add(engine, f"a{i}", "wecom.app_text", userid="sdr-1", content=f"MQL {i}")
    other = create_engine(DatabaseConfig(url=backend.database_url)) if backend.is_production else engine
    try:
        for eng in (engine, other):
            await make_sender(eng, apis, clock, redis_client, backend, outbound).run_once()
    finally:
        if other is not engine:
            await other.dispose()
    assert len(app_texts(fake, "sdr-1")) == 3


async def test_a_message_to_several_members_waits_for_a_slot_with_each(redis_client, backend):
    limiter = MemberRateLimiter(redis_client, backend.redis_prefix + "rl:", [(2, 60.0)])
    now = datetime.now(UTC)
    assert await limiter.acquire(["a"], now) is None
    assert await limiter.acquire(["a", "b"], now + timedelta(seconds=10)) is None
    assert await limiter.acquire(["b", "a"], now + timedelta(seconds=20)) == now + timedelta(seconds=60)
    assert await limiter.acquire(["b"], now + timedelta(seconds=20)) is None  # the refusal took nothing
    assert await limiter.acquire(["a"], now + timedelta(seconds=60)) is None  # the first grant has left


async def test_a_quota_error_still_backs_off(engine, fake, apis, clock, redis_client, backend):
    sender = make_sender(engine, apis, clock, redis_client, backend)
    await add(engine, "app", "wecom.app_text", userid="sdr-1", content="New MQL")
    fake.state.fail_next(APP_SEND, 45009, errmsg="api freq out of limit")
    await sender.run_once()
    (row,) = await rows(engine)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at >= clock() + timedelta(seconds=60)
    clock.advance(30)
    assert await sender.run_once() == 0
    clock.advance(31)
    await sender.run_once()
    (row,) = await rows(engine)
    assert (row.status, row.attempts) == ("sent", 2)
    assert fake.state.count(APP_SEND) == 2
