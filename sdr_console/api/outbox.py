"""``GET /api/outbox``: what was (or, in sandbox mode, would have been) sent, with each message's status.

Filters: ``status`` (one of storage.repos.outbox.OUTBOX_STATUSES), ``lead_id``, ``method`` (one the app can
send: ``OUTBOX_METHODS``); paging: ``limit``, ``offset``. Newest first. Same bearer tokens as the rest of the API.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field

from bot.keys import OUTBOX_METHODS, SESSIONS
from bot.web.errors import ApiError
from leads.access import OUTBOX_READ
from sdr_console.api.auth import requires
from sdr_console.api.models import JsonObject, PageQuery, Timestamp
from sdr_console.api.serialize import iso
from sdr_console.api.spec import ResponseModel, Text, api_spec, parse_query, respond
from storage.models import OutboxMessage
from storage.repos.outbox import OUTBOX_STATUSES, list_outbox


class OutboxQuery(PageQuery):
    status: Literal[OUTBOX_STATUSES] | None = Field(None, description="按状态筛选")  # type: ignore[valid-type]
    method: Text | None = Field(None, max_length=64, description="按发送方法筛选（本应用可用的方法之一）")
    lead_id: Annotated[int, Field(ge=1, le=2**62)] | None = Field(None, description="按潜客筛选")


class OutboxRow(ResponseModel):
    id: int
    method: str
    target: str
    status: str
    attempts: int
    last_error: str | None
    created_at: Timestamp | None
    sent_at: Timestamp | None
    next_attempt_at: Timestamp | None
    lead_id: int | None
    idempotency_key: str | None
    payload: JsonObject | None
    response: Any


class OutboxPage(ResponseModel):
    items: list[OutboxRow]
    limit: int
    offset: int


def outbox_row(row: OutboxMessage) -> OutboxRow:
    return OutboxRow(id=row.id, method=row.method, target=row.target, status=row.status, attempts=row.attempts,
                     last_error=row.last_error, created_at=iso(row.created_at), sent_at=iso(row.sent_at),
                     next_attempt_at=iso(row.next_attempt_at), lead_id=row.lead_id,
                     idempotency_key=row.idempotency_key, payload=row.payload, response=row.response)


@requires(OUTBOX_READ)
@api_spec("发件箱：已发送（沙盒中为将要发送）的消息", query=OutboxQuery, response=OutboxPage, tags=("outbox",))
async def get_outbox(request: web.Request) -> web.Response:
    query = parse_query(request, OutboxQuery)
    methods = request.app[OUTBOX_METHODS]
    if query.method is not None and query.method not in methods:  # known only at run time: the app's channels
        raise ApiError(400, "bad_parameter", f"参数 method 须为以下之一：{'、'.join(sorted(methods))}")
    async with request.app[SESSIONS]() as session:
        rows = await list_outbox(session, status=query.status, method=query.method, lead_id=query.lead_id,
                                 limit=query.limit, offset=query.offset)
    # Chinese payloads stay readable as such in the console (json_response does not escape them).
    return respond(OutboxPage(items=[outbox_row(r) for r in rows], limit=query.limit, offset=query.offset))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/outbox", get_outbox)
