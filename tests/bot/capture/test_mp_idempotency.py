"""A mini-program submission is stored once however often it is retried, and values as long as the columns
allow (a 254-character email) are stored on both backends."""

from __future__ import annotations

import asyncio

import pytest

from bot.keys import ENGINE
from storage.models import SubmissionKey, Touchpoint
from tests.leads.test_forms_validation import LONGEST_EMAIL
from tests.support.forms import MP_APP_ID, capture_config, identities
from tests.support.helpers import count
from tests.support.miniprogram import mp_auth, mp_submit

FORM = {"fields": {"name": "王芳", "phone": "13700001111", "company": "杭州某某网络"}, "consent": True}


@pytest.fixture
async def client(app_client, backend, fake):
    return await app_client(capture_config(backend, api_base_url=fake.base_url))


async def form_submits(engine) -> int:
    return await count(engine, Touchpoint, Touchpoint.kind == "form_submit")


async def test_a_retry_with_the_same_key_is_answered_and_stored_once(client, fake):
    engine = client.server.app[ENGINE]
    auth = await mp_auth(client, fake)
    body = {**FORM, "idempotency_key": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}
    first = await mp_submit(client, auth, body)
    assert first == (200, {"code": "ok", "message": "预约成功，我们的顾问会尽快与您联系。"})
    assert await mp_submit(client, auth, body) == first
    # The key in the header is the same key.
    assert await mp_submit(client, auth, FORM, **{"Idempotency-Key": body["idempotency_key"]}) == first
    assert await form_submits(engine) == 1 and await count(engine, SubmissionKey) == 1
    # Another key is another submission.
    assert (await mp_submit(client, auth, {**FORM, "idempotency_key": "second"}))[0] == 200
    assert await form_submits(engine) == 2 and await count(engine, SubmissionKey) == 2


async def test_the_same_key_from_another_visitor_or_form_is_not_a_retry(client, fake):
    engine = client.server.app[ENGINE]
    body = {**FORM, "idempotency_key": "same-key"}
    assert (await mp_submit(client, await mp_auth(client, fake, "mp_open_1"), body))[0] == 200
    assert (await mp_submit(client, await mp_auth(client, fake, "mp_open_2"), body))[0] == 200
    assert await form_submits(engine) == 2


async def test_concurrent_duplicates_are_stored_once_and_all_answered_success(client, fake):
    engine = client.server.app[ENGINE]
    auth = await mp_auth(client, fake)
    body = {**FORM, "idempotency_key": "double-tap"}
    answers = await asyncio.gather(*(mp_submit(client, auth, body) for _ in range(6)))
    assert all(status == 200 and answer["code"] == "ok" for status, answer in answers), answers
    assert await form_submits(engine) == 1 and await count(engine, SubmissionKey) == 1


async def test_a_retry_with_its_phone_code_is_not_refused_as_used(client, fake):
    engine = client.server.app[ENGINE]
    auth = await mp_auth(client, fake)
    code = fake.state.issue_phone_code(MP_APP_ID, "13700001111")
    body = {"fields": {"name": "王芳", "company": "杭州某某网络"}, "consent": True, "phone_code": code,
            "idempotency_key": "with-phone"}
    assert (await mp_submit(client, auth, body))[0] == 200
    assert (await mp_submit(client, auth, body))[0] == 200  # the code is spent, but this is the same submission
    assert await form_submits(engine) == 1


async def test_a_concurrent_retry_while_the_phone_code_is_redeemed_is_answered_success(client, fake):
    """The usual retry: the first request is slow because WeChat's getPhoneNumber is; the retry waits for it."""
    engine = client.server.app[ENGINE]
    auth = await mp_auth(client, fake)
    fake.state.delays["/wxa/business/getuserphonenumber"] = 1.0
    body = {"fields": {"name": "王芳", "company": "杭州某某网络"}, "consent": True, "idempotency_key": "slow-phone",
            "phone_code": fake.state.issue_phone_code(MP_APP_ID, "13700002222")}
    answers = await asyncio.gather(mp_submit(client, auth, body), mp_submit(client, auth, body))
    assert [status for status, _ in answers] == [200, 200], answers
    assert await form_submits(engine) == 1 and fake.state.count("/wxa/business/getuserphonenumber") == 1


async def test_without_a_key_an_identical_body_within_the_window_is_stored_once(client, fake):
    engine = client.server.app[ENGINE]
    auth = await mp_auth(client, fake)
    assert (await mp_submit(client, auth, FORM))[0] == 200
    assert (await mp_submit(client, auth, FORM))[0] == 200
    assert await form_submits(engine) == 1 and await count(engine, SubmissionKey) == 1  # the body is the key
    assert (await mp_submit(client, auth, {**FORM, "utm_source": "moments"}))[0] == 200  # another body: stored
    assert await form_submits(engine) == 2


async def test_a_refused_submission_does_not_spend_its_key_or_window(client, fake):
    engine = client.server.app[ENGINE]
    auth = await mp_auth(client, fake)
    body = {**FORM, "idempotency_key": "fix-and-retry", "phone_code": "never-issued"}
    status, answer = await mp_submit(client, auth, body)
    assert status == 400 and answer["code"] == "invalid_code"
    assert await count(engine, SubmissionKey) == 0
    keyless = {**FORM, "phone_code": "never-issued-2"}
    assert (await mp_submit(client, auth, keyless))[0] == 400
    body.pop("phone_code")
    keyless.pop("phone_code")
    assert (await mp_submit(client, auth, body))[0] == 200
    assert (await mp_submit(client, auth, {**keyless, "src": "again"}))[0] == 200
    assert await form_submits(engine) == 2


@pytest.mark.parametrize("key", ["", "k" * 129, "键", "a b", 42])
async def test_a_malformed_key_is_refused_and_nothing_is_stored(client, fake, key):
    engine = client.server.app[ENGINE]
    status, answer = await mp_submit(client, await mp_auth(client, fake), {**FORM, "idempotency_key": key})
    assert status == 400 and answer["code"] == "bad_request" and "idempotency_key" in answer["message"]
    assert await form_submits(engine) == 0


async def test_a_254_character_email_is_stored(client, fake):
    engine = client.server.app[ENGINE]
    auth = await mp_auth(client, fake)
    fields = {**FORM["fields"], "email": LONGEST_EMAIL.upper()}
    assert (await mp_submit(client, auth, {**FORM, "fields": fields}))[0] == 200
    assert ("email", "", LONGEST_EMAIL, False) in await identities(engine)
    other = await mp_auth(client, fake, "mp_open_2")  # the first visitor's email is known now: not asked again
    status, answer = await mp_submit(client, other, {**FORM, "fields": {**fields, "email": "a" + LONGEST_EMAIL}})
    assert status == 400 and answer["fields"]["email"] == "请输入正确的邮箱地址"
