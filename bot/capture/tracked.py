"""``GET /c/<token>``: a prospect opened content we sent. Record the view (or download) on their lead, as a
touchpoint whose kind is the score event, then send them on to the content."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from bot.capture.links import BadLink
from bot.keys import CONFIG, CONVERSATION, EVENTS, SCORING, SESSIONS
from leads.identity import IdentityKey
from leads.sources import Source, resolve_source
from storage.models import utcnow
from storage.repos.lead_views import find_lead
from storage.repos.leads import LeadRepository
from storage.tx import in_transaction

if TYPE_CHECKING:  # the transaction in_transaction opens, passed through to the repositories
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)
# Whitepapers are downloads (scored higher, key ones higher still); everything else is a view.
_DOWNLOAD_KINDS = {"whitepaper"}
_NOT_FOUND = "链接无效或已失效"


async def open_tracked_link(request: web.Request) -> web.StreamResponse:
    conversation = request.app[CONVERSATION]
    try:
        target = conversation.links.verify(request.match_info["token"])
    except BadLink as exc:
        log.info("refused tracked link: %s", exc)
        raise web.HTTPNotFound(text=_NOT_FOUND) from exc
    item = conversation.content.get(target.content_id)
    if item is None:
        raise web.HTTPNotFound(text=_NOT_FOUND)
    cfg = request.app[CONFIG]
    now = utcnow()

    async def record(session: AsyncSession) -> None:
        repo = LeadRepository(session, request.app[SCORING], lambda: now, events=request.app[EVENTS])
        if target.recipient_kind == "lead":
            lead = await find_lead(session, int(target.recipient)) if target.recipient.isdigit() else None
            if lead is None:
                raise web.HTTPNotFound(text=_NOT_FOUND)
        else:
            app_id = cfg.wechat.app_id if target.recipient_kind == "oa_openid" else cfg.wecom.corp_id
            lead = await repo.resolve([IdentityKey(target.recipient_kind, app_id, target.recipient)], now=now,
                                      inbox_id=None)
        source = resolve_source(target.source_code or None, cfg.channels,
                                Source(channel="wechat_oa" if target.recipient_kind == "oa_openid" else "content",
                                       scene="content"))
        kind = "content_download" if item.kind in _DOWNLOAD_KINDS else "content_view"
        await repo.add_touchpoint(lead, kind=kind, source=source, occurred_at=now, inbox_id=None,
                                  detail={"content_id": item.id, "content_kind": item.kind, "key": item.key,
                                          "stage": item.stage, "title": item.title, "tags": list(item.tags)})

    await in_transaction(request.app[SESSIONS], record)
    raise web.HTTPFound(item.url)


def add_tracked_routes(app: web.Application) -> None:
    app.router.add_get("/c/{token}", open_tracked_link)
