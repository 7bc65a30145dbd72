"""What every page of the sales mobile inbox (/m/) shares: rendering with the console's templates and headers,
the WeUI message page, and who is signed in (the console's own sessions: the JSON API accepts the same cookie).

The mobile pages are GET only; everything that changes something goes through the JSON API with the session's
CSRF token (sdr_console/api/auth.py), so /m/ needs no CSRF middleware of its own.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.keys import CONFIG
from sdr_console.web.guard import STORE, SignedIn, load_signed_in
from sdr_console.web.render import render
from sdr_console.web.sessions import COOKIE_NAME, COOKIE_PATH

HOME = "/m/"
AUTH_PATH = "/m/auth"


def page(request: web.Request, name: str, status: int = 200, *, headers: dict[str, str] | None = None,
         **context: Any) -> web.Response:
    """A template of templates/mobile/, with the console's security headers (plus ``headers``)."""
    resp = render(request, f"mobile/{name}", status, **context)
    if headers:
        resp.headers.update(headers)
    return resp


def message(request: web.Request, status: int, title: str, text: str, *, link: str | None = HOME,
            link_label: str = "返回待办", icon: str = "warn") -> web.Response:
    """A WeUI result page (weui-msg): an error, a refusal, or what to do next."""
    return page(request, "message.html", status, title=title, text=text, link=link, link_label=link_label,
                icon=icon)


def redirect(location: str, status: int = 302) -> web.Response:
    """A redirect that may carry cookies (an HTTPException is raised, not returned)."""
    return web.Response(status=status, headers={"Location": location, "Cache-Control": "no-store"})


def is_live_wecom(request: web.Request) -> bool:
    cfg = request.app[CONFIG]
    return cfg.wechat.mode == "live" and cfg.wecom.enabled


def safe_next(value: str | None) -> str:
    """Only a page of the mobile inbox itself, never another site, after sign-in."""
    if value and value.startswith(HOME) and not value.startswith(("//", "/\\")) and "\\" not in value \
            and len(value) <= 500 and value.isprintable():
        return value
    return HOME


async def require_user(request: web.Request) -> SignedIn | web.Response:
    """The signed-in user; else, inside a live WeCom app, a redirect through WeCom OAuth (back here after), and
    in sandbox mode a page that says how to get a sign-in link."""
    current = await load_signed_in(request)
    if current is not None:
        return current
    if is_live_wecom(request):
        resp = redirect(f"{AUTH_PATH}?next={quote(request.path_qs, safe='')}")
    else:
        resp = message(request, 401, "请先登录",
                       "请使用管理员发给您的登录链接打开移动工作台（leadrelay user login-link 用户名）。",
                       link=None)
    if COOKIE_NAME in request.cookies:  # expired or disabled: the browser forgets it too
        resp.del_cookie(COOKIE_NAME, path=COOKIE_PATH)
    return resp


def secure(request: web.Request) -> bool:
    return request.app[CONFIG].server.public_url.startswith("https://")


async def start_session(request: web.Request, user_id: int, location: str) -> web.HTTPException:
    """A new console session for ``user_id`` (any session the browser brought ends), and the redirect that
    sets its cookie. 303: the address bar loses the sign-in link's token or the OAuth code."""
    store = request.app[STORE]
    await store.delete(request.cookies.get(COOKIE_NAME))
    sid, _ = await store.create(user_id)
    resp = web.HTTPSeeOther(location, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
    resp.set_cookie(COOKIE_NAME, sid, path=COOKIE_PATH, httponly=True, samesite="Lax", secure=secure(request),
                    max_age=request.app[CONFIG].console.session_max_s)
    return resp
