"""The chat toolbar's JS-SDK signature endpoint against the fake WeCom: one agent jsapi_ticket serves many pages
and processes (WeCom allows 400 fetches an hour per company, and the fake enforces it), signatures verify with
that ticket, and only our own mobile pages are signed."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

from bot.errors import WeChatAPIError
from bot.keys import CONFIG, REDIS, SERVICES
from bot.wechat.jsapi import agent_ticket_cache, signature, ticket_key
from tests.sdr_console.mobile.mobile_support import engine_of, live_client, salesperson
from tests.support.fakes.wechat_mobile import TICKET_PATH, TICKETS_PER_HOUR, issue_wecom_code, issued_tickets
from tests.support.fakes.wechat_state import RecordedRequest
from tests.support.helpers import CORP_ID


async def signed_in(app_client, fake):  # noqa: ANN001, ANN201
    client = await live_client(app_client, fake)
    await salesperson(engine_of(client), "liuyang", wecom_userid="LiuYang")
    resp = await client.get("/m/auth", allow_redirects=False)  # sets the state cookie
    state = parse_qs(urlsplit(resp.headers["Location"]).query)["state"][0]
    done = await client.get("/m/auth/callback", params={"code": issue_wecom_code(fake.state, "LiuYang"),
                                                        "state": state}, allow_redirects=False)
    assert done.status == 303
    return client


async def test_one_ticket_serves_many_pages_and_every_signature_verifies(app_client, fake):
    client = await signed_in(app_client, fake)
    page = client.server.app[CONFIG].server.public_url + "/m/chat"
    answers = await asyncio.gather(*[client.get("/m/api/jssdk-signature", params={"url": page}) for _ in range(25)])
    bodies = [await a.json() for a in answers]
    assert {a.status for a in answers} == {200} and issued_tickets(fake.state) == 1
    config = client.server.app[CONFIG]
    ticket = (await client.server.app[REDIS].get(ticket_key(config.redis.key_prefix, CORP_ID, 1000002))).decode()
    for body in bodies:
        assert body["corpid"] == CORP_ID and body["agentid"] == 1000002
        assert body["jsApiList"] == ["getCurExternalContact"] and abs(body["timestamp"] - time.time()) < 60
        assert body["signature"] == signature(ticket, body["nonceStr"], body["timestamp"], page)
    assert len({b["nonceStr"] for b in bodies}) == 25


async def test_two_processes_share_one_ticket_fetch(app_client, fake):
    client = await live_client(app_client, fake)
    api, config = client.server.app[SERVICES].wecom_api, client.server.app[CONFIG]
    caches = [agent_ticket_cache(client.server.app[REDIS], config.redis.key_prefix, CORP_ID, 1000002,
                                 api.get_agent_jsapi_ticket) for _ in range(2)]  # two processes' caches
    tickets = await asyncio.gather(*[caches[i % 2].get() for i in range(20)])
    assert len(set(tickets)) == 1 and issued_tickets(fake.state) == 1


async def test_the_fake_refuses_the_401st_ticket_of_an_hour(app_client, fake):
    client = await signed_in(app_client, fake)
    now = fake.state.clock()
    fake.state.requests.extend([RecordedRequest("GET", TICKET_PATH, {}, None, now - 60)] * TICKETS_PER_HOUR)
    try:
        await client.server.app[SERVICES].wecom_api.get_agent_jsapi_ticket()
    except WeChatAPIError as exc:
        assert exc.errcode == 45009
    else:
        raise AssertionError("the fake let a 401st ticket through")
    # The page says WeCom is unavailable (no ticket cached yet), and nothing else breaks.
    resp = await client.get("/m/api/jssdk-signature",
                            params={"url": client.server.app[CONFIG].server.public_url + "/m/chat"})
    assert resp.status == 502 and (await resp.json())["code"] == "wecom_unavailable"
    fake.state.requests[:] = [r for r in fake.state.requests if r.path != TICKET_PATH]  # an hour later
    assert (await client.get("/m/api/jssdk-signature",
                             params={"url": client.server.app[CONFIG].server.public_url + "/m/chat"})).status == 200


async def test_only_signed_in_users_and_our_own_pages_are_signed(app_client, fake):
    client = await signed_in(app_client, fake)
    public = client.server.app[CONFIG].server.public_url
    for url in ("https://evil.example/m/chat", public + "/console/", public.replace("http:", "https:") + "/m/chat",
                "", public + "/m/chat\n"):
        resp = await client.get("/m/api/jssdk-signature", params={"url": url})
        assert resp.status == 400, url
    client.session.cookie_jar.clear()
    assert (await client.get("/m/api/jssdk-signature", params={"url": public + "/m/chat"})).status == 401
    assert issued_tickets(fake.state) == 0
