"""Signing in to the mobile inbox: WeCom web OAuth in live mode, a single-use link in sandbox mode.

``GET /m/auth?next=`` sends the visitor to WeCom's authorize page with a ``state`` bound to a random nonce in a
cookie (scoped to /m/auth), so a code fetched in someone else's browser cannot sign this browser in (login
CSRF). ``GET /m/auth/callback?code=&state=`` checks the state, claims the code (each code once, here too, before
WeCom is asked), asks WeCom who it is (``auth/getuserinfo``), maps the member's userid to users.wecom_userid and
opens a console session. ``GET /m/login?token=`` does the same for a link of ``leadrelay user login-link``
(bot/people/login_links.py), in sandbox mode only. Both end in a 303 to /m/: the code or token leaves the address
bar. Neither the token nor the code is ever logged.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession
from yarl import URL

from bot.crypto import b64
from bot.crypto.keyring import Purpose
from bot.errors import WeChatAPIError
from bot.keys import CONFIG, REDIS, SESSIONS
from bot.limits.web import LIMITER
from bot.people import login_links
from bot.wechat.codes import claim_code
from sdr_console.mobile.web import (
    AUTH_PATH,
    HOME,
    is_live_wecom,
    message,
    redirect,
    safe_next,
    secure,
    start_session,
)
from sdr_console.mobile.wecom import WECOM, authorize_url
from sdr_console.web.audit_log import DENIED, audit
from storage.models import User
from storage.repos import audit as audit_repo
from storage.repos.handoff_cards import member_label, sole_enabled, users_by_wecom_userid
from storage.repos.users import user_by_id
from storage.tx import in_transaction

log = logging.getLogger(__name__)
CALLBACK_PATH = "/m/auth/callback"
STATE_COOKIE = "lr_m_oauth"
STATE_MAX_AGE_S = 600
MAX_CODE_LEN = 128
_STATE_CONTEXT = b"mobile-wecom-oauth:"
RETRY = "请从企业微信工作台重新打开。"
REFUSED = "mobile.sign_in_refused"


def _state(request: web.Request, nonce: str) -> str:
    return b64.encode(request.app[CONFIG].keyring.mac(Purpose.OAUTH_STATE, _STATE_CONTEXT + nonce.encode()))


def _state_ok(request: web.Request) -> bool:
    nonce, given = request.cookies.get(STATE_COOKIE), request.query.get("state")
    if not nonce or not given or len(nonce) > 64 or len(given) > 128 or not nonce.isascii():
        return False
    try:
        raw = b64.decode(given)
    except ValueError:
        return False
    return request.app[CONFIG].keyring.verify_mac(Purpose.OAUTH_STATE, _STATE_CONTEXT + nonce.encode(), raw)


async def start_oauth(request: web.Request) -> web.StreamResponse:
    if not is_live_wecom(request) or WECOM not in request.app:
        return message(request, 404, "未启用企业微信登录",
                       "当前为沙箱模式：请使用管理员发给您的登录链接（leadrelay user login-link 用户名）。", link=None)
    cfg = request.app[CONFIG]
    next_url = safe_next(request.query.get("next"))
    # The public URL, not the request's: behind a proxy the request names 127.0.0.1, and WeCom redirects only to
    # the app's trusted domain.
    callback = URL(cfg.server.public_url.rstrip("/") + CALLBACK_PATH).with_query(next=next_url)
    nonce = secrets.token_urlsafe(24)
    resp = redirect(authorize_url(cfg.wecom, str(callback), _state(request, nonce)))
    resp.set_cookie(STATE_COOKIE, nonce, path=AUTH_PATH, httponly=True, samesite="Lax", secure=secure(request),
                    max_age=STATE_MAX_AGE_S)
    return resp


async def _signed_in(request: web.Request, user: User | None, how: str, next_url: str) -> web.StreamResponse:
    if user is None:
        return message(request, 403, "无法登录", "您的企业微信账号尚未开通线索工作台，请联系管理员。", link=None)
    if user.disabled_at is not None:
        await audit(request, REFUSED, user_id=user.id, username=user.username, outcome=DENIED,
                    detail={"reason": "disabled", "via": how})
        return message(request, 403, "账号已停用", "该账号已停用，请联系管理员。", link=None)
    await audit(request, "mobile.sign_in", user_id=user.id, username=user.username, detail={"via": how})
    resp = await start_session(request, user.id, next_url)
    resp.del_cookie(STATE_COOKIE, path=AUTH_PATH)
    raise resp


async def oauth_callback(request: web.Request) -> web.StreamResponse:
    wecom = request.app.get(WECOM)
    if wecom is None or not is_live_wecom(request):
        return message(request, 404, "未启用企业微信登录", "当前为沙箱模式，无法使用企业微信登录。", link=None)
    code = request.query.get("code", "")
    if not code or len(code) > MAX_CODE_LEN or not code.isascii() or not _state_ok(request):
        return message(request, 400, "登录链接无效", "登录链接无效或已过期，" + RETRY, link=AUTH_PATH,
                       link_label="重新登录")
    cfg = request.app[CONFIG]
    if not await claim_code(request.app[REDIS], cfg.redis.key_prefix, "wecom_web", code):
        return message(request, 400, "授权已使用", "该授权码已使用过，" + RETRY, link=AUTH_PATH, link_label="重新登录")
    try:
        answer = await wecom.api.get_user_info_by_code(code)
    except WeChatAPIError as exc:
        # 40029: unknown, used or expired code (WeCom does not tell which).
        log.info("WeCom web OAuth code refused: errcode %s", exc.errcode)
        return message(request, 400, "授权已失效", "企业微信授权已失效（授权码无效、已使用或已过期），" + RETRY,
                       link=AUTH_PATH, link_label="重新登录")
    except OSError as exc:  # the transport failed (or no access token in time): WeCom may be down
        log.warning("WeCom web OAuth exchange failed: %s", type(exc).__name__)
        return message(request, 502, "企业微信暂不可用", "企业微信服务暂时不可用，请稍后重试。", link=AUTH_PATH,
                       link_label="重试")
    userid = answer.get("userid") or answer.get("UserId")
    if not isinstance(userid, str) or not userid:  # someone outside the company (an openid only)
        await _member_refused(request, "wecom:external", "not_a_member")
        return message(request, 403, "无法登录", "仅限本企业成员使用。", link=None)
    async with request.app[SESSIONS]() as db:
        users = await users_by_wecom_userid(db, userid)
    if not users:
        await _member_refused(request, member_label(userid), "unknown_member")
        return message(request, 403, "无法登录", "您的企业微信账号尚未开通线索工作台，请联系管理员。", link=None)
    user = sole_enabled(users)
    if user is None and users[0].disabled_at is None:  # enabled ones come first: several of them
        # Two enabled users bound to one member: signing in as either could be the wrong person.
        await _member_refused(request, member_label(userid), "ambiguous_member",
                              user_ids=[u.id for u in users if u.disabled_at is None])
        return message(request, 403, "无法登录", "您的企业微信账号绑定了多个工作台账号，请联系管理员。", link=None)
    # Otherwise the one enabled user, or a disabled one (refused, and audited, as such).
    return await _signed_in(request, user or users[0], "wecom_oauth", safe_next(request.query.get("next")))


async def _member_refused(request: web.Request, label: str, reason: str, **detail: Any) -> None:
    """The audit entry of a WeCom sign-in that maps to no single user: no user to name, so the actor is the
    member's label (a hash, never the userid itself)."""
    ip = request.app[LIMITER].clients.of(request)

    async def work(session: AsyncSession) -> None:
        await audit_repo.record(session, action=REFUSED, actor_label=label, target_kind="wecom_member",
                                target_id=label, after={"reason": reason, "via": "wecom_oauth", **detail}, ip=ip,
                                outcome=DENIED)

    await in_transaction(request.app[SESSIONS], work)


