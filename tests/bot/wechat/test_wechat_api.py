"""Outbound API clients against the fake WeChat / WeCom server, on both Redis backends."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import fakeredis
import pytest
import redis.asyncio as aioredis

from bot.errors import WeChatAPIError
from bot.wechat.api import OfficialAccountAPI, WeChatTransportError, WeComAPI
from bot.wechat.tokens import AccessTokenCache, TokenUnavailable
from storage.redis import create_redis
from tests.support.fakes.configs import oa_config, wecom_config
from tests.support.fakes.wechat_state import FakeWeChatState

TOKEN = "/cgi-bin/token"
USER_INFO = "/cgi-bin/user/info"
WECOM_TOKEN = "/cgi-bin/gettoken"


@pytest.fixture
def wechat_state() -> FakeWeChatState:
    state = FakeWeChatState()  # the apps of fakes/configs.py, which these clients use
    state.register_user("o-alice", unionid="u-alice", nickname="Alice")
    return state


@pytest.fixture
async def other_redis(backend, redis_client) -> AsyncIterator[aioredis.Redis]:
    """A second connection to the same Redis, as another process would have."""
    if backend.is_production:
        client = create_redis(backend.redis_url)
    else:
        server = redis_client.connection_pool.connection_kwargs["server"]
        client = fakeredis.FakeAsyncRedis(server=server)
    yield client
    await client.aclose()


@pytest.fixture
async def oa(fake, redis_client, backend) -> AsyncIterator[OfficialAccountAPI]:
    api = OfficialAccountAPI(oa_config(fake.base_url), redis_client, backend.redis_prefix)
    yield api
    await api.aclose()


# ---- token sharing -------------------------------------------------------------------------------------

async def test_concurrent_calls_on_a_cold_cache_fetch_one_token(fake, oa, redis_client):
    fake.state.set_delay(TOKEN, 0.3)  # a wide window for any second refresher to slip in
    results = await asyncio.gather(*(oa.user_info("o-alice") for _ in range(20)))
    assert all(r["unionid"] == "u-alice" for r in results)
    assert fake.state.count(TOKEN) == 1
    assert fake.state.count(USER_INFO) == 20
    ttl = await redis_client.ttl(oa.tokens.key)
    assert 7200 - 300 - 5 <= ttl <= 7200 - 300


async def test_two_processes_share_one_token(fake, oa, other_redis, backend):
    other = OfficialAccountAPI(oa_config(fake.base_url), other_redis, backend.redis_prefix)
    try:
        fake.state.set_delay(TOKEN, 0.3)
        calls = [api.user_info("o-alice") for api in (oa, other) for _ in range(10)]
        await asyncio.gather(*calls)
        # A second fetch would also have invalidated the first token: every call below would then fail.
        await asyncio.gather(oa.user_info("o-alice"), other.user_info("o-alice"))
    finally:
        await other.aclose()
    assert fake.state.count(TOKEN) == 1
    assert fake.state.count(USER_INFO) == 22
    assert {r.query["access_token"] for r in fake.state.requests_to(USER_INFO)} == {
        next(iter(fake.state.tokens))
    }


async def test_token_requests_carry_the_configured_credentials(fake, oa):
    await oa.user_info("o-alice")
    (request,) = fake.state.requests_to(TOKEN)
    assert request.query == {"grant_type": "client_credential", "appid": "wx-test-app", "secret": "oa-secret"}


async def test_waiters_read_the_copy_stored_by_the_lock_holder(redis_client, other_redis, backend):
    fetches = 0

    async def fetch() -> tuple[str, int]:
        nonlocal fetches
        fetches += 1
        return "own-token", 7200

    cache = AccessTokenCache(redis_client, backend.redis_prefix + "tok", fetch)
    holder = other_redis.lock(cache.lock_key, timeout=10)  # another process is refreshing
    assert await holder.acquire(blocking=False)
    waiting = asyncio.create_task(cache.get())
    await asyncio.sleep(0.3)
    assert not waiting.done() and fetches == 0
    await other_redis.set(cache.key, "shared-token", ex=100)
    await holder.release()
    assert await asyncio.wait_for(waiting, 5) == "shared-token"
    assert fetches == 0


async def test_a_stuck_refresher_makes_waiters_give_up(redis_client, backend):
    async def fetch() -> tuple[str, int]:
        raise AssertionError("must not fetch while another process holds the lock")

    cache = AccessTokenCache(redis_client, backend.redis_prefix + "tok", fetch, wait_timeout_s=0.3)
    assert await redis_client.lock(cache.lock_key, timeout=10).acquire(blocking=False)
    with pytest.raises(TokenUnavailable):
        await cache.get()


async def test_refresh_after_another_process_refreshed_reuses_its_token(redis_client, other_redis, backend):
    issued: list[str] = []

    async def fetch() -> tuple[str, int]:
        issued.append(f"T{len(issued) + 1}")
        return issued[-1], 7200

    key = backend.redis_prefix + "tok"
    a = AccessTokenCache(redis_client, key, fetch)
    b = AccessTokenCache(other_redis, key, fetch)
    assert await a.get() == "T1"
    assert await b.refresh(stale="T1") == "T2"
    # a saw T1 fail too; it must pick up T2 rather than refresh (and so invalidate T2) again.
    assert await a.invalidate("T1") is False
    assert await a.refresh(stale="T1") == "T2"
    assert issued == ["T1", "T2"]
    assert await a.invalidate("T2") is True
    assert await redis_client.get(key) is None


async def test_wechatpy_never_fetches_a_token_on_its_own(fake, oa):
    with pytest.raises(RuntimeError, match="injected access token"):
        await asyncio.to_thread(oa._client.user.get, "o-alice")
    assert fake.state.requests == []


# ---- bad tokens and other errors ---------------------------------------------------------------------

async def test_expired_token_is_refreshed_once_and_the_call_retried(fake, oa):
    await oa.user_info("o-alice")
    fake.state.expire_all_tokens()
    assert (await oa.user_info("o-alice"))["unionid"] == "u-alice"
    assert fake.state.count(TOKEN) == 2
    first, failed, retried = fake.state.requests_to(USER_INFO)
    assert failed.query["access_token"] == first.query["access_token"] != retried.query["access_token"]


async def test_many_calls_hitting_an_expired_token_cause_one_refresh(fake, oa):
    await oa.user_info("o-alice")
    fake.state.expire_all_tokens()
    fake.state.set_delay(TOKEN, 0.2)
    await asyncio.gather(*(oa.user_info("o-alice") for _ in range(10)))
    assert fake.state.count(TOKEN) == 2
    old, new = list(fake.state.tokens)
    used = [r.query["access_token"] for r in fake.state.requests_to(USER_INFO)[1:]]
    # Calls that read the cache after the first failure never see the old token; the others fail once.
    assert used.count(new) == 10
    assert 1 <= used.count(old) <= 10 and len(used) == used.count(old) + 10


async def test_persistent_bad_token_error_is_raised_after_one_retry(fake, oa):
    fake.state.fail_next(USER_INFO, 40001, times=10, errmsg="invalid credential")
    with pytest.raises(WeChatAPIError) as info:
        await oa.user_info("o-alice")
    assert info.value.errcode == 40001
    assert fake.state.count(USER_INFO) == 2
    assert fake.state.count(TOKEN) == 2


async def test_other_errors_are_raised_without_a_refresh(fake, oa):
    with pytest.raises(WeChatAPIError) as info:
        await oa.user_info("o-nobody")
    assert info.value.errcode == 40003
    fake.state.set_rate_limit(USER_INFO, limit=1)
    await oa.user_info("o-alice")
    with pytest.raises(WeChatAPIError) as info:
        await oa.user_info("o-alice")
    assert info.value.errcode == 45009
    assert fake.state.count(TOKEN) == 1


async def test_a_wrong_secret_fails_the_token_fetch_without_looping(fake, redis_client, backend):
    api = OfficialAccountAPI(oa_config(fake.base_url, app_secret="wrong"), redis_client, backend.redis_prefix)
    try:
        with pytest.raises(WeChatAPIError) as info:
            await api.user_info("o-alice")
    finally:
        await api.aclose()
    assert info.value.errcode == 40125
    assert fake.state.count(TOKEN) == 1
    assert fake.state.count(USER_INFO) == 0


async def test_an_unreachable_server_raises_a_transport_error(redis_client, backend):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the call: nothing listens there
    api = OfficialAccountAPI(oa_config(f"http://127.0.0.1:{port}"), redis_client, backend.redis_prefix,
                             timeout_s=2)
    try:
        with pytest.raises(WeChatTransportError):
            await api.user_info("o-alice")
    finally:
        await api.aclose()


# ---- Official Account sends ------------------------------------------------------------------------------

async def test_oa_sends_reach_the_api(fake, oa):
    await oa.send_custom_text("o-alice", "你好")
    await oa.send_template("o-alice", "TPL-1", {"first": {"value": "hi"}}, url="https://example.com/x")
    await oa.create_menu({"button": [{"type": "click", "name": "联系我们", "key": "CONTACT"}]})
    custom, template, menu = fake.state.sent
    assert custom["touser"] == "o-alice" and custom["text"] == {"content": "你好"}
    assert template["template_id"] == "TPL-1" and template["url"] == "https://example.com/x"
    assert menu["button"][0]["key"] == "CONTACT"
    assert fake.state.count(TOKEN) == 1


async def test_customer_service_window_error_surfaces(fake, oa):
    fake.state.register_user("o-old", last_interaction=fake.state.clock() - 49 * 3600)
    with pytest.raises(WeChatAPIError) as info:
        await oa.send_custom_text("o-old", "too late")
    assert info.value.errcode == 45015


# ---- WeCom --------------------------------------------------------------------------------------------------

async def test_external_contact_has_unionid_and_uses_the_contact_secret(fake, wecom):
    fake.state.register_external_contact("wm-bob", "Bob", unionid="u-bob", follow_user=["sdr-1"])
    result = await wecom.get_external_contact("wm-bob")
    assert result["external_contact"]["unionid"] == "u-bob"
    assert result["external_contact"]["name"] == "Bob"
    (token_request,) = fake.state.requests_to(WECOM_TOKEN)
    assert token_request.query == {"corpid": "ww-test-corp", "corpsecret": "contact-secret"}


async def test_welcome_code_works_once(fake, wecom):
    code = fake.state.issue_welcome_code()
    await wecom.send_welcome_msg(code, "欢迎!")
    with pytest.raises(WeChatAPIError) as info:
        await wecom.send_welcome_msg(code, "欢迎!")
    assert info.value.errcode == 41051
    assert [m["text"] for m in fake.state.sent] == [{"content": "欢迎!"}]


async def test_expired_welcome_code_is_an_error(fake, wecom):
    code = fake.state.issue_welcome_code()
    now = fake.state.clock()
    fake.state.clock = lambda: now + 21
    with pytest.raises(WeChatAPIError):
        await wecom.send_welcome_msg(code, "late")
    assert fake.state.sent == []


async def test_app_text_uses_the_app_secret_and_agent(fake, wecom):
    fake.state.register_employee("sdr-1")
    await wecom.send_app_text("sdr-1", "New MQL")
    (sent,) = fake.state.sent
    assert sent["touser"] == "sdr-1" and sent["agentid"] == 1000002
    (token_request,) = fake.state.requests_to(WECOM_TOKEN)
    assert token_request.query["corpsecret"] == "app-secret"


async def test_one_secret_means_one_shared_token(fake, redis_client, backend):
    fake.state.wecom_secrets = {"app-secret": frozenset({"app", "contact"})}
    fake.state.register_employee("sdr-1")
    fake.state.register_external_contact("wm-bob", "Bob", unionid="u-bob")
    api = WeComAPI(wecom_config(fake.base_url, contact_secret=""), redis_client, backend.redis_prefix)
    try:
        await api.send_app_text("sdr-1", "hi")
        await api.get_external_contact("wm-bob")
        await api.send_app_text("sdr-1", "hi again")
    finally:
        await api.aclose()
    assert fake.state.count(WECOM_TOKEN) == 1
