"""Console sign-in on both backends: sessions (a new id at sign-in, sign-out ends it, idle and absolute expiry,
disabled users), CSRF, the sign-in rate limits, redirects and escaping."""

from __future__ import annotations

import asyncio

import pytest

from bot.crypto.keyring import Purpose
from bot.keys import CONFIG, ENGINE, REDIS
from sdr_console.pages.login import safe_next
from sdr_console.web.csrf import LOGIN_COOKIE
from sdr_console.web.guard import STORE
from sdr_console.web.sessions import COOKIE_NAME
from storage.db import session_factory
from storage.repos.audit import list_audit
from tests.sdr_console.console_support import (
    PASSWORD,
    csrf_of,
    disable,
    login_token,
    make_user,
    session_cookie,
    set_session_cookie,
    sign_in,
)

CHINESE_WRONG = "用户名或密码错误"


async def audited(engine) -> list[tuple[str, str]]:
    async with session_factory(engine)() as session:
        return [(e.action, e.outcome) for e in reversed(await list_audit(session))]


async def test_root_and_the_console_lead_to_sign_in(app_client) -> None:
    client = await app_client()
    for path in ("/", "/console"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/console/"
    resp = await client.get("/console/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/login?next=/console/"
    resp = await client.get("/console/", headers={"HX-Request": "true"}, allow_redirects=False)
    assert resp.status == 401 and resp.headers["HX-Redirect"] == "/console/login?next=%2Fconsole%2F"
    resp = await client.get("/console/login")
    html = await resp.text()
    assert resp.status == 200 and 'name="username"' in html and 'name="password"' in html and "登录" in html
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_sign_in_gives_a_new_session_and_sign_out_ends_it(app_client) -> None:
    client = await app_client()
    app = client.server.app
    await make_user(app[ENGINE], "chen", display_name="陈静", role="sdr")
    set_session_cookie(client, "planted-by-an-attacker")
    resp = await sign_in(client, "chen")
    assert resp.status == 303 and resp.headers["Location"] == "/console/"
    set_cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Secure" not in set_cookie
    sid = session_cookie(client)
    assert sid and sid != "planted-by-an-attacker" and len(sid) >= 40
    page = await client.get("/console/")
    html = await page.text()
    assert page.status == 200 and "陈静" in html and "SDR</span>" in html and "各阶段线索" in html

    # Redis holds a keyed hash of the id, never the id itself, and only the user id (plus times and CSRF token).
    keys = [k async for k in app[REDIS].scan_iter(match=f"{app[CONFIG].redis.key_prefix}console:session:*")]
    assert len(keys) == 1 and sid not in str(keys[0])
    assert sid not in str(await app[REDIS].get(keys[0]))

    # Signing in again (a second tab) replaces the session: the earlier id is dead.
    resp = await sign_in(client, "chen")
    second = session_cookie(client)
    assert resp.status == 303 and second and second != sid
    set_session_cookie(client, sid)
    assert (await client.get("/console/", allow_redirects=False)).status == 303
    set_session_cookie(client, second)

    resp = await sign_in(client, "chen")
    current = session_cookie(client)
    token = csrf_of(await (await client.get("/console/")).text())
    resp = await client.post("/console/logout", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/login"
    set_session_cookie(client, current)  # a copy of the cookie kept by a thief
    assert (await client.get("/console/", allow_redirects=False)).status == 303
    assert [k async for k in app[REDIS].scan_iter(match=f"{app[CONFIG].redis.key_prefix}console:session:*")] == []
    assert await audited(app[ENGINE]) == [("console.sign_in", "ok")] * 3 + [("console.sign_out", "ok")]


async def test_wrong_password_and_unknown_user_look_the_same(app_client) -> None:
    client = await app_client()
    await make_user(client.server.app[ENGINE], "wang")
    token = await login_token(client)
    wrong = await sign_in(client, "wang", "not-the-password", token=token)
    unknown = await sign_in(client, "nobody", "not-the-password", token=token)
    wrong_html, unknown_html = await wrong.text(), await unknown.text()
    assert wrong.status == unknown.status == 401
    assert CHINESE_WRONG in wrong_html and CHINESE_WRONG in unknown_html
    assert wrong_html.replace('value="wang"', "") == unknown_html.replace('value="nobody"', "")
    assert session_cookie(client) is None
    # The known user's failure is audited; the unknown name is not (it may be a password typed in the wrong box).
    assert await audited(client.server.app[ENGINE]) == [("console.sign_in_failed", "denied")]
    missing = await client.post("/console/login", data={"username": "wang", "csrf_token": token},
                                allow_redirects=False)
    assert missing.status == 400 and "请输入用户名和密码" in await missing.text()


async def test_state_changes_without_the_csrf_token_are_refused(app_client) -> None:
    client = await app_client()
    await make_user(client.server.app[ENGINE], "li")
    # The sign-in form itself: no token, a forged one, a token without its cookie.
    for data in ({"username": "li", "password": "x"}, {"username": "li", "password": "x", "csrf_token": "forged"}):
        resp = await client.post("/console/login", data=data, allow_redirects=False)
        assert resp.status == 403 and "安全令牌" in await resp.text()
    assert (await sign_in(client, "li")).status == 303
    sid = session_cookie(client)
    token = csrf_of(await (await client.get("/console/")).text())
    for headers, data in (({}, {}), ({}, {"csrf_token": "wrong"}), ({"X-CSRF-Token": "wrong"}, None),
                          ({"HX-Request": "true"}, None)):
        resp = await client.post("/console/logout", data=data, headers=headers, allow_redirects=False)
        assert resp.status == 403, headers
        assert "操作被拒绝" in await resp.text()
    assert (await client.get("/console/", allow_redirects=False)).status == 200  # still signed in
    assert await audited(client.server.app[ENGINE]) == [("console.sign_in", "ok")] + [("console.csrf_refused",
                                                                                        "denied")] * 4
    # htmx sends the token as a header (hx-headers on <body>).
    resp = await client.post("/console/logout", headers={"X-CSRF-Token": token, "HX-Request": "true"},
                             allow_redirects=False)
    assert resp.status == 303 and session_cookie(client) != sid


async def test_malformed_sign_in_posts_are_refused_with_a_valid_token(app_client) -> None:
    client = await app_client()
    await make_user(client.server.app[ENGINE], "qian")
    token = await login_token(client)
    header = {"X-CSRF-Token": token}
    for body, ctype in (("username=qian%00&password=x", "application/x-www-form-urlencoded"),
                        ("username=qian&password=%00", "application/x-www-form-urlencoded"),
                        ("username=qian", "application/x-www-form-urlencoded; charset=nope"),
                        ("--x\r\nnonsense", "multipart/form-data; boundary=x"),
                        ('{"username": "qian"}', "application/json")):
        resp = await client.post("/console/login", data=body.encode(), headers={**header, "Content-Type": ctype},
                                 allow_redirects=False)
        assert resp.status == 400, body
        assert "请输入用户名和密码" in await resp.text()
    assert session_cookie(client) is None


async def test_idle_sessions_expire(app_client) -> None:
    client = await app_client(console={"session_idle_s": 1, "session_max_s": 60})
    await make_user(client.server.app[ENGINE], "zhao")
    assert (await sign_in(client, "zhao")).status == 303
    assert (await client.get("/console/", allow_redirects=False)).status == 200
    await asyncio.sleep(1.3)
    resp = await client.get("/console/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/login")


async def test_sessions_expire_after_the_absolute_limit_even_when_used(app_client) -> None:
    client = await app_client(console={"session_idle_s": 2, "session_max_s": 3})
    await make_user(client.server.app[ENGINE], "sun")
    assert (await sign_in(client, "sun")).status == 303
    for _ in range(3):  # in use every 0.9 s: never idle for 2 s
        await asyncio.sleep(0.9)
        assert (await client.get("/console/", allow_redirects=False)).status == 200
    await asyncio.sleep(0.6)  # 3.3 s after sign-in
    assert (await client.get("/console/", allow_redirects=False)).status == 303


async def test_a_disabled_user_is_signed_out_and_cannot_sign_in(app_client) -> None:
    client = await app_client()
    engine = client.server.app[ENGINE]
    user_id = await make_user(engine, "zhou")
    assert (await sign_in(client, "zhou")).status == 303
    await disable(engine, user_id)
    resp = await client.get("/console/", allow_redirects=False)
    assert resp.status == 303
    resp = await sign_in(client, "zhou")
    assert resp.status == 403 and "已停用" in await resp.text() and session_cookie(client) is None


async def test_sign_in_is_rate_limited_per_user(app_client) -> None:
    client = await app_client(rate_limits={"console_login_per_user": "3/1m"})
    await make_user(client.server.app[ENGINE], "wu")
    token = await login_token(client)
    for _ in range(3):
        assert (await sign_in(client, "Wu", "guess", token=token)).status == 401
    resp = await sign_in(client, "wu", token=token)  # even the right password: the window is spent
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert "登录尝试过于频繁" in await resp.text() and session_cookie(client) is None
    assert (await sign_in(client, "other", "guess", token=token)).status == 401  # another name: its own count


async def test_sign_in_is_rate_limited_per_address(app_client) -> None:
    client = await app_client(rate_limits={"console_login_per_ip": "2/1m"})
    token = await login_token(client)
    statuses = [(await sign_in(client, f"user{i}", "guess", token=token)).status for i in range(3)]
    assert statuses == [401, 401, 429]


async def test_markup_in_a_display_name_renders_as_text(app_client) -> None:
    client = await app_client()
    name = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    await make_user(client.server.app[ENGINE], "xss", display_name=name)
    assert (await sign_in(client, "xss")).status == 303
    html = await (await client.get("/console/")).text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<script>alert" not in html and "<img src=x" not in html


async def test_the_secure_flag_follows_an_https_public_url(app_client) -> None:
    client = await app_client(server={"public_url": "https://leads.example.com"})
    await make_user(client.server.app[ENGINE], "he")
    resp = await client.get("/console/login")
    assert "Secure" in resp.headers["Set-Cookie"]
    # The test client speaks plain HTTP, so its cookie jar keeps Secure cookies to itself: sent by hand here.
    nonce, token = resp.cookies[LOGIN_COOKIE].value, csrf_of(await resp.text())
    resp = await client.post("/console/login", data={"username": "he", "password": PASSWORD, "csrf_token": token},
                             headers={"Cookie": f"{LOGIN_COOKIE}={nonce}"}, allow_redirects=False)
    assert resp.status == 303
    session = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith(f"{COOKIE_NAME}="))
    assert "Secure" in session and "HttpOnly" in session


@pytest.mark.parametrize(("value", "expected"), [
    ("/console/leads?stage=mql", "/console/leads?stage=mql"),
    ("//evil.example.com/console/", "/console/"),
    ("/console/\\evil", "/console/"),
    ("https://evil.example.com/console/", "/console/"),
    ("/api/leads", "/console/"),
    ("/console/\nSet-Cookie: x", "/console/"),
    (None, "/console/"),
])
def test_after_sign_in_only_console_paths(value, expected) -> None:
    assert safe_next(value) == expected


async def test_a_touch_never_brings_back_a_deleted_session(app_client) -> None:
    """A request loading the session while another signs out must not write it back."""
    client = await app_client()
    app = client.server.app
    store = app[STORE]
    sid, _ = await store.create(user_id=1)
    assert (await store.load(sid)) is not None
    key = f"{app[CONFIG].redis.key_prefix}console:session:{app[CONFIG].keyring.digest(Purpose.CONSOLE_SESSION, sid)}"
    session = await store.load(sid)
    await store.delete(sid)
    await store._write(key, session, session.seen, touch=True)  # the slower request's touch lands late
    assert await app[REDIS].get(key) is None and await store.load(sid) is None
