"""``GET /c/<token>``: a prospect opened content we sent. Record the view (or download) on their lead, as a
touchpoint whose kind is the score event, then send them on to the content.

Some opens only redirect, recording nothing: opens over the recipient's rate limit, ``HEAD`` (link-preview
bots fetch links that way), links of the old forgeable format (bot/capture/links.py), and links issued to a
person before their data was erased (bot/capture/erased.py): an erased person is not brought back by an old
message.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web

from bot.capture.erased import still_valid, voided_by_erasure
from bot.capture.links import BadLink, LinkTarget
from bot.config.core import Config
from bot.keys import CONFIG, CONVERSATION, EVENTS, SCORING, SESSIONS
from bot.limits.web import within_limit
from leads.content import ContentItem
from leads.identity import MP_OPENID, OA_OPENID, WECOM_EXTERNAL, IdentityKey
from leads.sources import Source, resolve_source
from storage.models import Lead, utcnow
from storage.repos.lead_views import find_lead
from storage.repos.leads import LeadRepository
from storage.tx import Retry, in_transaction

if TYPE_CHECKING:  # the transaction in_transaction opens, passed through to the repositories
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)
# Whitepapers are downloads (scored higher, key ones higher still); everything else is a view.
_DOWNLOAD_KINDS = {"whitepaper"}
_NOT_FOUND = "链接无效或已失效"


def _app_of(cfg: Config, kind: str) -> str:
    return {OA_OPENID: cfg.wechat.app_id, WECOM_EXTERNAL: cfg.wecom.corp_id,
            MP_OPENID: cfg.capture.mini_program.app_id}[kind]


async def _recipient_lead(session: AsyncSession, repo: LeadRepository, cfg: Config, target: LinkTarget,
                          issued_ms: int, now: datetime) -> Lead | None:
    """The lead to record on, or None when the link was voided by an erasure."""
    if target.recipient_kind == "lead":
        lead = await find_lead(session, int(target.recipient)) if target.recipient.isdigit() else None
        if lead is not None and lead.merged_into_id is not None:
            lead = await find_lead(session, lead.merged_into_id)
        if lead is None:
            raise web.HTTPNotFound(text=_NOT_FOUND)
        # Locked and so read again (PostgreSQL): an erasure or merge that held it has committed by then.
        await repo.lock([lead.id])
        if lead.merged_into_id is not None:
            raise Retry("the link's lead was merged while this waited for its lock")
        return None if lead.erased_at is not None else lead
    identity = IdentityKey(target.recipient_kind, _app_of(cfg, target.recipient_kind), target.recipient)
    if await voided_by_erasure(session, cfg, [identity], issued_ms):
        return None
    lead = await repo.resolve([identity], now=now, inbox_id=None)
    await still_valid(session, cfg, [identity], issued_ms)
    return lead


async def _record(request: web.Request, target: LinkTarget, issued_ms: int, item: ContentItem) -> None:
    cfg = request.app[CONFIG]
    now = utcnow()

    async def record(session: AsyncSession) -> None:
        repo = LeadRepository(session, request.app[SCORING], lambda: now, events=request.app[EVENTS])
        lead = await _recipient_lead(session, repo, cfg, target, issued_ms, now)
        if lead is None:
            log.info("tracked link issued before an erasure: redirected, nothing recorded")
            return
        source = resolve_source(target.source_code or None, cfg.channels,
                                Source(channel="wechat_oa" if target.recipient_kind == OA_OPENID else "content",
                                       scene="content"))
        kind = "content_download" if item.kind in _DOWNLOAD_KINDS else "content_view"
        await repo.add_touchpoint(lead, kind=kind, source=source, occurred_at=now, inbox_id=None,
                                  detail={"content_id": item.id, "content_kind": item.kind, "key": item.key,
                                          "stage": item.stage, "title": item.title, "tags": list(item.tags)})

    await in_transaction(request.app[SESSIONS], record)


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
    # A link forwarded into a big group is opened by many: over the recipient's limit it still leads to the
    # content, it just stops counting (and creating work) for that recipient.
    if request.method == "GET" and target.issued_ms is not None and await within_limit(
            request, "links_per_recipient", f"{target.recipient_kind}:{target.recipient}"):
        await _record(request, target, target.issued_ms, item)
    raise web.HTTPFound(item.url)


def add_tracked_routes(app: web.Application) -> None:
    app.router.add_get("/c/{token}", open_tracked_link)  # HEAD too (allow_head), answered without recording
