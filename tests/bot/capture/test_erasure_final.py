"""Erasure is final, through the real app against the fake WeChat API: a tracked link, a form cookie or a
mini-program session issued before ``POST /api/leads/{id}/erase`` records nothing and brings nobody back; the
erased identities remain only as keyed hashes. Also: ``HEAD /c/<token>`` records nothing."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import re
from typing import Any

import pytest
from sqlalchemy import select

from bot.capture.form_tokens import COOKIE_NAME, decode_session
from bot.config.capture import build_capture, validate_capture
from bot.crypto.keyring import Purpose
from bot.ingress.security import Envelope
from bot.ingress.simulate import decrypt_reply, oa_event, oa_text
from bot.keys import CONFIG, ENGINE
from storage.models import Identity, IdentityTombstone, Lead, LeadMerge, MiniProgramSession, Touchpoint
from tests.support.calls import AUTH, send_oa
from tests.support.forms import FORMS, MP_APP_ID, MP_SECRET, PLAIN_UA, WECHAT_UA, csrf_of, field_names
from tests.support.helpers import (
    OA_AES_KEY,
    OA_APP_ID,
    OA_TOKEN,
    count,
    free_port,
    lead_ids,
    make_config,
    wait_processed,
)

ENVELOPE = Envelope(OA_TOKEN, OA_AES_KEY, OA_APP_ID, work=False)
PRICING_URL = "https://example.com/pricing-guide"
CAPTURE: dict[str, Any] = {
    "intents": [{"name": "pricing", "keywords": ["价格"], "content": ["pricing-guide"],
                 "score_event": "visit_pricing"}],
    "content": {"items": [{"id": "pricing-guide", "kind": "article", "title": "产品价格指南", "url": PRICING_URL}]},
    "forms": FORMS,
    "mini_program": {"app_id": MP_APP_ID, "app_secret": MP_SECRET, "session_ttl_s": 3600},
}
GOOD = {"name": "张伟", "phone": "13800138000", "email": "zw@corp.cn", "company": "上海某某科技有限公司",
        "consent": "yes"}
PLAIN = {"User-Agent": PLAIN_UA}


@pytest.fixture
async def client(app_client, backend, fake):
    port = free_port()
    config = make_config(backend, api_base_url=fake.base_url, server={"public_url": f"http://127.0.0.1:{port}"})
    capture = build_capture(CAPTURE)
    validate_capture(capture)
    return await app_client(dataclasses.replace(config, capture=capture), port=port)


async def say(client, xml: str) -> str:
    resp = await send_oa(client, xml)
    assert resp.status == 200
    return decrypt_reply(ENVELOPE, await resp.read())


def link_of(reply: str) -> str:
    url = re.search(r"<Url><!\[CDATA\[(.*?)\]\]></Url>", reply).group(1)
    return url[url.index("/c/"):]


async def erase(client, lead_id: int) -> None:
    resp = await client.post(f"/api/leads/{lead_id}/erase", headers=AUTH)
    assert resp.status == 200, await resp.text()


async def opens_content(client, link: str, method: str = "GET") -> None:
    resp = await client.request(method, link, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == PRICING_URL


async def tombstones(engine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.execute(select(IdentityTombstone.digest))).scalars())


def digest(client, kind: str, app: str, value: str) -> str:
    return client.server.app[CONFIG].keyring.digest(Purpose.TOMBSTONE, f"{kind}\x1f{app}\x1f{value}")


async def test_an_old_link_still_leads_to_its_content_but_brings_nobody_back(client, fake):
    engine = client.server.app[ENGINE]
    link = link_of(await say(client, oa_text("o_gone", "价格", 2001)))
    await wait_processed(engine, expected=1)
    assert "o_gone" not in link
    await opens_content(client, link)
    (lead_id,) = await lead_ids(engine)
    touches = await count(engine, Touchpoint)
    assert await count(engine, Touchpoint, Touchpoint.kind == "content_view") == 1

    await erase(client, lead_id)
    await opens_content(client, link)
    assert await lead_ids(engine) == [lead_id]  # no new lead
    assert await count(engine, Identity) == 0 and await count(engine, Touchpoint) == touches
    # The identities remain as keyed hashes only.
    assert await tombstones(engine) == {digest(client, "oa_openid", OA_APP_ID, "o_gone")}
    async with engine.connect() as conn:
        rows = (await conn.execute(select(IdentityTombstone.digest, IdentityTombstone.erased_at))).all()
    assert all("gone" not in d and len(d) == 64 and at is not None for d, at in rows)
    assert hashlib.sha256(b"o_gone").hexdigest() not in {d for d, _ in rows}  # keyed, not a plain hash

    # Writing to the OA again is new activity: a new lead, and links sent from now on record on it.
    fresh_link = link_of(await say(client, oa_text("o_gone", "价格", 2002)))
    await wait_processed(engine, expected=2)
    (new_id,) = set(await lead_ids(engine)) - {lead_id}
    touches = await count(engine, Touchpoint)
    await opens_content(client, link)
    assert await count(engine, Touchpoint) == touches  # the old link still records nothing
    await opens_content(client, fresh_link)
    assert await count(engine, Touchpoint, Touchpoint.lead_id == new_id, Touchpoint.kind == "content_view") == 1
    assert await count(engine, Touchpoint, Touchpoint.lead_id == lead_id, Touchpoint.kind == "content_view") == 1


async def test_head_answers_like_get_and_records_nothing(client):
    engine = client.server.app[ENGINE]
    link = link_of(await say(client, oa_text("o_preview", "价格", 2010)))
    await wait_processed(engine, expected=1)
    before = await count(engine, Touchpoint)
    for _ in range(3):
        await opens_content(client, link, "HEAD")
    assert await count(engine, Touchpoint) == before
    await opens_content(client, link)
    assert await count(engine, Touchpoint) == before + 1
    assert (await client.head("/c/2.garbage", allow_redirects=False)).status == 404


async def test_links_of_the_old_format_redirect_and_record_nothing(client):
    engine = client.server.app[ENGINE]
    key = hashlib.sha256(b"leadrelay-links:" + hashlib.sha256(b"leadrelay-signing:" + OA_TOKEN.encode()).digest())
    payload = "\x1f".join(("pricing-guide", "o", "o_forged_victim", "")).encode()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    old = f"/c/{b64(payload)}.{b64(hmac.new(key.digest(), payload, hashlib.sha256).digest()[:16])}"
    await opens_content(client, old)
    assert await count(engine, Lead) == 0 and await count(engine, Identity) == 0
    assert await count(engine, Touchpoint) == 0
    assert (await client.get(old[:-2] + "AA", allow_redirects=False)).status == 404


async def test_tampered_links_are_404_and_store_nothing(client):
    engine = client.server.app[ENGINE]
    link = link_of(await say(client, oa_text("o_tamper", "价格", 2020)))
    await wait_processed(engine, expected=1)
    before = await count(engine, Touchpoint)
    token = link[3:]
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), token[:10] + "x" + token[11:], token[:-3],
                "2." + token[2:][::-1], "garbage"):
        assert (await client.get(f"/c/{bad}", allow_redirects=False)).status == 404, bad
    assert await count(engine, Touchpoint) == before


async def test_a_form_cookie_bound_before_the_erasure_is_anonymous(client, fake):
    engine = client.server.app[ENGINE]
    fake.state.register_user("o_form", unionid="u_form")
    await send_oa(client, oa_event("o_form", "subscribe"))
    await wait_processed(engine, expected=1)
    (lead_id,) = await lead_ids(engine)
    fake.state.oauth_openid = "o_form"
    assert (await client.get("/f/demo", headers={"User-Agent": WECHAT_UA})).status == 200  # bound silently
    old = client.session.cookie_jar.filter_cookies(client.make_url("/f/demo"))[COOKIE_NAME].value
    keyring = client.server.app[CONFIG].keyring
    assert decode_session(keyring, old).openid == "o_form" and "o_form" not in old and "u_form" not in old

    await erase(client, lead_id)
    client.session.cookie_jar.clear()
    with_old = {**PLAIN, "Cookie": f"{COOKIE_NAME}={old}"}
    page = await client.get("/f/demo", headers=with_old)
    assert page.status == 200
    html = await page.text()
    assert "name" in field_names(html)  # nothing known about the visitor
    reissued = page.cookies[COOKIE_NAME].value
    assert decode_session(keyring, reissued).openid is None  # the binding is dropped from the cookie too
    client.session.cookie_jar.clear()
    resp = await client.post("/f/demo", data={**GOOD, "csrf": csrf_of(html)}, headers=with_old)
    assert resp.status == 200, await resp.text()
    async with engine.connect() as conn:
        kinds = set((await conn.execute(select(Identity.kind))).scalars())
    assert kinds == {"phone", "email"}  # a new, anonymous visitor: no OpenID, no UnionID
    assert await count(engine, Identity, Identity.lead_id == lead_id) == 0


async def test_a_mini_program_session_of_an_erased_person_is_refused(client, fake):
    engine = client.server.app[ENGINE]
    code = fake.state.issue_login_code(MP_APP_ID, "mp_gone", "u_mp_gone")
    token = (await (await client.post("/api/mp/login", json={"code": code})).json())["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/mp/forms/demo", headers=bearer)).status == 200
    (lead_id,) = await lead_ids(engine)
    await erase(client, lead_id)
    assert (await client.get("/api/mp/forms/demo", headers=bearer)).status == 401
    resp = await client.post("/api/mp/forms/demo", headers=bearer, json={"fields": {"name": "王芳", "company": "某"},
                                                                         "consent": True})
    assert resp.status == 401
    assert await lead_ids(engine) == [lead_id] and await count(engine, Identity) == 0
    assert await count(engine, MiniProgramSession) == 0


async def _until(probe, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await probe():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_erasing_a_survivor_erases_the_leads_merged_into_it(client, fake):
    engine = client.server.app[ENGINE]

    async def login(unionid: str | None) -> dict[str, str]:
        code = fake.state.issue_login_code(MP_APP_ID, "mp_twice", unionid)
        body = await (await client.post("/api/mp/login", json={"code": code})).json()
        return {"Authorization": f"Bearer {body['token']}"}

    first = await login(None)  # lead A: the mini-program OpenID only
    fake.state.register_user("o_twice", unionid="u_twice")
    await send_oa(client, oa_event("o_twice", "subscribe"))  # lead B: the OA OpenID and the UnionID
    await wait_processed(engine, expected=1)
    await _until(lambda: count(engine, Identity, Identity.kind == "unionid"))  # looked up from user/info
    second = await login("u_twice")  # the UnionID links A and B: B is merged into A
    await _until(lambda: count(engine, LeadMerge))
    (survivor,) = await lead_ids(engine)
    assert await count(engine, Lead) == 2 and await count(engine, MiniProgramSession) == 2
    await erase(client, survivor)
    for bearer in (first, second):
        assert (await client.get("/api/mp/forms/demo", headers=bearer)).status == 401
    async with engine.connect() as conn:
        rows = (await conn.execute(select(Lead.display_name, Lead.profile, Lead.erased_at))).all()
        merge_values = set((await conn.execute(select(LeadMerge.identity_value))).scalars())
    assert len(rows) == 2 and all(name is None and profile == {"erased": True} and at for name, profile, at in rows)
    assert merge_values == {"erased"}
    assert await count(engine, Identity) == 0 and await count(engine, MiniProgramSession) == 0
    assert await tombstones(engine) == {digest(client, "oa_openid", OA_APP_ID, "o_twice"),
                                        digest(client, "unionid", "", "u_twice"),
                                        digest(client, "mp_openid", MP_APP_ID, "mp_twice")}
