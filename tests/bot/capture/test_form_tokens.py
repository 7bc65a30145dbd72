"""bot/capture/form_tokens.py and bot/wechat/oauth.py: signed cookies, CSRF tokens, OAuth state, code claims."""

from __future__ import annotations

import time

from bot.capture.form_tokens import (
    CSRF_TTL_S,
    STATE_TTL_S,
    FormSession,
    check_csrf,
    check_oauth_state,
    csrf_token,
    decode_session,
    encode_session,
    oauth_state,
)
from bot.wechat.oauth import claim_code, oauth_base_url

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def test_the_session_cookie_round_trips_and_refuses_tampering():
    session = FormSession("sid1", "o_abc", "u_abc")
    value = encode_session(KEY, session)
    assert decode_session(KEY, value) == session
    assert decode_session(OTHER_KEY, value) is None
    payload, mac = value.split(".")
    forged = encode_session(KEY, FormSession("sid1", "o_victim")).split(".")[0] + "." + mac
    assert decode_session(KEY, forged) is None
    for junk in (None, "", "nodot", "a.b", "x" * 2000, payload + ".", "." + mac):
        assert decode_session(KEY, junk) is None


def test_csrf_tokens_are_bound_to_form_session_key_and_time():
    now = time.time()
    token = csrf_token(KEY, "demo", "sid1", now)
    assert check_csrf(KEY, "demo", "sid1", token, now)
    assert csrf_token(KEY, "demo", "sid1", now) != token  # one per rendered page
    assert not check_csrf(KEY, "other", "sid1", token, now)
    assert not check_csrf(KEY, "demo", "sid2", token, now)
    assert not check_csrf(OTHER_KEY, "demo", "sid1", token, now)
    assert not check_csrf(KEY, "demo", "sid1", token, now + CSRF_TTL_S + 1)
    assert check_csrf(KEY, "demo", "sid1", token, now + CSRF_TTL_S - 1)
    assert not check_csrf(KEY, "demo", "sid1", None, now)


def test_oauth_state_is_short_bound_and_not_a_csrf_token():
    now = time.time()
    state = oauth_state(KEY, "demo", "sid1", now)
    assert len(state) < 128  # WeChat's limit
    assert check_oauth_state(KEY, "demo", "sid1", state, now)
    assert not check_oauth_state(KEY, "demo", "sid2", state, now)
    assert not check_oauth_state(KEY, "demo", "sid1", state, now + STATE_TTL_S + 1)
    # Different purposes never validate each other's values.
    assert not check_csrf(KEY, "demo", "sid1", "n~" + state, now)


def test_the_authorize_host_is_open_weixin_in_production_and_the_api_base_elsewhere():
    assert oauth_base_url("https://api.weixin.qq.com") == "https://open.weixin.qq.com"
    assert oauth_base_url("https://api.weixin.qq.com/") == "https://open.weixin.qq.com"
    assert oauth_base_url("http://127.0.0.1:9999/") == "http://127.0.0.1:9999"


async def test_a_code_can_be_claimed_once(redis_client, backend):
    assert await claim_code(redis_client, backend.redis_prefix, "oa_web", "CODE1")
    assert not await claim_code(redis_client, backend.redis_prefix, "oa_web", "CODE1")
    assert await claim_code(redis_client, backend.redis_prefix, "mp_login", "CODE1")  # kinds are separate
    ttl = await redis_client.ttl(next(iter([k async for k in redis_client.scan_iter(
        match=backend.redis_prefix + "oauth:oa_web:*")])))
    assert 0 < ttl <= 300
