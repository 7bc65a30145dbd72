"""JSON API for the content library, the SDR hand-off queue and data erasure requests."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.capture.content import upsert_items
from bot.config.capture import parse_content_items
from bot.errors import ConfigError
from bot.keys import CONVERSATION, ENGINE, SESSIONS
from sdr_console.api.leads import error, int_param, iso, require_token
from storage.models import utcnow
from storage.repos.erasure import erase_lead
from storage.repos.handoffs import list_handoffs

MAX_CONTENT_ITEMS = 2000


@require_token
async def list_content(request: web.Request) -> web.Response:
    items = request.app[CONVERSATION].content.all()
    return web.json_response({"items": [
        {"id": i.id, "kind": i.kind, "title": i.title, "summary": i.summary, "cover": i.cover, "url": i.url,
         "tags": list(i.tags), "stage": i.stage, "key": i.key} for i in items]})


@require_token
async def put_content(request: web.Request) -> web.Response:
    """Add or replace items: {"items": [...], "replace_all": false}. All or nothing."""
    try:
        body: Any = await request.json()
    except ValueError:
        return error(400, "bad_json", "the body must be JSON")
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        return error(400, "bad_request", 'expected {"items": [...]}')
    if len(body["items"]) > MAX_CONTENT_ITEMS:
        return error(413, "too_many", f"at most {MAX_CONTENT_ITEMS} items per request")
    try:
        items = list(parse_content_items({"items": body["items"]}, "body"))
    except ConfigError as exc:
        return error(400, "invalid_item", str(exc))
    if len({i.id for i in items}) != len(items):
        return error(400, "invalid_item", "duplicate ids in the request")
    await upsert_items(request.app[ENGINE], items, replace_all=bool(body.get("replace_all")))
    await request.app[CONVERSATION].content.refresh(request.app[ENGINE])
    return web.json_response({"stored": len(items)})


@require_token
async def handoff_queue(request: web.Request) -> web.Response:
    status = request.query.get("status", "open")
    if status not in ("open", "closed", "all"):
        return error(400, "bad_parameter", "status must be open, closed or all")
    limit = int_param(request, "limit", 50, 1, 200)
    offset = int_param(request, "offset", 0, 0, 10_000_000)
    async with request.app[SESSIONS]() as session:
        rows = await list_handoffs(session, None if status == "all" else status, limit, offset)
    return web.json_response({"items": [
        {"id": h.id, "lead_id": h.lead_id, "reason": h.reason, "message": h.message, "status": h.status,
         "created_at": iso(h.created_at)} for h in rows]})


@require_token
async def erase(request: web.Request) -> web.Response:
    raw = request.match_info["lead_id"]
    if not raw.isdigit() or len(raw) > 18:
        return error(404, "not_found", f"no lead {raw!r}")
    async with request.app[SESSIONS]() as session, session.begin():
        if not await erase_lead(session, int(raw), utcnow()):
            return error(404, "not_found", f"no lead {raw}")
    return web.json_response({"id": int(raw), "erased": True})


def add_capture_api_routes(app: web.Application) -> None:
    app.router.add_get("/api/content", list_content)
    app.router.add_put("/api/content", put_content)
    app.router.add_get("/api/handoffs", handoff_queue)
    app.router.add_post("/api/leads/{lead_id}/erase", erase)
