"""GET /api/audit: the audit log for admins and managers, newest first, with filters."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.keys import SESSIONS
from bot.web.errors import ApiError, json_response
from bot.web.params import choice_param, int_param
from leads.access import AUDIT_READ
from sdr_console.api.auth import requires
from storage.models import AuditEntry
from storage.repos import audit as audit_repo


def _audit_json(e: AuditEntry) -> dict[str, Any]:
    return {"id": e.id, "at": e.at.isoformat(), "actor_user_id": e.actor_user_id, "actor": e.actor_label,
            "action": e.action, "target_kind": e.target_kind, "target_id": e.target_id, "before": e.before,
            "after": e.after, "ip": e.ip, "outcome": e.outcome}


def _short_text(request: web.Request, name: str, max_len: int) -> str | None:
    raw = request.query.get(name, "")
    if raw == "":
        return None
    if len(raw) > max_len or not raw.isprintable():
        raise ApiError(400, "bad_parameter", f"参数 {name} 须为不超过 {max_len} 个可见字符")
    return raw


@requires(AUDIT_READ)
async def get_audit(request: web.Request) -> web.Response:
    """Newest first; filters: actor_user_id, action, target_kind, target_id, outcome."""
    actor = int_param(request, "actor_user_id", 0, 1, 2**62)
    filters = audit_repo.AuditFilters(
        actor_user_id=actor or None, action=_short_text(request, "action", 64),
        target_kind=_short_text(request, "target_kind", 32), target_id=_short_text(request, "target_id", 64),
        outcome=choice_param(request, "outcome", (audit_repo.OK, audit_repo.DENIED)) or None)
    limit, offset = int_param(request, "limit", 50, 1, 500), int_param(request, "offset", 0, 0, 10**9)
    async with request.app[SESSIONS]() as session:
        entries = await audit_repo.list_audit(session, filters, limit, offset)
    return json_response({"entries": [_audit_json(e) for e in entries], "limit": limit, "offset": offset})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/audit", get_audit)
