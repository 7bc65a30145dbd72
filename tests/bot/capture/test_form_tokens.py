"""bot/capture/form_tokens.py and bot/wechat/oauth.py: encrypted cookies, CSRF tokens, OAuth state, code claims."""

from __future__ import annotations

import base64
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
from bot.crypto.keyring import KeyRing
from bot.wechat.codes import claim_code
from bot.wechat.oauth import oauth_base_url

KEY = KeyRing([b"k-test-key-one-0123456789abcdefghijklmnop"])
OTHER_KEY = KeyRing([b"o-test-key-two-0123456789abcdefghijklmnop"])
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"


def test_the_session_cookie_round_trips_and_refuses_tampering():
    session = FormSession.bound("sid1", OPENID, "u_abc")
    value = encode_session(KEY, session)
    assert decode_session(KEY, value) == session
    assert decode_session(OTHER_KEY, value) is None
    for i in range(2, len(value)):  # any altered character: refused, never another session
        altered = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1:]
        assert decode_session(KEY, altered) in (None, session)
    assert decode_session(KEY, value[:-4]) is None
    for junk in (None, "", "nodot", "a.b", "2.", "2.AAAA", "x" * 2000, "2." + "A" * 60, value + "."):
        assert decode_session(KEY, junk) is None


def test_the_cookie_carries_no_readable_identifier():
    value = encode_session(KEY, FormSession.bound("sid1", OPENID, "uNiOnIdXyZ0123456789"))
    for secret in (OPENID, "uNiOnIdXyZ0123456789"):
        assert secret not in value
        for shift in range(3):  # the identifier's base64, at any alignment
            encoded = base64.urlsafe_b64encode(b"x" * shift + secret.encode()).decode()[4:20]
            assert encoded not in value
    # Two cookies of the same session differ (random nonce): a cookie cannot be matched to a person either.
    assert encode_session(KEY, FormSession("s", OPENID, None, 1)) != encode_session(KEY, FormSession("s", OPENID,
                                                                                                          None, 1))


def test_a_cookie_of_the_old_signed_format_is_treated_as_absent():
    old = "eyJzIjoic2lkMSIsIm8iOiJvX3ZpY3RpbSIsInUiOm51bGx9.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2ln"
    assert decode_session(KEY, old) is None


def test_rotation_keeps_cookies_of_the_previous_key():
    rotated = KeyRing([b"n-new-key-three-0123456789abcdefghijklmn", b"k-test-key-one-0123456789abcdefghijklmnop"])
    session = FormSession.bound("sid1", OPENID, None)
    assert decode_session(rotated, encode_session(KEY, session)) == session
    assert decode_session(KEY, encode_session(rotated, session)) is None  # the new key encrypts


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
