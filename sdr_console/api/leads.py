"""JSON API for the SDR console: leads and their history. Bearer-token protected."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import text

from bot.keys import CONFIG, ENGINE, REDIS, SESSIONS
from storage.models import Lead
from storage.repos.leads import lead_detail, search_leads

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_LIMIT = 200


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def require_token(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        tokens = request.app[CONFIG].api.tokens
        if scheme.lower() != "bearer" or not any(hmac.compare_digest(token.encode(), t.encode()) for t in tokens):
            return web.json_response({"error": "unauthorized", "message": "a valid bearer token is required"},
                                     status=401, headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return guarded


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise web.HTTPBadRequest(text=f'{{"error": "bad_parameter", "message": "{name} must be an integer '
                                      f'from {lo} to {hi}"}}', content_type="application/json")
    return int(raw)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def lead_summary(lead: Lead) -> dict[str, Any]:
    return {"id": lead.id, "display_name": lead.display_name or f"潜客 #{lead.id}", "stage": lead.stage,
            "consent": lead.consent, "created_at": iso(lead.created_at),
            "last_activity_at": iso(lead.last_activity_at)}


@require_token
async def list_leads(request: web.Request) -> web.Response:
    limit = int_param(request, "limit", 50, 1, MAX_LIMIT)
    offset = int_param(request, "offset", 0, 0, 10_000_000)
    q = request.query.get("q", "").strip()[:200] or None
    async with request.app[SESSIONS]() as session:
        leads = await search_leads(session, q, limit, offset)
    return web.json_response({"items": [lead_summary(lead) for lead in leads], "limit": limit, "offset": offset})


@require_token
async def get_lead(request: web.Request) -> web.Response:
    raw = request.match_info["lead_id"]
    if not raw.isdigit() or len(raw) > 18:
        return error(404, "not_found", f"no lead {raw!r}")
    async with request.app[SESSIONS]() as session:
        lead = await session.get(Lead, int(raw))
        if lead is None:
            return error(404, "not_found", f"no lead {raw}")
        if lead.merged_into_id is not None:
            raise web.HTTPPermanentRedirect(f"/api/leads/{lead.merged_into_id}")
        detail = await lead_detail(session, lead.id)
    return web.json_response({
        **lead_summary(lead),
        "profile": lead.profile,
        "consent_updated_at": iso(lead.consent_updated_at),
        "tags": detail["tags"],
        "identities": [{"kind": i.kind, "app": i.app, "value": i.value, "verified": i.verified,
                        "created_at": iso(i.created_at)} for i in detail["identities"]],
        "touchpoints": [{"id": t.id, "kind": t.kind, "scene": t.scene, "channel": t.channel,
                         "source_code": t.source_code, "occurred_at": iso(t.occurred_at),
                         "inbox_id": t.inbox_id, "detail": t.detail} for t in detail["touchpoints"]],
        "merges": [{"survivor_id": m.survivor_id, "merged_id": m.merged_id, "identity_kind": m.identity_kind,
                    "identity_value": m.identity_value, "moved": m.moved, "created_at": iso(m.created_at)}
                   for m in detail["merges"]],
        "merge_conflicts": [{"id": c.id, "lead_id": c.lead_id, "other_lead_id": c.other_lead_id,
                             "identity_kind": c.identity_kind, "identity_value": c.identity_value,
                             "reason": c.reason, "status": c.status, "created_at": iso(c.created_at)}
                            for c in detail["conflicts"]],
    })


async def healthz(request: web.Request) -> web.Response:
    async def database() -> None:
        async with request.app[ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis() -> None:
        await request.app[REDIS].ping()

    report: dict[str, str] = {}
    for name, probe in (("database", database), ("redis", redis)):
        try:
            await asyncio.wait_for(probe(), timeout=2)
            report[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means unhealthy, reported by name
            report[name] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in report.values())
    return web.json_response({"status": "ok" if healthy else "degraded", **report}, status=200 if healthy else 503)


def add_api_routes(app: web.Application) -> None:
    app.router.add_get("/api/leads", list_leads)
    app.router.add_get("/api/leads/{lead_id}", get_lead)
    app.router.add_get("/healthz", healthz)
