"""Signing in to the mobile inbox: the sandbox login link (signed, expiring, once only) and WeCom web OAuth
(state bound to a cookie, each code once, the member mapped to users.wecom_userid)."""

from __future__ import annotations

import argparse
import time
from urllib.parse import parse_qs, urlsplit

from yarl import URL

from bot.errors import WeChatAPIError
from bot.keys import CONFIG, REDIS, SERVICES
from bot.people import login_links
from storage.repos.handoff_cards import member_label
from tests.sdr_console.console_support import audit_rows, disable, session_cookie
from tests.sdr_console.mobile.mobile_support import (
    engine_of,
    live_client,
    login_link,
    salesperson,
    sandbox_client,
)
from tests.support.fakes.wechat_mobile import issue_wecom_code
from tests.support.helpers import CORP_ID


async def test_a_login_link_signs_in_once_and_leaves_the_address_bar(app_client):
    client = await sandbox_client(app_client)
    await salesperson(engine_of(client), "liuyang", display_name="刘洋")
    code, link = await login_link(client.server.app[CONFIG], "liuyang")
    assert code == 0 and link.startswith(client.server.app[CONFIG].server.public_url + "/m/login?token=")
    path = link.removeprefix(client.server.app[CONFIG].server.public_url)
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/m/"  # the token leaves the address bar
    assert session_cookie(client)
    inbox = await client.get("/m/")
    assert inbox.status == 200 and "刘洋" in await inbox.text()
    client.session.cookie_jar.clear()
    again = await client.get(path, allow_redirects=False)
    assert again.status == 410 and "只能使用一次" in await again.text()
    assert session_cookie(client) is None
    assert (await client.get("/m/", allow_redirects=False)).status == 401
    assert [e.action for e in await audit_rows(client, action="mobile.sign_in")] == ["mobile.sign_in"]


async def test_a_link_preview_head_request_does_not_spend_the_link(app_client):
    client = await sandbox_client(app_client)
    await salesperson(engine_of(client), "liuyang")
    _, link = await login_link(client.server.app[CONFIG], "liuyang")
    path = link.removeprefix(client.server.app[CONFIG].server.public_url)
    assert (await client.head(path, allow_redirects=False)).status == 200
    assert (await client.get(path, allow_redirects=False)).status == 303


async def test_expired_forged_and_foreign_links_are_refused_without_a_session(app_client):
    client = await sandbox_client(app_client)
    user_id = await salesperson(engine_of(client), "liuyang")
    ring = client.server.app[CONFIG].keyring
    expired = login_links.issue(ring, user_id, now=int(time.time()) - 3600, ttl_s=900)
    resp = await client.get(f"/m/login?token={expired}", allow_redirects=False)
    assert resp.status == 410 and "已过期" in await resp.text()
    good = login_links.issue(ring, user_id, now=int(time.time()), ttl_s=900)
    flipped = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    other_key = login_links.issue(login_links_ring(), user_id, now=int(time.time()), ttl_s=900)
    for token in (flipped, other_key, "1.abc", "", "x" * 500, "1.%E4%BD%A0"):
        resp = await client.get(f"/m/login?token={token}", allow_redirects=False)
        assert resp.status == 400 and "无效" in await resp.text(), token
    assert session_cookie(client) is None
    # The untouched link still works: refusing the others spent nothing.
    assert (await client.get(f"/m/login?token={good}", allow_redirects=False)).status == 303


def login_links_ring():  # noqa: ANN201
    from bot.crypto.keyring import KeyRing

    return KeyRing([b"another deployment's secret key, 32+ bytes long"])


async def test_a_disabled_user_gets_no_session_from_a_link_issued_before(app_client):
    client = await sandbox_client(app_client)
    user_id = await salesperson(engine_of(client), "liuyang")
    _, link = await login_link(client.server.app[CONFIG], "liuyang")
    await disable(engine_of(client), user_id)
    resp = await client.get(link.removeprefix(client.server.app[CONFIG].server.public_url), allow_redirects=False)
    assert resp.status == 403 and session_cookie(client) is None
    assert (await login_link(client.server.app[CONFIG], "liuyang"))[0] == 2  # and the CLI issues no new one


async def test_live_mode_has_no_login_links(app_client, fake):
    client = await live_client(app_client, fake)
    user_id = await salesperson(engine_of(client), "liuyang", wecom_userid="LiuYang")
    code, _ = await login_link(client.server.app[CONFIG], "liuyang")
    assert code == 2  # the CLI refuses: OAuth only
    token = login_links.issue(client.server.app[CONFIG].keyring, user_id, now=int(time.time()), ttl_s=900)
    resp = await client.get(f"/m/login?token={token}", allow_redirects=False)
    assert resp.status == 404 and session_cookie(client) is None


