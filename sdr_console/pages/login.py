"""Signing in and out of the console: ``GET|POST /console/login``, ``POST /console/logout``.

A wrong password and an unknown user get the same answer, after the same work (a password hash is checked
either way), so the page does not tell which user names exist. Every sign-in starts a new session id
(fixation), and any session the browser brought is ended first.
"""

from __future__ import annotations

import asyncio
from functools import cache

from aiohttp import web

from bot.keys import CONFIG, SESSIONS
from bot.limits.web import RateLimited, limit_identity
from bot.people.passwords import hash_password, verify_password
from leads.content import bad_text
from sdr_console.web.audit_log import DENIED, audit
from sdr_console.web.csrf import LOGIN_COOKIE, LOGIN_PATH, login_token, new_login_nonce
from sdr_console.web.forms import read_form, text_field
from sdr_console.web.guard import STORE, signed_in
from sdr_console.web.render import render
from sdr_console.web.sessions import COOKIE_NAME, COOKIE_PATH
from storage.repos.users import user_by_name

HOME = "/console/"
MAX_FIELD = 200
WRONG = "用户名或密码错误"
DISABLED = "该账号已停用，请联系管理员"
MISSING = "请输入用户名和密码"


@cache
def _decoy_hash() -> str:
    """Checked when the user does not exist, so that answer takes as long as a wrong password."""
    return hash_password("leadrelay-decoy-password")


def safe_next(value: str | None) -> str:
    """Only a path of the console itself: never another site (``//evil``, ``/\\evil``) after sign-in."""
    if value and value.startswith(HOME) and not value.startswith(("//", "/\\")) and "\\" not in value \
            and len(value) <= 2000 and value.isprintable():
        return value
    return HOME


def _secure(request: web.Request) -> bool:
    return request.app[CONFIG].server.public_url.startswith("https://")


def _form(request: web.Request, status: int = 200, *, error: str | None = None, username: str = "",
          next_url: str = HOME) -> web.Response:
    nonce = request.cookies.get(LOGIN_COOKIE)
    fresh = not nonce or len(nonce) > 64 or not nonce.isascii()
    if fresh:
        nonce = new_login_nonce()
    assert nonce is not None
    resp = render(request, "login.html", status, title="登录", error=error, username=username, next_url=next_url,
                  csrf=login_token(request.app[CONFIG].keyring, nonce), user=None)
    if fresh:
        resp.set_cookie(LOGIN_COOKIE, nonce, path=LOGIN_PATH, httponly=True, samesite="Strict",
                        secure=_secure(request))
    return resp


async def login_page(request: web.Request) -> web.StreamResponse:
    next_url = safe_next(request.query.get("next"))
    if signed_in(request) is not None:
        raise web.HTTPSeeOther(next_url)
    return _form(request, next_url=next_url)


async def login(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if form is None:
        return _form(request, 400, error=MISSING)
    username, password = text_field(form, "username") or "", form.get("password")
    next_url = safe_next(text_field(form, "next"))
    if not username or not isinstance(password, str) or not password or bad_text(password):
        return _form(request, 400, error=MISSING, username=username[:MAX_FIELD], next_url=next_url)
    if len(username) > MAX_FIELD or len(password) > 1024:
        return _form(request, 400, error=WRONG, next_url=next_url)
    try:
        await limit_identity(request, "console_login_per_user", username.casefold())
    except RateLimited as exc:
        resp = _form(request, 429, error=f"登录尝试过于频繁，请 {exc.retry_after} 秒后再试。", username=username,
                     next_url=next_url)
        resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    async with request.app[SESSIONS]() as db:
        user = await user_by_name(db, username)
    # Hashing is deliberately slow: off the event loop.
    stored = user.password_hash if user else await asyncio.to_thread(_decoy_hash)
    ok = await asyncio.to_thread(verify_password, stored, password)
    if user is None or not ok:
        if user is not None:  # an unknown name is not recorded: it may be a password typed in the wrong field
            await audit(request, "console.sign_in_failed", user_id=user.id, username=user.username, outcome=DENIED)
        return _form(request, 401, error=WRONG, username=username, next_url=next_url)
    if user.disabled_at is not None:
        await audit(request, "console.sign_in_refused", user_id=user.id, username=user.username, outcome=DENIED,
                    detail={"reason": "disabled"})
        return _form(request, 403, error=DISABLED, username=username, next_url=next_url)
    store = request.app[STORE]
    await store.delete(request.cookies.get(COOKIE_NAME))  # whatever session the browser brought ends here
    sid, _ = await store.create(user.id)
    await audit(request, "console.sign_in", user_id=user.id, username=user.username)
    resp = web.HTTPSeeOther(next_url)
    cfg = request.app[CONFIG]
    resp.set_cookie(COOKIE_NAME, sid, path=COOKIE_PATH, httponly=True, samesite="Lax", secure=_secure(request),
                    max_age=cfg.console.session_max_s)
    resp.del_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
    raise resp


async def logout(request: web.Request) -> web.StreamResponse:
    current = signed_in(request)
    await request.app[STORE].delete(request.cookies.get(COOKIE_NAME))
    if current is not None:
        await audit(request, "console.sign_out", user_id=current.user.id, username=current.user.username)
    resp = web.HTTPSeeOther(LOGIN_PATH)
    resp.del_cookie(COOKIE_NAME, path=COOKIE_PATH)
    raise resp


def add_routes(app: web.Application) -> None:
    app.router.add_get(LOGIN_PATH, login_page)
    app.router.add_post(LOGIN_PATH, login)
    app.router.add_post("/console/logout", logout)
