"""``GET /api/outbox``: what was (or, in sandbox mode, would have been) sent, with each message's status.

Filters: ``status`` (one of storage.repos.outbox.OUTBOX_STATUSES), ``lead_id``, ``method`` (one the app can
send: ``OUTBOX_METHODS``); paging: ``limit``, ``offset``. Newest first. Same bearer tokens as the rest of the API.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.keys import OUTBOX_METHODS, SESSIONS
from bot.web.errors import json_response
from bot.web.params import choice_param, int_param
from leads.access import OUTBOX_READ
from sdr_console.api.auth import requires
from sdr_console.api.serialize import MAX_LIMIT, iso
from storage.models import OutboxMessage
from storage.repos.outbox import OUTBOX_STATUSES, list_outbox


def outbox_row(row: OutboxMessage) -> dict[str, Any]:
    return {"id": row.id, "method": row.method, "target": row.target, "status": row.status,
            "attempts": row.attempts, "last_error": row.last_error, "created_at": iso(row.created_at),
            "sent_at": iso(row.sent_at), "next_attempt_at": iso(row.next_attempt_at), "lead_id": row.lead_id,
            "idempotency_key": row.idempotency_key, "payload": row.payload, "response": row.response}


@requires(OUTBOX_READ)
async def get_outbox(request: web.Request) -> web.Response:
    limit = int_param(request, "limit", 50, 1, MAX_LIMIT)
    offset = int_param(request, "offset", 0, 0, 10_000_000)
    status = choice_param(request, "status", OUTBOX_STATUSES) or None
    method = choice_param(request, "method", request.app[OUTBOX_METHODS]) or None
    lead_id = int_param(request, "lead_id", 0, 1, 2**62) or None
    async with request.app[SESSIONS]() as session:
        rows = await list_outbox(session, status=status, method=method, lead_id=lead_id, limit=limit, offset=offset)
    # Chinese payloads stay readable as such in the console (json_response does not escape them).
    return json_response({"items": [outbox_row(r) for r in rows], "limit": limit, "offset": offset})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/outbox", get_outbox)
