"""Endpoints of the fake WeChat / WeCom API: one decorated handler per (method, path).

A handler gets the parsed call and returns the JSON answer without errcode, or raises ApiError. The
dispatcher in wechat_server.py has already recorded the request and applied delays, forced failures,
rate limits and the token check (``auth``: whose token, ``scope``: the WeCom permission it needs).
To add an endpoint (OAuth, code2session, ...), add a handler here or in a module wechat_server imports.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from yarl import URL

from tests.support.fakes.wechat_state import ApiError, FakeWeChatState, IssuedToken

# The fake's code for an unknown or expired welcome code (a reused one gets 41051).
WELCOME_CODE_INVALID = 41096


@dataclass
class Call:
    state: FakeWeChatState
    query: dict[str, str]
    body: Any
    token: IssuedToken | None


Handler = Callable[[Call], dict[str, Any]]


@dataclass(frozen=True)
class Endpoint:
    handler: Handler
    auth: str | None  # None: no access_token (token endpoints); "oa" or "wecom": whose token
    scope: str | None  # WeCom permission the token needs


ENDPOINTS: dict[tuple[str, str], Endpoint] = {}


def endpoint(method: str, path: str, *, auth: str | None, scope: str | None = None
             ) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ENDPOINTS[(method, path)] = Endpoint(handler, auth, scope)
        return handler
    return register


def _require(body: Any, *keys: str) -> None:
    if not isinstance(body, dict) or any(k not in body for k in keys):
        raise ApiError(44002, "empty post data or missing field")


# ---- Official Account ----------------------------------------------------------------------------------

@endpoint("GET", "/cgi-bin/token", auth=None)
def oa_token(call: Call) -> dict[str, Any]:
    q = call.query
    if q.get("grant_type") != "client_credential":
        raise ApiError(40002, "invalid grant_type")
    if q.get("appid") not in call.state.oa_apps:
        raise ApiError(40013, "invalid appid")
    if call.state.oa_apps[q["appid"]] != q.get("secret"):
        raise ApiError(40125, "invalid appsecret")
    token = call.state.issue_token(f"oa:{q['appid']}", frozenset())
    return {"access_token": token.value, "expires_in": call.state.token_ttl_s}


@endpoint("GET", "/cgi-bin/user/info", auth="oa")
def oa_user_info(call: Call) -> dict[str, Any]:
    user = call.state.user(call.query.get("openid", ""))
    info: dict[str, Any] = {"subscribe": int(user.subscribed), "openid": user.openid}
    if user.subscribed:
        info.update(nickname=user.nickname, language="zh_CN", subscribe_time=1700000000,
                    subscribe_scene="ADD_SCENE_QR_CODE")
    if user.unionid:
        info["unionid"] = user.unionid
    return info


def _reachable_follower(call: Call, openid: str) -> None:
    user = call.state.user(openid)
    if not user.subscribed:
        raise ApiError(43004, "require subscribe")


@endpoint("POST", "/cgi-bin/message/custom/send", auth="oa")
def oa_custom_send(call: Call) -> dict[str, Any]:
    _require(call.body, "touser", "msgtype")
    _reachable_follower(call, call.body["touser"])
    last = call.state.users[call.body["touser"]].last_interaction
    if last is not None and call.state.clock() - last > call.state.customer_service_window_s:
        raise ApiError(45015, "response out of time limit or subscription is canceled")
    call.state.sent.append({"kind": "oa.custom", **call.body})
    return {}


@endpoint("POST", "/cgi-bin/message/template/send", auth="oa")
def oa_template_send(call: Call) -> dict[str, Any]:
    _require(call.body, "touser", "template_id", "data")
    if not call.body["template_id"]:
        raise ApiError(40037, "invalid template_id")
    _reachable_follower(call, call.body["touser"])
    msgid = len(call.state.sent) + 1
    call.state.sent.append({"kind": "oa.template", "msgid": msgid, **call.body})
    return {"msgid": msgid}


@endpoint("POST", "/cgi-bin/menu/create", auth="oa")
def oa_menu_create(call: Call) -> dict[str, Any]:
    buttons = call.body.get("button") if isinstance(call.body, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise ApiError(40016, "invalid button size")
    call.state.sent.append({"kind": "oa.menu", **call.body})
    return {}


# ---- WeCom -----------------------------------------------------------------------------------------------

@endpoint("GET", "/cgi-bin/gettoken", auth=None)
def wecom_token(call: Call) -> dict[str, Any]:
    if call.query.get("corpid") != call.state.corp_id:
        raise ApiError(40013, "invalid corpid")
    secret = call.query.get("corpsecret", "")
    if secret not in call.state.wecom_secrets:
        raise ApiError(40001, "invalid secret")
    token = call.state.issue_token(f"wecom:{call.state.corp_id}:{secret}", call.state.wecom_secrets[secret])
    return {"access_token": token.value, "expires_in": call.state.token_ttl_s}


@endpoint("GET", "/cgi-bin/externalcontact/get", auth="wecom", scope="contact")
def wecom_external_contact(call: Call) -> dict[str, Any]:
    contact = dict(call.state.external_contact(call.query.get("external_userid", "")))
    follow_user = [{"userid": u, "remark": "", "createtime": 1700000000} for u in contact.pop("follow_user")]
    contact["type"] = 1
    if contact["unionid"] is None:
        del contact["unionid"]
    return {"external_contact": contact, "follow_user": follow_user}


@endpoint("POST", "/cgi-bin/externalcontact/send_welcome_msg", auth="wecom", scope="contact")
def wecom_welcome(call: Call) -> dict[str, Any]:
    _require(call.body, "welcome_code")
    code = call.state.welcome_codes.get(call.body["welcome_code"])
    if code is None:
        raise ApiError(WELCOME_CODE_INVALID, "invalid welcome_code")
    if code.used:
        raise ApiError(41051, "welcome_code already used")
    if call.state.clock() - code.issued_at > call.state.welcome_code_ttl_s:
        raise ApiError(WELCOME_CODE_INVALID, "welcome_code expired")
    code.used = True
    call.state.sent.append({"kind": "wecom.welcome", **call.body})
    return {}


@endpoint("POST", "/cgi-bin/message/send", auth="wecom", scope="app")
def wecom_message_send(call: Call) -> dict[str, Any]:
    _require(call.body, "touser", "msgtype", "agentid")
    if int(call.body["agentid"]) != call.state.agent_id:
        raise ApiError(40056, "invalid agentid")
    users = [u for u in str(call.body["touser"]).split("|") if u]
    if call.state.lenient:
        call.state.employees.update(users)
    invalid = [u for u in users if u not in call.state.employees]
    if len(invalid) == len(users):
        raise ApiError(81013, "user & party & tag all invalid")
    call.state.sent.append({"kind": "wecom.app", **call.body})
    return {"invaliduser": "|".join(invalid), "msgid": f"msg-{len(call.state.sent)}"}


@endpoint("POST", "/cgi-bin/externalcontact/add_msg_template", auth="wecom", scope="contact")
def wecom_msg_task(call: Call) -> dict[str, Any]:
    """A message task: WeCom shows it to ``sender``, who confirms the send (the company cannot send alone)."""
    _require(call.body, "sender", "external_userid", "text")
    if call.state.lenient:
        call.state.employees.add(str(call.body["sender"]))
    if call.body["sender"] not in call.state.employees:
        raise ApiError(81013, "user & party & tag all invalid")
    call.state.sent.append({"kind": "wecom.msg_task", **call.body})
    return {"fail_list": [], "msgid": f"task-{len(call.state.sent)}"}


# ---- OAuth codes: OA web OAuth, mini-program login and phone number ------------------------------------

def _app_secret(call: Call) -> str:
    """The appid of a secret-authenticated /sns call (40013 unknown app, 40125 wrong secret)."""
    appid = call.query.get("appid", "")
    if appid not in call.state.oa_apps:
        raise ApiError(40013, "invalid appid")
    if call.state.oa_apps[appid] != call.query.get("secret"):
        raise ApiError(40125, "invalid appsecret")
    if call.query.get("grant_type") != "authorization_code":
        raise ApiError(40002, "invalid grant_type")
    return appid


@endpoint("GET", "/connect/oauth2/authorize", auth=None)
def oa_oauth_authorize(call: Call) -> dict[str, Any]:
    """WeChat's authorize page: for snsapi_base it redirects straight back with a fresh code."""
    q = call.query
    if q.get("appid") not in call.state.oa_apps:
        raise ApiError(40013, "invalid appid")
    if q.get("response_type") != "code" or q.get("scope") not in ("snsapi_base", "snsapi_userinfo"):
        raise ApiError(10005, "invalid scope or response_type")
    redirect_uri = q.get("redirect_uri", "")
    if not redirect_uri.startswith(("http://", "https://")):
        raise ApiError(10003, "redirect_uri domain mismatch")
    openid = call.state.oauth_openid
    user = call.state.users.get(openid)
    code = call.state.issue_oauth_code("oa_web", q["appid"], openid=openid, unionid=user.unionid if user else None)
    # The dispatcher answers JSON; a redirect leaves the handler as aiohttp's own HTTP exception.
    raise web.HTTPFound(str(URL(redirect_uri).update_query(code=code, state=q.get("state", ""))))


