"""The OA web OAuth round trip of an H5 form: bind the visitor's OpenID to the form session silently.

In WeChat's browser the page first sends the visitor to WeChat's authorize URL (``snsapi_base``: no
consent screen) and gets back a single-use code, which becomes the OpenID in the encrypted session cookie.
A cookie bound before the person's data was erased counts as anonymous (bot/capture/erased.py).
"""

from __future__ import annotations

import logging

from aiohttp import web
from yarl import URL

from bot.capture.common import message_page
from bot.capture.erased import voided_by_erasure
from bot.capture.form_tokens import (
    COOKIE_MAX_AGE_S,
    COOKIE_NAME,
    FormSession,
    check_oauth_state,
    decode_session,
    encode_session,
    oauth_state,
)
from bot.config.capture import FormDef
from bot.config.core import Config
from bot.errors import WeChatAPIError
from bot.keys import CONFIG, REDIS, SESSIONS
from bot.wechat.clients import WeChatTransportError
from bot.wechat.codes import claim_code
from bot.wechat.oauth import OAWebOAuth
from leads.identity import OA_OPENID, UNIONID, IdentityKey

log = logging.getLogger(__name__)
OAUTH_PARAMS = ("code", "state")
MAX_CODE_LEN = 128


def in_wechat(request: web.Request) -> bool:
    """WeChat's own browser. WeCom's (``wxwork``) also says MicroMessenger, but OA OAuth fails there."""
    agent = request.headers.get("User-Agent", "")
    return "MicroMessenger" in agent and "wxwork" not in agent


def clean_url(request: web.Request) -> URL:
    """This page without the OAuth parameters (keeps src / utm_*)."""
    query = [(k, v) for k, v in request.query.items() if k not in OAUTH_PARAMS]
    return request.rel_url.with_query(query)


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


def set_session_cookie(response: web.StreamResponse, config: Config, session: FormSession) -> None:
    response.set_cookie(COOKIE_NAME, encode_session(config.keyring, session), max_age=COOKIE_MAX_AGE_S,
                        path="/f/", httponly=True, samesite="Lax",
                        secure=config.server.public_url.startswith("https://"))


async def current_session(request: web.Request) -> FormSession | None:
    """The visitor's form session from the cookie; its person dropped when they were erased after binding.

    What this decides is shown (the page, the fields to ask); a submission checks again in its own transaction
    (bot/capture/submit.py ``own_since_ms``), where an erasure committing meanwhile is seen."""
    config = request.app[CONFIG]
    session = decode_session(config.keyring, request.cookies.get(COOKIE_NAME))
    if session is None or session.openid is None:
        return session
    bound = [IdentityKey(OA_OPENID, config.wechat.app_id, session.openid)]
    if session.unionid:
        bound.append(IdentityKey(UNIONID, "", session.unionid))
    async with request.app[SESSIONS]() as db:
        voided = await voided_by_erasure(db, config, bound, session.bound_ms or 0)
    return session.anonymous() if voided else session


def start(request: web.Request, oauth: OAWebOAuth, form: FormDef, session: FormSession) -> web.StreamResponse:
    """Send the visitor to WeChat; it comes back to this same page with ``code`` and ``state``."""
    config = request.app[CONFIG]
    # The public URL, not the request's: behind nginx the request says 127.0.0.1:8081, and WeChat only
    # redirects to the OA's registered web-authorisation domain.
    redirect_uri = config.server.public_url.rstrip("/") + str(clean_url(request))
    state = oauth_state(config.keyring, form.id, session.sid)
    response = _redirect(oauth.authorize_url(redirect_uri, state))
    set_session_cookie(response, config, session)
    return response


async def finish(request: web.Request, oauth: OAWebOAuth, form: FormDef, session: FormSession
                 ) -> web.StreamResponse:
    """WeChat sent the visitor back with a code: check it, exchange it, bind the OpenID, show the form."""
    config = request.app[CONFIG]
    retry = str(clean_url(request))
    code = request.query.get("code", "")
    # The state ties this return to the session that started it: a code fetched in someone else's
    # browser (login CSRF) cannot bind their OpenID here.
    if not code or len(code) > MAX_CODE_LEN or not check_oauth_state(
            config.keyring, form.id, session.sid, request.query.get("state")):
        return message_page(400, "授权链接无效", "授权链接无效或已过期，请重新打开表单。", link=retry)
    if not await claim_code(request.app[REDIS], config.redis.key_prefix, "oa_web", code):
        return message_page(400, "授权已使用", "该授权码已使用过，请重新打开表单。", link=retry)
    try:
        openid, unionid = await oauth.exchange(code)
    except WeChatAPIError as exc:
        # 40029 invalid (or expired) code, 40163 code already used.
        log.info("OA web OAuth code refused for form %s: %s", form.id, exc)
        return message_page(400, "授权已失效", "微信授权已失效（授权码无效、已使用或已过期），请重新打开表单。",
                            link=retry)
    except (WeChatTransportError, OSError) as exc:
        log.warning("OA web OAuth exchange failed for form %s: %s", form.id, exc)
        return message_page(502, "微信服务暂不可用", "微信服务暂时不可用，请稍后重试。", link=retry)
    response = _redirect(retry)
    set_session_cookie(response, config, FormSession.bound(session.sid, openid, unionid))
    return response
