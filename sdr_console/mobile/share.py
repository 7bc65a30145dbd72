"""``POST /api/leads/{lead_id}/content-links {"content_id"}``: a tracked link to a content item, for the
salesperson to send this lead (the mobile lead page's toolbox: 分享给客户, then copy and paste into the chat).

The link is the bot's own (bot/capture/links.py, sealed: it names nobody readably) with the lead as recipient,
so an open is recorded on this lead's timeline as a content view and scores like one; the source code
``sales:<user id>`` records which salesperson shared it (kept verbatim on the touchpoint). Reading the lead is
enough to share with it: a link changes nothing until the customer opens it.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from bot.capture.links import LinkTarget
from bot.keys import CONFIG, CONVERSATION, SESSIONS
from bot.web.errors import ApiError
from leads.access import LEAD_READ
from sdr_console.api.auth import authorize_lead, lead_action, require_token
from sdr_console.api.lookup import lead_from_path
from sdr_console.api.spec import RequestModel, ResponseModel, api_spec, parse_body, respond

SOURCE_PREFIX = "sales:"


class ContentLinkBody(RequestModel):
    content_id: Annotated[str, Field(min_length=1, max_length=100, description="内容库条目的 id")]


class ContentLink(ResponseModel):
    lead_id: int
    content_id: str
    title: str
    url: str


def source_code(user_id: int | None) -> str:
    return f"{SOURCE_PREFIX}{user_id}" if user_id is not None else "sales:service"


@require_token
@lead_action(LEAD_READ)
@api_spec("为潜客生成内容库条目的追踪链接（销售分享给客户）", body=ContentLinkBody, response=ContentLink,
          errors=(400, 404, 409), tags=("content",))
async def content_link(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        lead = await lead_from_path(request, session, "content-links")
        actor = await authorize_lead(request, session, LEAD_READ, lead)  # before the body: a refusal is a 403
    body = await parse_body(request, ContentLinkBody)
    item = request.app[CONVERSATION].content.get(body.content_id)
    if item is None:
        raise ApiError(404, "not_found", f"内容 {body.content_id[:40]!r} 不存在")
    if lead.erased_at is not None:
        raise ApiError(409, "erased", "该潜客的个人信息已删除，不能再向其分享内容")
    target = LinkTarget(item.id, "lead", str(lead.id), source_code(actor.user_id))
    token = request.app[CONVERSATION].links.token(target)
    url = f"{request.app[CONFIG].server.public_url.rstrip('/')}/c/{token}"
    return respond(ContentLink(lead_id=lead.id, content_id=item.id, title=item.title, url=url))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/leads/{lead_id}/content-links", content_link)