@endpoint("GET", "/sns/oauth2/access_token", auth=None)
def oa_oauth_access_token(call: Call) -> dict[str, Any]:
    appid = _app_secret(call)
    grant = call.state.take_oauth_code("oa_web", appid, call.query.get("code", ""))
    result: dict[str, Any] = {"access_token": f"WEB-{secrets.token_hex(6)}", "expires_in": 7200,
                              "refresh_token": f"REFRESH-{secrets.token_hex(6)}", "openid": grant.openid,
                              "scope": "snsapi_base"}
    if grant.unionid:
        result["unionid"] = grant.unionid
    return result


@endpoint("GET", "/sns/jscode2session", auth=None)
def mp_code2session(call: Call) -> dict[str, Any]:
    appid = _app_secret(call)
    grant = call.state.take_oauth_code("mp_login", appid, call.query.get("js_code", ""))
    result: dict[str, Any] = {"openid": grant.openid, "session_key": grant.session_key}
    if grant.unionid:
        result["unionid"] = grant.unionid
    return result


@endpoint("POST", "/wxa/business/getuserphonenumber", auth="oa")
def mp_phone_number(call: Call) -> dict[str, Any]:
    _require(call.body, "code")
    assert call.token is not None
    appid = call.token.principal.removeprefix("oa:")
    # Phone codes are single-use too, but WeChat answers a reused one with 40029 like an unknown one.
    grant = call.state.take_oauth_code("mp_phone", appid, str(call.body["code"]), used_errcode=40029)
    number = grant.phone if grant.country_code == "86" else f"+{grant.country_code} {grant.phone}"
    return {"phone_info": {"phoneNumber": number, "purePhoneNumber": grant.phone,
                           "countryCode": grant.country_code,
                           "watermark": {"timestamp": int(call.state.clock()), "appid": appid}}}
