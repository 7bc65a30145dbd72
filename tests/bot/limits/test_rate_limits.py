"""Rate limits on the public endpoints: per client IP and per WeChat user, shared through Redis, 429 in Chinese
with Retry-After; the callbacks, the console API and /healthz are never limited."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from bot.capture.links import LinkTarget
from bot.config.limits import Rate
from bot.ingress.simulate import oa_text
from bot.keys import CONFIG, CONVERSATION, ENGINE, REDIS
from bot.limits.counter import WindowCounter
from storage.models import Identity, MiniProgramSession, Touchpoint
from tests.support.forms import MP_APP_ID, WECHAT_UA, capture_config, csrf_of
from tests.support.helpers import API_TOKEN, free_port, make_config, oa_sim
from tests.support.miniprogram import mp_auth

EVERYTHING_ONCE = {name: "1/1m" for name in (
    "form_pages_per_ip", "form_posts_per_ip", "form_posts_per_openid", "mp_login_per_ip", "mp_login_per_openid",
    "mp_forms_per_ip",
    "mp_forms_per_openid", "links_per_ip", "links_per_recipient")}


def chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


async def assert_page_429(resp) -> None:
    assert resp.status == 429
    assert resp.content_type == "text/html"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    text = await resp.text()
    assert "请求过于频繁" in text and f"{resp.headers['Retry-After']} 秒后再试" in text


async def assert_json_429(resp) -> dict:
    assert resp.status == 429
    body = await resp.json()
    assert body["error"] == body["code"] == "rate_limited" and chinese(body["message"])
    assert body["retry_after"] == int(resp.headers["Retry-After"]) >= 1
    return body


async def test_per_ip_limits_answer_429_in_chinese_and_reset_after_the_window(app_client):
    client = await app_client(rate_limits={"form_pages_per_ip": "3/1s", "links_per_ip": "2/1s",
                                           "mp_login_per_ip": "2/1s"})
    for _ in range(3):
        assert (await client.get("/f/no-such-form")).status == 404  # counted, whatever the answer
    await assert_page_429(await client.get("/f/no-such-form"))
    head = await client.head("/f/no-such-form")  # HEAD is GET
    assert head.status == 429 and head.headers["Retry-After"] == "1"
    for _ in range(2):
        assert (await client.get("/c/not-a-token", allow_redirects=False)).status == 404
    await assert_page_429(await client.get("/c/not-a-token", allow_redirects=False))
    for _ in range(2):
        assert (await client.post("/api/mp/login", json={"code": "x"})).status == 503  # no mini-program here
    await assert_json_429(await client.post("/api/mp/login", json={"code": "x"}))
    assert (await client.post("/f/no-such-form", data={})).status == 404  # its own limit, not the pages'

    await asyncio.sleep(1.1)  # the windows are over
    assert (await client.get("/f/no-such-form")).status == 404
    assert (await client.get("/c/not-a-token", allow_redirects=False)).status == 404
    assert (await client.post("/api/mp/login", json={"code": "x"})).status == 503


async def test_per_openid_limit_of_the_mini_program_forms(app_client, backend, fake):
    config = capture_config(backend, api_base_url=fake.base_url)
    limits = dataclasses.replace(config.rate_limits, mp_forms_per_openid="3/1m")
    client = await app_client(dataclasses.replace(config, rate_limits=limits))
    first, second = await mp_auth(client, fake, "mp_open_fast"), await mp_auth(client, fake, "mp_open_calm")
    submit = {"fields": {"email": "wang@example.com"}, "consent": True}
    for _ in range(2):
        assert (await client.get("/api/mp/forms/newsletter", headers=first)).status == 200
    assert (await client.post("/api/mp/forms/newsletter", headers=first, json=submit)).status == 200
    await assert_json_429(await client.post("/api/mp/forms/newsletter", headers=first, json=submit))
    await assert_json_429(await client.get("/api/mp/forms/newsletter", headers=first))
    # Another user behind the same address is not held back by the first one.
    assert (await client.post("/api/mp/forms/newsletter", headers=second, json=submit)).status == 200

    # Redis holds counters under the prefix, with no address or OpenID in their names.
    keys = [k.decode() async for k in client.server.app[REDIS].scan_iter(match=f"{backend.redis_prefix}rl:*")]
    assert any(k.startswith(f"{backend.redis_prefix}rl:mp_forms_per_openid:") for k in keys)
    assert not [k for k in keys if "mp_open" in k or "127.0.0.1" in k]


async def test_two_processes_sharing_redis_share_the_counts(app_client, backend):
    if not backend.is_production:
        pytest.skip("the embedded Redis stand-in lives inside one process")
    config = make_config(backend, rate_limits={"form_pages_per_ip": "4/1m"})
    first, second = await app_client(config), await app_client(config)
    for client in (first, second, first, second):
        assert (await client.get("/f/no-such-form")).status == 404
    await assert_page_429(await second.get("/f/no-such-form"))
    await assert_page_429(await first.get("/f/no-such-form"))


async def test_callbacks_console_and_health_are_never_limited(app_client):
    client = await app_client(rate_limits=EVERYTHING_ONCE)
    reqs = [oa_sim().post(oa_text(f"o_burst_{i}", "你好", 9_000 + i)) for i in range(40)]
    answers = await asyncio.gather(*(client.post(f"/wechat/callback?{r.query}", data=r.body) for r in reqs))
    assert [a.status for a in answers] == [200] * 40
    for _ in range(5):
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/api/leads", headers={"Authorization": f"Bearer {API_TOKEN}"})).status == 200
    assert (await client.get("/f/no-such-form")).status == 404
    await assert_page_429(await client.get("/f/no-such-form"))  # the limits are on


async def test_forwarded_addresses_count_only_from_a_trusted_proxy(app_client):
    behind_nginx = await app_client(rate_limits={"form_pages_per_ip": "1/1m"})  # the test client is 127.0.0.1

    async def page(headers: dict[str, str]) -> int:
        return (await behind_nginx.get("/f/no-such-form", headers=headers)).status

    assert await page({"X-Forwarded-For": "203.0.113.1"}) == 404
    assert await page({"X-Forwarded-For": "203.0.113.2"}) == 404  # another client
    assert await page({"X-Forwarded-For": "203.0.113.1"}) == 429
    # What the client itself wrote (left of the address nginx appended) is not believed.
    assert await page({"X-Forwarded-For": "198.51.100.9, 203.0.113.3"}) == 404
    assert await page({"X-Forwarded-For": "198.51.100.10, 203.0.113.3"}) == 429
    assert await page({"X-Forwarded-For": "203.0.113.4, 127.0.0.1"}) == 404  # a chain of trusted proxies
    assert await page({"X-Forwarded-For": "203.0.113.4"}) == 429
    assert await page({"X-Real-IP": "203.0.113.5"}) == 404
    assert await page({"X-Real-IP": "203.0.113.5"}) == 429
    assert await page({"X-Forwarded-For": "2001:db8:1:2::1"}) == 404
    assert await page({"X-Forwarded-For": "2001:db8:1:2::ffff"}) == 429  # one IPv6 client holds a /64

    direct = await app_client(server={"trusted_proxies": ["10.0.0.0/8"]}, rate_limits={"form_pages_per_ip": "1/1m"})
    assert (await direct.get("/f/no-such-form", headers={"X-Forwarded-For": "203.0.113.1"})).status == 404
    resp = await direct.get("/f/no-such-form", headers={"X-Forwarded-For": "203.0.113.2", "X-Real-IP": "203.0.113.3"})
    await assert_page_429(resp)  # an untrusted peer's headers are ignored: it is one client


async def test_disabled_limits_count_nothing(app_client):
    client = await app_client(rate_limits={**EVERYTHING_ONCE, "enabled": False})
    for _ in range(3):
        assert (await client.get("/f/no-such-form")).status == 404
    assert not [k async for k in client.server.app[REDIS].scan_iter(
        match=f"{client.server.app[CONFIG].redis.key_prefix}rl:*")]


async def test_an_unreachable_redis_lets_requests_through_and_says_so_once(redis_client, backend, caplog):
    caplog.set_level(logging.INFO, logger="bot.limits.counter")
    counter = WindowCounter(backend.redis_prefix, b"k")
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        for _ in range(3):
            assert await counter.hit(dead, "links_per_ip", "203.0.113.1", Rate(1, 60)) is None
    finally:
        await dead.aclose()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not enforced" in warnings[0].getMessage()
    assert await counter.hit(redis_client, "links_per_ip", "203.0.113.1", Rate(1, 60)) is None
    assert await counter.hit(redis_client, "links_per_ip", "203.0.113.1", Rate(1, 60)) == 60
    assert any("enforced again" in r.getMessage() for r in caplog.records)


async def test_per_openid_limit_of_the_h5_form_posts(app_client, backend, fake):
    port = free_port()  # WeChat's OAuth sends the visitor back to server.public_url
    config = capture_config(backend, api_base_url=fake.base_url, public_url=f"http://127.0.0.1:{port}")
    limits = dataclasses.replace(config.rate_limits, form_posts_per_openid="2/1m")
    client = await app_client(dataclasses.replace(config, rate_limits=limits), port=port)
    fake.state.oauth_openid = "o_h5_poster"
    page = await client.get("/f/newsletter", headers={"User-Agent": WECHAT_UA})  # binds the OpenID silently
    assert page.status == 200 and fake.state.count("/sns/oauth2/access_token") == 1
    post = {"email": "not-an-email", "csrf": csrf_of(await page.text())}
    for _ in range(2):
        assert (await client.post("/f/newsletter", data=post, headers={"User-Agent": WECHAT_UA})).status == 400
    await assert_page_429(await client.post("/f/newsletter", data=post, headers={"User-Agent": WECHAT_UA}))


async def test_per_recipient_limit_of_tracked_links(app_client):
    item = {"id": "guide", "kind": "article", "title": "价格指南", "url": "https://example.com/pricing",
            "stage": "decision"}
    client = await app_client(content={"items": [item]}, rate_limits={"links_per_recipient": "2/1m"})
    links = client.server.app[CONVERSATION].links
    reader, other = LinkTarget("guide", "oa_openid", "o_reader"), LinkTarget("guide", "oa_openid", "o_other")
    for token in (links.token(reader), links.token(reader), links.token(reader)):
        assert (await client.get(f"/c/{token}", allow_redirects=False)).status == 302  # always to the content
    assert (await client.get(f"/c/{links.token(other)}", allow_redirects=False)).status == 302
    engine = client.server.app[ENGINE]
    async with engine.connect() as conn:
        views = dict((await conn.execute(select(Identity.value, func.count()).select_from(Touchpoint).join(
            Identity, Identity.lead_id == Touchpoint.lead_id).where(Touchpoint.kind == "content_view")
            .group_by(Identity.value))).all())
    assert views == {"o_reader": 2, "o_other": 1}  # the third open of the reader's link over the limit: unrecorded


async def test_per_openid_limit_of_the_mini_program_login(app_client, backend, fake):
    config = capture_config(backend, api_base_url=fake.base_url)
    limits = dataclasses.replace(config.rate_limits, mp_login_per_openid="2/1m")
    client = await app_client(dataclasses.replace(config, rate_limits=limits))
    engine = client.server.app[ENGINE]
    for _ in range(2):
        await mp_auth(client, fake, "mp_open_loop")
    code = fake.state.issue_login_code(MP_APP_ID, "mp_open_loop", None)
    await assert_json_429(await client.post("/api/mp/login", json={"code": code}))
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(MiniProgramSession)) == 2  # no third session
    await mp_auth(client, fake, "mp_open_other")  # another user is not held back
