"""Mini-program API: ``POST /api/mp/login`` and ``GET|POST /api/mp/forms/<form>``.

Login turns a ``wx.login`` code into an opaque LeadRelay session token; the ``session_key`` and the
OpenID stay in the database. Forms are validated and stored by the same code as the H5 pages. Every
error is the one JSON shape of bot/web/errors.py (``code`` and ``message`` in Chinese).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.capture.common import CAPTURE, find_form
from bot.capture.idempotency import SubmissionOnce
from bot.capture.submit import CredentialVoided, Submission, known_for, record_submission
from bot.config.capture import FormDef
from bot.crypto.keyring import Purpose
from bot.errors import WeChatAPIError
from bot.keys import CONFIG, EVENTS, REDIS, SCORING, SESSIONS
from bot.limits.web import limit_identity
from bot.web.errors import ApiError, json_response
from bot.web.params import bearer_token, json_object
from bot.wechat.clients import WeChatTransportError
from bot.wechat.codes import claim_code
from bot.wechat.miniprogram import MiniProgramAPI
from bot.wechat.tokens import TokenUnavailable
from leads.form_fields import FIELD_SPECS
from leads.forms import MAX_SOURCE_CODE_LEN, clean_param, fields_to_ask, utm_params, validate_submission
from leads.identity import MP_OPENID, UNIONID, IdentityKey
from storage.models import MiniProgramSession
from storage.repos.leads import LeadRepository
from storage.repos.mp_sessions import find_mp_session, open_mp_session
from storage.repos.submission_keys import AlreadySubmitted
from storage.tx import in_transaction

if TYPE_CHECKING:  # the transaction in_transaction opens, passed through to the repositories
    from sqlalchemy.ext.asyncio import AsyncSession

MAX_CODE_LEN = 256
_UPSTREAM = (WeChatTransportError, TokenUnavailable, OSError)


def _hash(request: web.Request, token: str) -> str:
    """Keyed with the ring's mini-program subkey: a copy of the table cannot be matched against tokens."""
    return request.app[CONFIG].keyring.digest(Purpose.MP_SESSION, token)


def _mp(request: web.Request) -> MiniProgramAPI:
    mp = request.app[CAPTURE].mp
    if mp is None:
        raise ApiError(503, "mp_disabled", "小程序服务未启用")
    return mp


async def _body(request: web.Request) -> dict[str, Any]:
    return await json_object(request, code="bad_request", message="请求格式不正确，需要 JSON 对象")


def _wechat_error(exc: WeChatAPIError, what: str) -> ApiError:
    if exc.errcode == 40163:
        return ApiError(400, "code_used", f"{what}已使用，请重新获取")
    if exc.errcode == 40029:
        return ApiError(400, "invalid_code", f"{what}无效或已过期，请重新获取")
    if exc.errcode == 45011:
        return ApiError(429, "rate_limited", "操作太频繁，请稍后再试")
    return ApiError(502, "wechat_error", "微信服务暂时不可用，请稍后重试")


async def login(request: web.Request) -> web.Response:
    mp = _mp(request)
    config = request.app[CONFIG]
    code = (await _body(request)).get("code")
    if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE_LEN:
        raise ApiError(400, "missing_code", "缺少登录凭证 code")
    if not await claim_code(request.app[REDIS], config.redis.key_prefix, "mp_login", code):
        raise ApiError(400, "code_used", "登录凭证已使用，请重新调用 wx.login 获取")
    try:
        result = await mp.code2session(code)
    except WeChatAPIError as exc:
        raise _wechat_error(exc, "登录凭证") from exc
    except _UPSTREAM as exc:
        raise ApiError(502, "wechat_unavailable", "微信服务暂时不可用，请稍后重试") from exc
    await limit_identity(request, "mp_login_per_openid", result.openid)  # sessions opened for one user
    token = secrets.token_urlsafe(32)
    ttl = config.capture.mini_program.session_ttl_s
    now = datetime.now(UTC)
    own = [IdentityKey(MP_OPENID, mp.app_id, result.openid)]
    if result.unionid:
        own.append(IdentityKey(UNIONID, "", result.unionid))

    async def store(session: AsyncSession) -> None:
        repo = LeadRepository(session, request.app[SCORING], lambda: now, events=request.app[EVENTS])
        lead = await repo.resolve(own, now=now, inbox_id=None)
        await open_mp_session(session, token_hash=_hash(request, token), lead_id=lead.id, openid=result.openid,
                              session_key=result.session_key, now=now, expires_at=now + timedelta(seconds=ttl))

    await in_transaction(request.app[SESSIONS], store)
    return json_response({"token": token, "expires_in": ttl})


