"""The fake's endpoints for the sales mobile inbox: WeCom web OAuth and the JS-SDK agent ticket.

- ``GET /connect/oauth2/authorize`` with the corp id as ``appid``: WeCom's authorize page. For ``snsapi_base``
  it redirects straight back with a fresh single-use code for the member ``state.oauth_openid`` names (the same
  knob the OA's authorize page uses: "whom the authorize page says the visitor is"). An OA appid goes on to the
  OA's handler (wechat_endpoints.py), which this one wraps.
- ``GET /cgi-bin/auth/getuserinfo``: the code's member, once. WeCom answers an unknown, foreign, used or
  expired code with 40029.
- ``GET /cgi-bin/ticket/get?type=agent_config``: an agent jsapi_ticket. WeCom allows 400 fetches an hour per
  company; the 401st in an hour is refused (45009), so a test can show one cached ticket served many pages.

``issue_wecom_code`` mints a code for a member without the redirect (tests of the callback alone).
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web
from yarl import URL

from tests.support.fakes.wechat_endpoints import ENDPOINTS, Call, endpoint
from tests.support.fakes.wechat_state import ApiError, FakeWeChatState

WECOM_WEB = "wecom_web"
TICKET_PATH = "/cgi-bin/ticket/get"
TICKETS_PER_HOUR = 400
TICKET_TTL_S = 7200
_OA_AUTHORIZE = ENDPOINTS[("GET", "/connect/oauth2/authorize")]


def issue_wecom_code(state: FakeWeChatState, userid: str) -> str:
    """What WeCom's authorize page hands the app for member ``userid``: valid once, for 5 minutes."""
    return state.issue_oauth_code(WECOM_WEB, state.corp_id, openid=userid)


def issued_tickets(state: FakeWeChatState) -> int:
    return state.count(TICKET_PATH)


@endpoint("GET", "/connect/oauth2/authorize", auth=None)
def authorize(call: Call) -> dict[str, Any]:
    q = call.query
    if q.get("appid") != call.state.corp_id:
        return _OA_AUTHORIZE.handler(call)
    if q.get("response_type") != "code" or q.get("scope") not in ("snsapi_base", "snsapi_privateinfo"):
        raise ApiError(10005, "invalid scope or response_type")
    if q.get("agentid") and int(q["agentid"]) != call.state.agent_id:
        raise ApiError(40056, "invalid agentid")
    redirect_uri = q.get("redirect_uri", "")
    if not redirect_uri.startswith(("http://", "https://")):
        raise ApiError(50001, "redirect_uri not authorised")
    code = issue_wecom_code(call.state, call.state.oauth_openid)
    # The dispatcher answers JSON; a redirect leaves the handler as aiohttp's own HTTP exception.
    raise web.HTTPFound(str(URL(redirect_uri).update_query(code=code, state=q.get("state", ""))))


@endpoint("GET", "/cgi-bin/auth/getuserinfo", auth="wecom", scope="app")
def get_user_info(call: Call) -> dict[str, Any]:
    grant = call.state.take_oauth_code(WECOM_WEB, call.state.corp_id, call.query.get("code", ""),
                                       used_errcode=40029)
    return {"userid": grant.openid}


@endpoint("GET", TICKET_PATH, auth="wecom", scope="app")
def get_ticket(call: Call) -> dict[str, Any]:
    if call.query.get("type") != "agent_config":
        raise ApiError(40097, "invalid args: type")
    now = call.state.clock()
    # This request is already recorded by the dispatcher: it counts itself.
    if sum(1 for r in call.state.requests_to(TICKET_PATH) if r.at > now - 3600) > TICKETS_PER_HOUR:
        raise ApiError(45009, "api freq out of limit: 400 jsapi_ticket a hour per corp")
    return {"ticket": f"TICKET-{secrets.token_hex(12)}", "expires_in": TICKET_TTL_S}
