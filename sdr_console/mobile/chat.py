"""The chat toolbar (聊天工具栏): the lead page, opened from a chat with an external contact in WeCom.

``GET /m/chat`` loads WeCom's JS-SDK from Tencent (it cannot be served from here: the client's bridge is
Tencent's own code, and WeCom injects nothing without it) and ``mobile.js`` does the rest: it asks
``GET /m/api/jssdk-signature?url=<this page>`` for the signed ``agentConfig`` (bot/wechat/jsapi.py: the shared
agent ticket), calls ``wx.agentConfig`` then ``wx.invoke('getCurExternalContact')`` for the chat's
external_userid, and replaces itself with ``GET /m/chat/lead?external_userid=...``, which finds the lead by its
WeCom identity and redirects to ``/m/leads/{id}`` (the identifier leaves the address bar; authorisation as on
every lead page: someone else's lead is an audited 403).
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from aiohttp import web

from bot.errors import WeChatAPIError
from bot.keys import CONFIG, SESSIONS
from bot.web.errors import ApiError, json_response
from bot.wechat.jsapi import MAX_URL_LEN, agent_config
from sdr_console.mobile.access import LEAD_PATH, open_lead
from sdr_console.mobile.web import message, page, require_user
from sdr_console.mobile.wecom import WECOM
from sdr_console.pages.lead_access import LeadView
from sdr_console.web.guard import load_signed_in
from storage.repos.mobile_inbox import lead_of_external_contact

log = logging.getLogger(__name__)
CHAT_PATH = "/m/chat"
# WeCom's JS-SDK, as Tencent's documentation gives it (the page may not load it from anywhere else; tests route
# these URLs to a stub ``wx`` with Playwright's page.route). jwxwork adds agentConfig on WeCom's desktop clients.
JWEIXIN_URL = "https://res.wx.qq.com/open/js/jweixin-1.2.0.js"
JWXWORK_URL = "https://open.work.weixin.qq.com/wwopen/js/jwxwork-1.0.0.js"
JSSDK_ORIGINS = "https://res.wx.qq.com https://open.work.weixin.qq.com"
CHAT_CSP = ("default-src 'self'; script-src 'self' " + JSSDK_ORIGINS + "; style-src 'self'; img-src 'self' data:; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'")
MAX_EXTERNAL_USERID = 128


async def chat_page(request: web.Request) -> web.StreamResponse:
    current = await require_user(request)
    if isinstance(current, web.Response):
        return current
    return page(request, "chat.html", headers={"Content-Security-Policy": CHAT_CSP}, title="客户线索",
                jssdk=(JWEIXIN_URL, JWXWORK_URL), live=WECOM in request.app, user=current.user,
                csrf=current.session.csrf, nav="chat")


def _signable(request: web.Request, url: str) -> bool:
    """Only our own mobile pages: the ticket signs nothing else."""
    public = urlsplit(request.app[CONFIG].server.public_url)
    parts = urlsplit(url)
    return (len(url) <= MAX_URL_LEN and url.isprintable() and parts.scheme == public.scheme
            and parts.netloc == public.netloc and parts.path.startswith("/m/"))


async def jssdk_signature(request: web.Request) -> web.StreamResponse:
    """``{corpid, agentid, timestamp, nonceStr, signature, jsApiList}`` for ``wx.agentConfig`` on ``url``."""
    if await load_signed_in(request) is None:
        raise ApiError(401, "unauthorized", "请先登录")
    wecom = request.app.get(WECOM)
    if wecom is None:
        raise ApiError(503, "wecom_disabled", "当前为沙箱模式，未连接企业微信，无法使用聊天工具栏")
    url = request.query.get("url", "")
    if not _signable(request, url):
        raise ApiError(400, "bad_parameter", "参数 url 须为本站移动工作台页面的完整地址")
    try:
        signed = await agent_config(wecom.tickets, wecom.corp_id, wecom.agent_id, url, now=int(time.time()))
    except (WeChatAPIError, OSError) as exc:
        log.warning("agent jsapi_ticket unavailable: %s", type(exc).__name__)
        raise ApiError(502, "wecom_unavailable", "企业微信服务暂时不可用，请稍后重试") from exc
    return json_response(signed.as_json(), headers={"Cache-Control": "no-store"})


async def chat_lead(request: web.Request) -> web.StreamResponse:
    current = await require_user(request)
    if isinstance(current, web.Response):
        return current
    external = request.query.get("external_userid", "")
    if not external or len(external) > MAX_EXTERNAL_USERID or not external.isascii() or not external.isprintable():
        return message(request, 400, "无法识别客户", "未能获取当前聊天的客户，请在与客户的聊天中打开。", link=None)
    async with request.app[SESSIONS]() as session:
        lead_id = await lead_of_external_contact(session, request.app[CONFIG].wecom.corp_id, external)
    if lead_id is None:
        return message(request, 404, "暂无线索", "该客户还没有线索记录：客户与公众号或企业微信互动后会自动建档。")

    async def to_lead(request: web.Request, view: LeadView) -> web.StreamResponse:
        raise web.HTTPSeeOther(f"{LEAD_PATH}{view.lead.id}")

    return await open_lead(request, current, lead_id, to_lead)


def add_routes(app: web.Application) -> None:
    app.router.add_get(CHAT_PATH, chat_page)
    app.router.add_get(CHAT_PATH + "/lead", chat_lead)
    app.router.add_get("/m/api/jssdk-signature", jssdk_signature)
