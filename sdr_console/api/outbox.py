"""``GET /api/outbox``: what was (or, in sandbox mode, would have been) sent, with each message's status.

Filters: ``status`` (one of bot.outbox.rules.STATUSES), ``lead_id``, ``method``; paging: ``limit``,
``offset``. Newest first. Same bearer tokens as the rest of the API.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.keys import SESSIONS
from bot.outbox.methods import METHODS
from bot.outbox.rules import STATUSES
from sdr_console.api.leads import MAX_LIMIT, int_param, iso, require_token
from storage.models import OutboxMessage


def _bad(name: str, message: str) -> web.HTTPBadRequest:
    body = json.dumps({"error": "bad_parameter", "message": f"{name} {message}"})
    return web.HTTPBadRequest(text=body, content_type="application/json")


def outbox_row(row: OutboxMessage) -> dict[str, Any]:
    return {"id": row.id, "method": row.method, "target": row.target, "status": row.status,
            "attempts": row.attempts, "last_error": row.last_error, "created_at": iso(row.created_at),
            "sent_at": iso(row.sent_at), "next_attempt_at": iso(row.next_attempt_at), "lead_id": row.lead_id,
            "idempotency_key": row.idempotency_key, "payload": row.payload, "response": row.response}


@require_token
async def list_outbox(request: web.Request) -> web.Response:
    limit = int_param(request, "limit", 50, 1, MAX_LIMIT)
    offset = int_param(request, "offset", 0, 0, 10_000_000)
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit).offset(offset)
    status = request.query.get("status", "")
    if status:
        if status not in STATUSES:
            raise _bad("status", f"must be one of {', '.join(STATUSES)}")
        stmt = stmt.where(OutboxMessage.status == status)
    method = request.query.get("method", "")
    if method:
        if method not in METHODS:
            raise _bad("method", f"must be one of {', '.join(sorted(METHODS))}")
        stmt = stmt.where(OutboxMessage.method == method)
    if request.query.get("lead_id"):
        stmt = stmt.where(OutboxMessage.lead_id == int_param(request, "lead_id", 0, 1, 2**62))
    async with request.app[SESSIONS]() as session:
        rows = (await session.execute(stmt)).scalars().all()
    # ensure_ascii off: the payloads are mostly Chinese text, readable as such in the console.
    return web.json_response({"items": [outbox_row(r) for r in rows], "limit": limit, "offset": offset},
                             dumps=lambda v: json.dumps(v, ensure_ascii=False))


def add_outbox_routes(app: web.Application) -> None:
    app.router.add_get("/api/outbox", list_outbox)
