"""The CRM webhook's delivery log: ``GET /api/webhook-deliveries`` (admins: WEBHOOK_READ) with every attempt's
answer, and ``POST /api/webhook-deliveries/{id}/resend`` (WEBHOOK_RESEND; audited): the same delivery queued
again with the same idempotency key, so a receiver that already has it keeps it once. A delivery whose body was
erased (PIPL: storage/repos/erasure.py empties the payload) or whose lead was erased is 409: nothing to send.

The signed body holds the lead's phone and e-mail: the log shows its ids, status and attempts, never the body.
"""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import CONFIG, SESSIONS
from bot.web.errors import ApiError
from bot.web.params import not_found, path_id
from leads.access import WEBHOOK_READ, WEBHOOK_RESEND
from sdr_console.api.auth import audit, requires
from sdr_console.api.models import Limit, Timestamp
from sdr_console.api.serialize import iso
from sdr_console.api.spec import QueryModel, ResponseModel, api_spec, parse_query, respond
from storage.models import Lead, OutboxMessage, WebhookAttempt, utcnow
from storage.repos.outbox import OUTBOX_STATUSES
from storage.repos.webhooks import Delivery, attempts_of, delivery, list_deliveries, resend

WHAT = "投递记录"


class DeliveryQuery(QueryModel):
    status: Literal[OUTBOX_STATUSES] | None = Field(None, description="按状态筛选")  # type: ignore[valid-type]
    lead_id: Annotated[int, Field(ge=1, le=2**62)] | None = Field(None, description="按潜客筛选")
    before_id: Annotated[int, Field(ge=1, le=2**62)] | None = Field(None, description="上一页最后一条的 id")
    limit: Limit = 50


class AttemptOut(ResponseModel):
    attempt: int
    at: Timestamp | None
    status_code: int | None
    error: str | None
    duration_ms: int

    @classmethod
    def of(cls, a: WebhookAttempt) -> AttemptOut:
        return cls(attempt=a.attempt, at=iso(a.at), status_code=a.status_code, error=a.error,
                   duration_ms=a.duration_ms)


class DeliveryOut(ResponseModel):
    id: int
    event: str
    lead_id: int | None
    assignment_id: int | None
    idempotency_key: str
    status: str
    attempts: int
    last_error: str | None
    created_at: Timestamp | None
    sent_at: Timestamp | None
    next_attempt_at: Timestamp | None
    attempt_log: list[AttemptOut]

    @classmethod
    def of(cls, row: OutboxMessage, attempts: list[WebhookAttempt]) -> DeliveryOut:
        assignment_id = (row.payload or {}).get("assignment_id")
        return cls(id=row.id, event=row.method.removeprefix("crm.").replace("_", "."), lead_id=row.lead_id,
                   assignment_id=assignment_id if isinstance(assignment_id, int) else None,
                   idempotency_key=row.idempotency_key, status=row.status, attempts=row.attempts,
                   last_error=row.last_error, created_at=iso(row.created_at), sent_at=iso(row.sent_at),
                   next_attempt_at=iso(row.next_attempt_at), attempt_log=[AttemptOut.of(a) for a in attempts])


class DeliveryPage(ResponseModel):
    items: list[DeliveryOut]
    next_before_id: int | None


@requires(WEBHOOK_READ)
@api_spec("CRM 推送记录（含每次尝试）", query=DeliveryQuery, response=DeliveryPage, tags=("handoff",))
async def get_deliveries(request: web.Request) -> web.Response:
    query = parse_query(request, DeliveryQuery)
    async with request.app[SESSIONS]() as session:
        found = await list_deliveries(session, status=query.status, lead_id=query.lead_id, limit=query.limit + 1,
                                      before_id=query.before_id)
        page: list[Delivery] = found[:query.limit]
        items = [DeliveryOut.of(d.row, d.attempts) for d in page]
    more = len(found) > query.limit
    return respond(DeliveryPage(items=items, next_before_id=page[-1].row.id if more and page else None))


@requires(WEBHOOK_RESEND)
@api_spec("重新推送到 CRM（同一幂等键）", response=DeliveryOut, errors=(404, 409), tags=("handoff",))
async def resend_delivery(request: web.Request) -> web.Response:
    outbox_id = path_id(request, "delivery_id", what=WHAT)
    if not request.app[CONFIG].crm.webhook_url:
        raise ApiError(409, "crm_not_configured", "未配置 crm.webhook_url，无法重新推送")
    async with request.app[SESSIONS]() as session, session.begin():
        row = await delivery(session, outbox_id)
        if row is None:
            raise not_found(WHAT, outbox_id)
        if row.status == "pending":
            raise ApiError(409, "already_queued", "该推送已在发送队列中")
        if await _erased(session, row):  # re-queued, it would fail in the sender (no body to sign)
            raise ApiError(409, "delivery_erased", "该潜客的个人信息已删除，推送内容已清除，无法重新推送")
        before = await resend(session, row, now=utcnow())
        await audit(request, WEBHOOK_RESEND, target_kind="webhook_delivery", target_id=row.id, before=before,
                    after={"status": row.status, "idempotency_key": row.idempotency_key}, session=session)
        out = DeliveryOut.of(row, await attempts_of(session, row.id))
    return respond(out)


async def _erased(session: AsyncSession, row: OutboxMessage) -> bool:
    if not isinstance((row.payload or {}).get("body"), str):
        return True
    if row.lead_id is None:
        return False
    lead = await session.get(Lead, row.lead_id)
    return lead is not None and lead.erased_at is not None


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/webhook-deliveries", get_deliveries)
    app.router.add_post("/api/webhook-deliveries/{delivery_id}/resend", resend_delivery)
