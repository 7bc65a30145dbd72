"""Who is signed in, and the CSRF check: one middleware in front of every /console/ page.

It loads the session of the cookie (sdr_console/web/sessions.py) and its user; a user disabled since sign-in
ends the session there. Every state-changing request must carry the CSRF token (sdr_console/web/csrf.py);
a refusal is a 403 page in Chinese and an audit entry.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from bot.keys import CONFIG, SESSIONS
from sdr_console.web.assets import PREFIX
from sdr_console.web.audit_log import DENIED, audit
from sdr_console.web.csrf import LOGIN_COOKIE, LOGIN_PATH, given_token, login_token_ok, session_token_ok
from sdr_console.web.render import render
from sdr_console.web.sessions import COOKIE_NAME, COOKIE_PATH, Session, SessionStore
from storage.repos.users import user_by_id

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STORE = web.AppKey("console_sessions", SessionStore)
CSRF_REFUSED = "请求缺少有效的安全令牌（CSRF），操作未执行。请刷新页面后重试。"


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    id: int
    username: str
    display_name: str
    role: str


@dataclass(frozen=True, slots=True)
class SignedIn:
    sid: str
    session: Session
    user: ConsoleUser


SIGNED_IN = web.RequestKey("console_signed_in", SignedIn | None)


async def _load_user(request: web.Request, user_id: int) -> ConsoleUser | None:
    async with request.app[SESSIONS]() as db:
        user = await user_by_id(db, user_id)
    if user is None or user.disabled_at is not None:
        return None
    return ConsoleUser(user.id, user.username, user.display_name or user.username, user.role)


async def load_signed_in(request: web.Request) -> SignedIn | None:
    """The session of the request's cookie and its (still enabled) user, or None."""
    sid = request.cookies.get(COOKIE_NAME)
    if not sid:
        return None
    store = request.app[STORE]
    session = await store.load(sid)
    if session is None:
        return None
    user = await _load_user(request, session.user_id)
    if user is None:  # disabled or removed since sign-in: the session ends now
        await store.delete(sid)
        return None
    return SignedIn(sid, session, user)


def signed_in(request: web.Request) -> SignedIn | None:
    return request.get(SIGNED_IN)


def require_user(request: web.Request) -> SignedIn:
    """The signed-in user, or a redirect to the sign-in page (coming back here afterwards)."""
    current = signed_in(request)
    if current is None:
        login = f"{LOGIN_PATH}?next={quote(request.path_qs, safe='')}"
        redirect: web.HTTPException
        if request.headers.get("HX-Request") == "true":  # htmx would swap the sign-in page into a fragment
            redirect = web.HTTPUnauthorized(headers={"HX-Redirect": login}, text="请先登录")
        else:
            redirect = web.HTTPSeeOther(login)
        if COOKIE_NAME in request.cookies:  # expired, signed out elsewhere or disabled: the browser forgets it too
            redirect.del_cookie(COOKIE_NAME, path=COOKIE_PATH)
        raise redirect
    return current


async def _csrf_ok(request: web.Request, current: SignedIn | None) -> bool:
    given = await given_token(request)
    if current is not None and session_token_ok(current.session.csrf, given):
        return True
    # Signing in (again, perhaps from a stale tab): the sign-in form's own token.
    return request.path == LOGIN_PATH and login_token_ok(request.app[CONFIG].keyring,
                                                         request.cookies.get(LOGIN_COOKIE), given)


@web.middleware
async def console_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/console/") or request.path.startswith(PREFIX):
        return await handler(request)
    current = await load_signed_in(request)
    request[SIGNED_IN] = current
    if request.method not in SAFE_METHODS and not await _csrf_ok(request, current):
        # Audited for a signed-in user (someone's browser was used against them); an anonymous refusal has no
        # one to attribute it to, and recording each would let anyone fill the audit log.
        if current is not None:
            await audit(request, "console.csrf_refused", user_id=current.user.id, username=current.user.username,
                        outcome=DENIED, detail={"method": request.method, "path": request.path})
        else:
            log.info("refused %s %s: no valid CSRF token", request.method, request.path)
        # Signed out meanwhile (expired, or in another tab)? Then signing in again is the way on.
        link, label = (None, None) if current else (LOGIN_PATH, "重新登录")
        return render(request, "message.html", 403, title="操作被拒绝", message=CSRF_REFUSED, user=None, link=link,
                      link_label=label)
    return await handler(request)