async def _session(request: web.Request) -> MiniProgramSession:
    token = bearer_token(request)  # None for a missing, non-ASCII or malformed header
    if token is None:
        raise ApiError(401, "unauthorized", "请先登录")
    async with request.app[SESSIONS]() as session:
        row = await find_mp_session(session, _hash(request, token))
    if row is None:
        raise ApiError(401, "invalid_token", "登录凭证无效，请重新登录")
    if row.expires_at <= datetime.now(UTC):
        raise ApiError(401, "session_expired", "登录已过期，请重新登录")
    await limit_identity(request, "mp_forms_per_openid", row.openid)  # every signed-in call counts for its user
    return row


def _form(request: web.Request) -> FormDef:
    form = find_form(request)
    if form is None:
        raise ApiError(404, "form_not_found", "表单不存在或已下线")
    return form


async def describe_form(request: web.Request) -> web.Response:
    """The fields still to ask this visitor (progressive profiling), for the mini-program to render."""
    mp = _mp(request)
    mp_session = await _session(request)
    form = _form(request)
    known = await known_for(request.app[SESSIONS], [IdentityKey(MP_OPENID, mp.app_id, mp_session.openid)])
    fields = [{"name": n, "label": FIELD_SPECS[n].label, "type": FIELD_SPECS[n].kind, "required": n in form.required,
               "max_length": FIELD_SPECS[n].max_len,
               "choices": [{"value": c, "label": label} for c, label in FIELD_SPECS[n].choices]}
              for n in fields_to_ask(form, known)]
    return json_response({
        "id": form.id, "title": form.title, "description": form.description, "submit_label": form.submit_label,
        "privacy_text": request.app[CONFIG].capture.bot.privacy_text, "fields": fields})


async def _verified_phone(request: web.Request, mp: MiniProgramAPI, phone_code: str) -> str:
    """The number behind a getPhoneNumber code (each code is used once)."""
    config = request.app[CONFIG]
    if len(phone_code) > MAX_CODE_LEN or not await claim_code(
            request.app[REDIS], config.redis.key_prefix, "mp_phone", phone_code):
        raise ApiError(400, "code_used", "手机号授权码已使用，请重新授权")
    try:
        return (await mp.phone_number(phone_code)).number
    except WeChatAPIError as exc:
        raise _wechat_error(exc, "手机号授权码") from exc
    except _UPSTREAM as exc:
        raise ApiError(502, "wechat_unavailable", "微信服务暂时不可用，请稍后重试") from exc


async def submit(request: web.Request) -> web.Response:
    """Validate and store a form; see bot/capture/idempotency.py for how a retry is stored once."""
    mp = _mp(request)
    config = request.app[CONFIG]
    mp_session = await _session(request)
    form = _form(request)
    body = await _body(request)
    fields, phone_code = body.get("fields", {}), body.get("phone_code")
    if not isinstance(fields, dict) or not (phone_code is None or isinstance(phone_code, str)):
        raise ApiError(400, "bad_request", "请求格式不正确：fields 应为对象，phone_code 应为字符串")
    own = [IdentityKey(MP_OPENID, mp.app_id, mp_session.openid)]
    ask = fields_to_ask(form, await known_for(request.app[SESSIONS], own))
    if phone_code:
        ask = tuple(n for n in ask if n != "phone")  # WeChat supplies a verified number instead
    data = validate_submission(form, fields, ask=ask, consent=body.get("consent") is True, identified=True)
    if not data.ok:
        raise ApiError(400, "invalid_fields", "请检查填写的信息", fields=data.errors)
    now = datetime.now(UTC)
    once = SubmissionOnce(request, body, mp.app_id, mp_session.openid, form.id, now)
    async with once.exclusive():
        if await once.seen():  # a retry: answered as it was the first time, stored once
            return json_response({"code": "ok", "message": form.success_message})
        verified_phone = await _verified_phone(request, mp, phone_code) if phone_code else None
        try:
            await record_submission(request.app[SESSIONS], config, request.app[SCORING], request.app[EVENTS],
                                    Submission(form=form, data=data, own=own, via="miniprogram", utm=utm_params(body),
                                               verified_phone=verified_phone, source_code=clean_param(
                                                   body.get("src"), MAX_SOURCE_CODE_LEN) or None,
                                               own_since_ms=int(mp_session.created_at.timestamp() * 1000),
                                               refuse_voided=True),
                                    now, then=once.then())
        except AlreadySubmitted:
            pass  # a concurrent duplicate with the same key was stored first (Redis was unavailable)
        except CredentialVoided:  # the person was erased while this was on its way (the session is gone)
            raise ApiError(401, "invalid_token", "登录凭证无效，请重新登录") from None
    return json_response({"code": "ok", "message": form.success_message})