async def link_login(request: web.Request) -> web.StreamResponse:
    # Link previews fetch with HEAD: they learn whether the link is valid, but never spend it.
    head = request.method == "HEAD"
    if request.app[CONFIG].wechat.mode != "sandbox":
        return message(request, 404, "登录链接不可用", "请在企业微信中打开线索工作台。", link=None)
    now = int(time.time())
    state, grant = login_links.verify(request.app[CONFIG].keyring, request.query.get("token"), now=now)
    if state is login_links.LinkState.EXPIRED:
        return message(request, 410, "登录链接已过期", "该登录链接已过期，请向管理员重新获取。", link=None)
    if grant is None:
        return message(request, 400, "登录链接无效", "该登录链接无效，请向管理员重新获取。", link=None)
    if head:
        return web.Response(status=200, headers={"Cache-Control": "no-store"})
    cfg = request.app[CONFIG]
    if not await login_links.claim(request.app[REDIS], cfg.redis.key_prefix, grant, now=now):
        return message(request, 410, "登录链接已使用", "该登录链接只能使用一次，请向管理员重新获取。", link=None)
    async with request.app[SESSIONS]() as db:
        user = await user_by_id(db, grant.user_id)
    return await _signed_in(request, user, "login_link", HOME)


def add_routes(app: web.Application) -> None:
    app.router.add_get(AUTH_PATH, start_oauth)
    app.router.add_get(CALLBACK_PATH, oauth_callback)
    app.router.add_get(login_links.PATH, link_login)
