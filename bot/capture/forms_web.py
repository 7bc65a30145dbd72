"""H5 form pages: ``GET /f/<form>`` shows the form, ``POST /f/<form>`` validates and stores it.

Invalid input shows the form again with the errors in Chinese and stores nothing. Source parameters
(``src``, ``utm_*``) stay in the page URL, which the form posts back to.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.capture import forms_oauth
from bot.capture.common import CAPTURE, find_form, message_page, render
from bot.capture.form_tokens import FormSession, check_csrf, csrf_fingerprint, csrf_token
from bot.capture.submit import Submission, known_for, record_submission
from bot.config.capture import FormDef
from bot.config.core import Config
from bot.keys import CONFIG, EVENTS, REDIS, SCORING, SESSIONS
from bot.limits.web import limit_identity
from leads.form_fields import FIELD_SPECS
from leads.forms import MAX_SOURCE_CODE_LEN, clean_param, fields_to_ask, utm_params, validate_submission
from leads.identity import OA_OPENID, UNIONID, IdentityKey

CONSENT_VALUES = ("yes", "on", "true", "1")
SPENT_TTL_S = 3 * 3600  # longer than a CSRF token lives, so a spent one cannot come back


def own_identities(config: Config, session: FormSession) -> list[IdentityKey]:
    if session.openid is None:
        return []
    own = [IdentityKey(OA_OPENID, config.wechat.app_id, session.openid)]
    if session.unionid:
        own.append(IdentityKey(UNIONID, "", session.unionid))
    return own


def _not_found() -> web.Response:
    return message_page(404, "表单不存在", "您访问的表单不存在或已下线。")


def _field_views(form: FormDef, ask: tuple[str, ...], raw: Mapping[str, Any], errors: Mapping[str, str]
                 ) -> list[dict[str, Any]]:
    views = []
    for name in ask:
        spec = FIELD_SPECS[name]
        value = raw.get(name)
        views.append({"name": name, "label": spec.label, "kind": spec.kind, "max_len": spec.max_len,
                      "placeholder": spec.placeholder, "autocomplete": spec.autocomplete,
                      "choices": spec.choices, "required": name in form.required,
                      "value": value if isinstance(value, str) else "", "error": errors.get(name)})
    return views


def _form_page(request: web.Request, form: FormDef, session: FormSession, ask: tuple[str, ...], *,
               raw: Mapping[str, Any] | None = None, errors: Mapping[str, str] | None = None,
               status: int = 200) -> web.Response:
    config = request.app[CONFIG]
    raw = raw or {}
    response = render(
        "form.html", status, title=form.title, description=form.description, action=str(request.rel_url),
        fields=_field_views(form, ask, raw, errors or {}), errors=errors or {}, skipped=len(ask) < len(form.fields),
        csrf=csrf_token(config.keyring, form.id, session.sid), privacy_text=config.capture.bot.privacy_text,
        consent=raw.get("consent") in CONSENT_VALUES, submit_label=form.submit_label)
    forms_oauth.set_session_cookie(response, config, session)
    return response


async def show_form(request: web.Request) -> web.StreamResponse:
    form = find_form(request)
    if form is None:
        return _not_found()
    config = request.app[CONFIG]
    session = await forms_oauth.current_session(request) or FormSession.new()
    oauth = request.app[CAPTURE].oauth
    if oauth is not None:
        if "code" in request.query:
            return await forms_oauth.finish(request, oauth, form, session)
        if session.openid is None and forms_oauth.in_wechat(request):
            return forms_oauth.start(request, oauth, form, session)
    known = await known_for(request.app[SESSIONS], own_identities(config, session))
    return _form_page(request, form, session, fields_to_ask(form, known))


async def submit_form(request: web.Request) -> web.StreamResponse:
    form = find_form(request)
    if form is None:
        return _not_found()
    config = request.app[CONFIG]
    session = await forms_oauth.current_session(request)
    try:
        raw = await request.post()
    except (ValueError, LookupError, HttpProcessingError):  # not UTF-8, an unknown charset, a broken multipart
        return message_page(400, "提交内容无效", "提交的内容编码有误，请在微信或浏览器中重新打开表单后提交。",
                            link=str(request.rel_url))
    token = raw.get("csrf")
    if session is None or not isinstance(token, str) or not check_csrf(config.keyring, form.id, session.sid,
                                                                        token):
        return message_page(403, "页面已过期", "页面已过期或请求无效，请重新打开表单后提交。",
                            link=str(request.rel_url))
    own = own_identities(config, session)
    await limit_identity(request, "form_posts_per_openid", session.openid)  # a WeChat user's posts, any address
    ask = fields_to_ask(form, await known_for(request.app[SESSIONS], own))
    data = validate_submission(form, raw, ask=ask, consent=raw.get("consent") in CONSENT_VALUES,
                               identified=bool(own))
    if not data.ok:
        return _form_page(request, form, session, ask, raw=raw, errors=data.errors, status=400)
    # One submission per token: a reload or double tap does not record the lead twice.
    spent = f"{config.redis.key_prefix}form:csrf:{csrf_fingerprint(token)}"
    if not await request.app[REDIS].set(spent, b"1", nx=True, ex=SPENT_TTL_S):
        return message_page(409, "请勿重复提交", "该表单已提交成功，请勿重复提交。", ok=True)
    query = request.query
    submission = Submission(form=form, data=data, own=own, via="h5", utm=utm_params(query),
                            source_code=clean_param(query.get("src"), MAX_SOURCE_CODE_LEN) or None,
                            own_since_ms=session.bound_ms or 0)  # checked again in its transaction
    try:
        await record_submission(request.app[SESSIONS], config, request.app[SCORING], request.app[EVENTS], submission,
                                datetime.now(UTC))
    except Exception:
        await request.app[REDIS].delete(spent)  # nothing was stored: the visitor may submit again
        raise
    name = data.values.get("name")
    greeting = f"{name}，{form.success_message}" if name else form.success_message
    return message_page(200, "提交成功", greeting, ok=True)
