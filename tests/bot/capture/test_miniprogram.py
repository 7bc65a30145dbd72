"""Mini-program capture: login (code2session), forms with a verified phone, and every refusal as JSON."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.crypto.keyring import Purpose
from bot.keys import CONFIG, ENGINE, SESSIONS
from storage.models import MiniProgramSession
from tests.support.forms import (
    MP_APP_ID,
    MP_SECRET,
    NOTHING,
    capture_config,
    identities,
    leads,
    stored_counts,
    touchpoints,
)
from tests.support.miniprogram import bearer, mp_login

FIELDS = {"name": "王芳", "company": "杭州某某网络"}


@pytest.fixture
async def client(app_client, backend, fake):
    return await app_client(capture_config(backend, api_base_url=fake.base_url))


async def login(client, fake) -> str:
    """The visitor of these tests, whose mini-program is bound to the open platform (so WeChat gives a UnionID)."""
    return await mp_login(client, fake, "mp_open_1", "u_wangfang")


async def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["code"] == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), body  # a Chinese message
    return body


async def test_login_returns_only_an_opaque_token(client, fake):
    engine = client.server.app[ENGINE]
    code = fake.state.issue_login_code(MP_APP_ID, "mp_open_1", "u_wangfang")
    resp = await client.post("/api/mp/login", json={"code": code})
    text = await resp.text()
    body = await resp.json()
    assert resp.status == 200 and set(body) == {"token", "expires_in"} and body["expires_in"] == 3600
    session_key = fake.state.oauth_codes[code].session_key
    assert session_key not in text and "mp_open_1" not in text and "u_wangfang" not in text
    async with client.server.app[SESSIONS]() as session:
        (row,) = (await session.execute(select(MiniProgramSession))).scalars()
    # The token itself is not stored, only its hash keyed with the mini-program subkey of server.secret_key.
    keyring = client.server.app[CONFIG].keyring
    assert row.token_hash == keyring.digest(Purpose.MP_SESSION, body["token"])
    assert row.token_hash != hashlib.sha256(body["token"].encode()).hexdigest()
    assert row.session_key == session_key and row.openid == "mp_open_1"
    assert await identities(engine) == {("mp_openid", MP_APP_ID, "mp_open_1", False),
                                        ("unionid", "", "u_wangfang", False)}
    (call,) = fake.state.requests_to("/sns/jscode2session")
    assert call.query["appid"] == MP_APP_ID and call.query["js_code"] == code


async def test_a_form_with_a_phone_code_gives_a_verified_phone_and_touchpoints(client, fake):
    engine = client.server.app[ENGINE]
    token = await login(client, fake)
    phone_code = fake.state.issue_phone_code(MP_APP_ID, "13700001111")
    resp = await client.post("/api/mp/forms/demo", headers=bearer(token), json={
        "fields": FIELDS, "consent": True, "phone_code": phone_code, "src": "expo2026", "utm_source": "moments"})
    assert resp.status == 200 and (await resp.json())["code"] == "ok"

    assert ("phone", "", "13700001111", True) in await identities(engine)
    (lead,) = await leads(engine)
    assert lead.consent == "granted" and lead.profile["company"] == "杭州某某网络"
    assert lead.profile["consent"]["via"] == "miniprogram"
    submit_tp, score_tp = await touchpoints(engine)
    assert (submit_tp.kind, submit_tp.channel, submit_tp.source_code) == ("form_submit", "expo", "expo2026")
    assert submit_tp.detail["utm_source"] == "moments" and "phone" in submit_tp.detail["fields"]
    assert score_tp.kind == "request_demo"
    # The mini-program's own access token, from its own appid and secret.
    (token_call,) = fake.state.requests_to("/cgi-bin/token")
    assert (token_call.query["appid"], token_call.query["secret"]) == (MP_APP_ID, MP_SECRET)


async def test_a_typed_phone_becomes_verified_when_wechat_confirms_it(client, fake):
    engine = client.server.app[ENGINE]
    token = await login(client, fake)
    resp = await client.post("/api/mp/forms/demo", headers=bearer(token),
                             json={"fields": {**FIELDS, "phone": "137 0000 1111"}, "consent": True})
    assert resp.status == 200
    assert ("phone", "", "13700001111", False) in await identities(engine)

    described = await (await client.get("/api/mp/forms/demo", headers=bearer(token))).json()
    assert "phone" not in [f["name"] for f in described["fields"]]  # progressive profiling
    phone_code = fake.state.issue_phone_code(MP_APP_ID, "13700001111")
    resp = await client.post("/api/mp/forms/demo", headers=bearer(token),
                             json={"fields": {}, "consent": True, "phone_code": phone_code})
    assert resp.status == 200
    assert ("phone", "", "13700001111", True) in await identities(engine)
    assert len(await leads(engine)) == 1


async def test_describe_form_lists_the_fields_with_chinese_labels(client, fake):
    token = await login(client, fake)
    body = await (await client.get("/api/mp/forms/demo", headers=bearer(token))).json()
    assert body["title"] == "预约产品演示" and "隐私政策" in body["privacy_text"]
    by_name = {f["name"]: f for f in body["fields"]}
    assert by_name["phone"] == {"name": "phone", "label": "手机号码", "type": "tel", "required": True,
                                "max_length": 20, "choices": []}
    assert {"value": "b2b", "label": "B2B（面向企业）"} in by_name["company_type"]["choices"]


async def test_a_reused_login_code_is_refused_without_asking_wechat_again(client, fake):
    engine = client.server.app[ENGINE]
    code = fake.state.issue_login_code(MP_APP_ID, "mp_open_2")
    assert (await client.post("/api/mp/login", json={"code": code})).status == 200
    before = await stored_counts(engine)
    await assert_error(await client.post("/api/mp/login", json={"code": code}), 400, "code_used")
    assert fake.state.count("/sns/jscode2session") == 1
    assert await stored_counts(engine) == before


async def test_a_code_used_elsewhere_or_expired_stores_nothing(client, fake):
    engine = client.server.app[ENGINE]
    used = fake.state.issue_login_code(MP_APP_ID, "mp_open_3")
    fake.state.oauth_codes[used].used = True  # another server exchanged it first: WeChat says 40163
    await assert_error(await client.post("/api/mp/login", json={"code": used}), 400, "code_used")
    expired = fake.state.issue_login_code(MP_APP_ID, "mp_open_3")
    fake.state.expire_oauth_codes()
    await assert_error(await client.post("/api/mp/login", json={"code": expired}), 400, "invalid_code")
    await assert_error(await client.post("/api/mp/login", json={"code": "never-issued"}), 400, "invalid_code")
    await assert_error(await client.post("/api/mp/login", json={}), 400, "missing_code")
    await assert_error(await client.post("/api/mp/login", data=b"not json"), 400, "bad_request")
    fake.state.fail_next("/sns/jscode2session", -1, errmsg="system busy")
    fresh = fake.state.issue_login_code(MP_APP_ID, "mp_open_3")
    await assert_error(await client.post("/api/mp/login", json={"code": fresh}), 502, "wechat_error")
    assert await stored_counts(engine) == NOTHING


async def test_missing_forged_or_expired_tokens_are_401(client, fake):
    engine = client.server.app[ENGINE]
    body = {"fields": FIELDS, "consent": True}
    await assert_error(await client.post("/api/mp/forms/demo", json=body), 401, "unauthorized")
    resp = await client.post("/api/mp/forms/demo", json=body, headers=bearer("forged-token"))
    await assert_error(resp, 401, "invalid_token")
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    token = await login(client, fake)
    async with client.server.app[SESSIONS]() as session, session.begin():
        await session.execute(update(MiniProgramSession).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    await assert_error(await client.post("/api/mp/forms/demo", json=body, headers=bearer(token)), 401,
                       "session_expired")
    await assert_error(await client.get("/api/mp/forms/demo", headers=bearer(token)), 401, "session_expired")
    assert await touchpoints(engine) == []


async def test_unknown_form_is_404_json(client, fake):
    token = await login(client, fake)
    await assert_error(await client.post("/api/mp/forms/nope", headers=bearer(token),
                                          json={"fields": FIELDS, "consent": True}), 404, "form_not_found")
    await assert_error(await client.get("/api/mp/forms/nope", headers=bearer(token)), 404, "form_not_found")


async def test_bad_fields_are_listed_and_nothing_is_stored_nor_the_phone_code_spent(client, fake):
    engine = client.server.app[ENGINE]
    token = await login(client, fake)
    before = await stored_counts(engine)
    phone_code = fake.state.issue_phone_code(MP_APP_ID, "13700001111")
    resp = await client.post("/api/mp/forms/demo", headers=bearer(token), json={
        "fields": {"name": "王芳", "email": "nope", "company_size": "huge"}, "consent": False,
        "phone_code": phone_code})
    body = await assert_error(resp, 400, "invalid_fields")
    assert body["fields"] == {"email": "请输入正确的邮箱地址", "company": "请填写公司名称",
                              "company_size": "请从列表中选择公司规模", "consent": "请阅读并勾选同意隐私政策"}
    assert fake.state.count("/wxa/business/getuserphonenumber") == 0
    assert await stored_counts(engine) == before
    resp = await client.post("/api/mp/forms/demo", headers=bearer(token),
                             json={"fields": "name=王芳", "consent": True})
    await assert_error(resp, 400, "bad_request")


async def test_reused_or_foreign_phone_codes_are_refused(client, fake):
    engine = client.server.app[ENGINE]
    token = await login(client, fake)
    phone_code = fake.state.issue_phone_code(MP_APP_ID, "13700001111")
    body = {"fields": FIELDS, "consent": True, "phone_code": phone_code}
    assert (await client.post("/api/mp/forms/demo", headers=bearer(token), json=body)).status == 200
    # The identical body again is a retry (answered, stored once: test_mp_idempotency.py); another use is refused.
    assert (await client.post("/api/mp/forms/demo", headers=bearer(token), json=body)).status == 200
    await assert_error(await client.post("/api/mp/forms/demo", headers=bearer(token), json={**body, "src": "again"}),
                       400, "code_used")
    assert fake.state.count("/wxa/business/getuserphonenumber") == 1
    # A code the user's WeChat issued to another mini-program is not ours to redeem.
    foreign = fake.state.issue_phone_code("wx-other-mp", "13900002222")
    await assert_error(await client.post("/api/mp/forms/demo", headers=bearer(token),
                                         json={**body, "phone_code": foreign}), 400, "invalid_code")
    assert len(await touchpoints(engine)) == 2  # only the first submission's form_submit + request_demo
    assert {v for k, _, v, _ in await identities(engine) if k == "phone"} == {"13700001111"}


async def test_disabled_without_an_app_id(app_client, backend, fake):
    client = await app_client(capture_config(backend, api_base_url=fake.base_url, mini_program=False))
    await assert_error(await client.post("/api/mp/login", json={"code": "x"}), 503, "mp_disabled")
    await assert_error(await client.post("/api/mp/forms/demo", json={}), 503, "mp_disabled")
