"""GET /api/audit: the audit log for admins and managers, newest first, with filters."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AfterValidator, Field

from bot.keys import SESSIONS
from leads.access import AUDIT_READ
from sdr_console.api.auth import requires
from sdr_console.api.models import Timestamp
from sdr_console.api.spec import QueryModel, ResponseModel, api_spec, parse_query, respond
from storage.models import AuditEntry
from storage.repos import audit as audit_repo


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("须为可见字符")
    return value


def _short(max_len: int, what: str) -> Any:
    return Annotated[str, Field(max_length=max_len, description=what), AfterValidator(_printable)]


class AuditQuery(QueryModel):
    actor_user_id: Annotated[int, Field(ge=1, le=2**62)] | None = Field(None, description="操作人用户 id")
    action: _short(64, "动作") | None = None  # type: ignore[valid-type]
    target_kind: _short(32, "对象类型") | None = None  # type: ignore[valid-type]
    target_id: _short(64, "对象 id") | None = None  # type: ignore[valid-type]
    outcome: Literal[audit_repo.OK, audit_repo.DENIED] | None = Field(None, description="结果")  # type: ignore[valid-type]
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    offset: Annotated[int, Field(ge=0, le=10**9)] = 0


class AuditRow(ResponseModel):
    id: int
    at: Timestamp
    actor_user_id: int | None
    actor: str | None
    action: str
    target_kind: str | None
    target_id: str | None
    before: Any
    after: Any
    ip: str | None
    outcome: str


class AuditPage(ResponseModel):
    entries: list[AuditRow]
    limit: int
    offset: int


def _audit_json(e: AuditEntry) -> AuditRow:
    return AuditRow(id=e.id, at=e.at.isoformat(), actor_user_id=e.actor_user_id, actor=e.actor_label,
                    action=e.action, target_kind=e.target_kind, target_id=e.target_id, before=e.before,
                    after=e.after, ip=e.ip, outcome=e.outcome)


@requires(AUDIT_READ)
@api_spec("审计日志（最新在前）", query=AuditQuery, response=AuditPage, tags=("audit",))
async def get_audit(request: web.Request) -> web.Response:
    """Newest first; filters: actor_user_id, action, target_kind, target_id, outcome."""
    query = parse_query(request, AuditQuery)
    filters = audit_repo.AuditFilters(actor_user_id=query.actor_user_id, action=query.action,
                                      target_kind=query.target_kind, target_id=query.target_id,
                                      outcome=query.outcome)
    async with request.app[SESSIONS]() as session:
        entries = await audit_repo.list_audit(session, filters, query.limit, query.offset)
    return respond(AuditPage(entries=[_audit_json(e) for e in entries], limit=query.limit, offset=query.offset))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/audit", get_audit)