async def test_the_cli_names_the_sandbox_rule(app_client):
    client = await sandbox_client(app_client, wechat={"mode": "sandbox"})
    args = argparse.Namespace(command="user", user_command="login-link", name="nobody", config="-")
    from bot.people.cli import run

    assert await run(args, client.server.app[CONFIG].database, config=client.server.app[CONFIG]) == 2


# ---- WeCom OAuth ----------------------------------------------------------------------------------------------

async def _authorize(client, path: str = "/m/auth?next=/m/%3Ftab%3Daccepted") -> tuple[str, dict[str, list[str]]]:
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 302
    location = resp.headers["Location"]
    return location, parse_qs(urlsplit(location).query)


async def test_wecom_oauth_maps_the_member_and_opens_a_session(app_client, fake):
    client = await live_client(app_client, fake)
    await salesperson(engine_of(client), "liuyang", display_name="刘洋", wecom_userid="LiuYang")
    location, query = await _authorize(client)
    assert location.startswith(fake.base_url + "/connect/oauth2/authorize?") and location.endswith("#wechat_redirect")
    assert query["appid"] == [CORP_ID] and query["scope"] == ["snsapi_base"] and query["response_type"] == ["code"]
    assert query["agentid"] == ["1000002"] and query["state"][0]
    assert query["redirect_uri"][0].startswith(client.server.app[CONFIG].server.public_url + "/m/auth/callback")
    fake.state.oauth_openid = "LiuYang"  # whom WeCom's authorize page says the visitor is
    async with client.session.get(location.split("#")[0], allow_redirects=False) as at_wecom:
        assert at_wecom.status == 302
        callback = at_wecom.headers["Location"]
    resp = await client.get(URL(callback).path_qs, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/m/?tab=accepted", await resp.text()
    assert session_cookie(client)
    assert "刘洋" in await (await client.get("/m/")).text()
    # The same code again (a reload, or a copied URL) with a valid state: refused here before WeCom is asked.
    client.session.cookie_jar.clear()
    _, fresh = await _authorize(client)
    used = parse_qs(urlsplit(callback).query)["code"][0]
    again = await client.get(URL("/m/auth/callback").with_query(code=used, state=fresh["state"][0]).path_qs,
                             allow_redirects=False)
    assert again.status == 400 and "已使用" in await again.text() and session_cookie(client) is None
    assert fake.state.count("/cgi-bin/auth/getuserinfo") == 1


async def test_the_fake_refuses_a_reused_code_with_40029(app_client, fake):
    client = await live_client(app_client, fake)
    api = client.server.app[SERVICES].wecom_api
    code = issue_wecom_code(fake.state, "LiuYang")
    assert (await api.get_user_info_by_code(code))["userid"] == "LiuYang"
    for bad in (code, "CODE-forged"):
        try:
            await api.get_user_info_by_code(bad)
        except WeChatAPIError as exc:
            assert exc.errcode == 40029
        else:
            raise AssertionError("a used or forged code was accepted")
    fake.state.expire_oauth_codes()
    late = issue_wecom_code(fake.state, "LiuYang")
    fake.state.expire_oauth_codes()
    try:
        await api.get_user_info_by_code(late)
    except WeChatAPIError as exc:
        assert exc.errcode == 40029
    else:
        raise AssertionError("an expired code was accepted")


async def _callback(client, fake, userid: str, *, state: str | None = None):  # noqa: ANN202
    _, query = await _authorize(client, "/m/auth")
    code = issue_wecom_code(fake.state, userid)
    return await client.get(URL("/m/auth/callback").with_query(code=code, state=state or query["state"][0]),
                            allow_redirects=False)


async def test_expired_forged_and_foreign_codes_get_a_clear_page_and_no_session(app_client, fake):
    client = await live_client(app_client, fake)
    engine = engine_of(client)
    await salesperson(engine, "liuyang", wecom_userid="LiuYang")
    disabled = await salesperson(engine, "gone", wecom_userid="Gone")
    await disable(engine, disabled)
    _, query = await _authorize(client, "/m/auth")
    code = issue_wecom_code(fake.state, "LiuYang")
    fake.state.expire_oauth_codes()
    expired = await client.get(URL("/m/auth/callback").with_query(code=code, state=query["state"][0]),
                               allow_redirects=False)
    assert expired.status == 400 and "授权已失效" in await expired.text()
    forged = await client.get(URL("/m/auth/callback").with_query(code="CODE-forged", state=query["state"][0]),
                              allow_redirects=False)
    assert forged.status == 400
    wrong_state = await _callback(client, fake, "LiuYang", state="c3RhdGU")
    assert wrong_state.status == 400 and "登录链接无效" in await wrong_state.text()
    client.session.cookie_jar.clear()  # a code fetched in another browser: no state cookie here
    no_cookie = await client.get(URL("/m/auth/callback").with_query(code=issue_wecom_code(fake.state, "LiuYang"),
                                                                    state=query["state"][0]), allow_redirects=False)
    assert no_cookie.status == 400
    unknown = await _callback(client, fake, "Stranger")
    assert unknown.status == 403 and "尚未开通" in await unknown.text()
    gone = await _callback(client, fake, "Gone")
    assert gone.status == 403 and "停用" in await gone.text()
    assert session_cookie(client) is None
    refused = await audit_rows(client, action="mobile.sign_in_refused")
    assert [(e.outcome, (e.after or {}).get("reason")) for e in refused] == [("denied", "unknown_member"),
                                                                           ("denied", "disabled")]
    # The unknown member is told apart by a hash of the userid, never the userid itself.
    assert refused[0].actor_user_id is None and refused[0].actor_label == member_label("Stranger")
    assert "Stranger" not in repr([(e.actor_label, e.target_id, e.after) for e in refused])


async def test_a_member_bound_to_two_enabled_users_signs_in_as_neither(app_client, fake):
    """users.wecom_userid is not unique: a member bound to two enabled users is refused (signing in as either
    could be the wrong person), audited without the userid; a disabled twin does not count."""
    client = await live_client(app_client, fake)
    engine = engine_of(client)
    first = await salesperson(engine, "liuyang", display_name="刘洋", wecom_userid="LiuYang")
    second = await salesperson(engine, "liuyang2", display_name="刘洋（二）", wecom_userid="LiuYang")
    twice = await _callback(client, fake, "LiuYang")
    assert twice.status == 403 and "多个" in await twice.text()
    assert session_cookie(client) is None
    (entry,) = await audit_rows(client, action="mobile.sign_in_refused")
    assert entry.outcome == "denied" and entry.actor_user_id is None
    assert entry.after == {"reason": "ambiguous_member", "via": "wecom_oauth", "user_ids": [first, second]}
    assert entry.actor_label == member_label("LiuYang") and "LiuYang" not in repr((entry.target_id, entry.after))

    await disable(engine, first)  # the disabled one no longer counts: the other signs in
    resp = await _callback(client, fake, "LiuYang")
    assert resp.status == 303 and session_cookie(client)
    (signed,) = await audit_rows(client, action="mobile.sign_in")
    assert signed.actor_user_id == second
    assert "刘洋（二）" in await (await client.get("/m/")).text()


async def test_a_disabled_user_bound_first_does_not_shadow_the_enabled_one(app_client, fake):
    client = await live_client(app_client, fake)
    engine = engine_of(client)
    gone = await salesperson(engine, "gone", display_name="离职", wecom_userid="LiuYang")  # the lower id
    await disable(engine, gone)
    me = await salesperson(engine, "liuyang", display_name="刘洋", wecom_userid="LiuYang")
    resp = await _callback(client, fake, "LiuYang")
    assert resp.status == 303 and session_cookie(client)
    assert [e.actor_user_id for e in await audit_rows(client, action="mobile.sign_in")] == [me]
    assert await audit_rows(client, action="mobile.sign_in_refused") == []


async def test_signed_out_pages_go_through_wecom_in_live_mode(app_client, fake):
    client = await live_client(app_client, fake)
    resp = await client.get("/m/leads/5", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/m/auth?next=%2Fm%2Fleads%2F5"
    _, query = await _authorize(client, "/m/auth?next=//evil.example")
    assert parse_qs(urlsplit(query["redirect_uri"][0]).query)["next"] == ["/m/"]  # never another site


async def test_the_redis_claim_is_what_makes_a_link_single_use(app_client):
    client = await sandbox_client(app_client)
    user_id = await salesperson(engine_of(client), "liuyang")
    config, redis = client.server.app[CONFIG], client.server.app[REDIS]
    token = login_links.issue(config.keyring, user_id, now=int(time.time()), ttl_s=60)
    state, grant = login_links.verify(config.keyring, token, now=int(time.time()))
    assert state is login_links.LinkState.OK and grant is not None and grant.user_id == user_id
    assert await login_links.claim(redis, config.redis.key_prefix, grant, now=int(time.time()))
    assert not await login_links.claim(redis, config.redis.key_prefix, grant, now=int(time.time()))
    assert 0 < await redis.ttl(next(iter(await redis.keys(config.redis.key_prefix + "mobile:login_link:*")))) <= 120
