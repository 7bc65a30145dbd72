"""Handing a member's WeCom customers to a colleague over the JSON API (managers and admins).

``POST /api/customer-transfers`` {"from_user", "to_user", "leads"?, "message"?, "resigned"?}: all of
``from_user``'s WeCom customers (or the listed leads, each of which must be one) go to ``to_user`` through
WeCom's ``transfer_customer``, ≤ 100 per call: 202 with the transfer id and its batches (outbox rows, sent by
the outbox in live mode). ``GET /api/customer-transfers/{id}``: each customer's outcome, WeCom's limits
included (40128: transferred twice in 90 days), in Chinese with a code. See bot/handoff/transfer.py.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, StrictInt, StrictStr
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handoff.transfer import Actor, TransferRefused, check_users, pick_customers, start_transfer
from bot.keys import CONFIG, ENQUEUE, SESSIONS
from bot.people.accounts import USERNAME
from bot.web.errors import ApiError
from bot.web.params import body_limit, not_found, path_id
from leads.access import CUSTOMER_TRANSFER
from leads.customer_transfer import MAX_MESSAGE, batch_outcomes
from sdr_console.api.auth import actor_of, client_ip, requires
from sdr_console.api.models import Timestamp
from sdr_console.api.serialize import iso
from sdr_console.api.spec import RequestModel, ResponseModel, api_spec, parse_body, respond
from storage.models import User
from storage.repos.transfers import TransferRecord, get_transfer
from storage.repos.users import user_by_id, user_by_name
from storage.tx import in_transaction

MAX_BODY = 256 * 1024
MAX_LEADS = 10_000
UserRef = StrictInt | StrictStr
LeadId = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]


class TransferIn(RequestModel):
    from_user: UserRef = Field(description="原跟进人：用户名或用户 ID（须绑定企业微信 userid）")
    to_user: UserRef = Field(description="接替人：用户名或用户 ID（须绑定企业微信 userid，且未停用）")
    leads: list[LeadId] | None = Field(None, min_length=1, max_length=MAX_LEADS,
                                       description="只转接这些潜客（默认：原跟进人的全部企业微信客户）")
    message: str | None = Field(None, min_length=1, max_length=MAX_MESSAGE,
                                description="转接成功后发给客户的消息（transfer_success_msg，在职继承）")
    resigned: bool = Field(False, description="原跟进人已离开企业微信：用离职继承接口")


class TransferBatch(ResponseModel):
    batch: int
    outbox_id: int
    customers: int
    status: str = Field(description="发送这批的出站消息状态：pending、sent、failed、sandboxed……")


class TransferStarted(ResponseModel):
    id: int
    from_user: str
    to_user: str
    customers: int
    sandbox: bool
    batches: list[TransferBatch]


class CustomerResult(ResponseModel):
    lead_id: int
    batch: int
    code: str = Field(description="queued、sandboxed、failed、rejected、waiting、taken_over、refused、"
                                  "takeover_full、no_record")
    message: str
    final: bool
    errcode: int | None = Field(description="企业微信对此客户的错误码（40128：90 天内已转接 2 次）")
    status: int | None = Field(description="transfer_result 的接替状态：1 接替完毕，2 等待接替，3 客户拒绝，"
                                           "4 接替成员客户达到上限，5 无接替记录")
    takeover_time: int | None = Field(description="接替时间（Unix 秒；等待中为预计自动接替时间）")
    owner_moved: bool


class TransferOut(ResponseModel):
    id: int
    from_user: str
    to_user: str
    created_at: Timestamp | None
    resigned: bool
    done: bool = Field(description="每位客户都有最终结果")
    counts: dict[str, int]
    batches: list[TransferBatch]
    customers: list[CustomerResult]


async def _user(session: AsyncSession, raw: int | str, role: str) -> User:
    if isinstance(raw, int):
        user = await user_by_id(session, raw) if 0 < raw < 2**63 else None
    else:
        user = await user_by_name(session, raw) if USERNAME.fullmatch(raw) else None
    if user is None:
        raise ApiError(400, "unknown_user", f"{role}不存在，请填写正确的用户名或用户 ID")
    return user


def _refused(exc: TransferRefused) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


@requires(CUSTOMER_TRANSFER)
@body_limit(MAX_BODY)
@api_spec("把成员的企业微信客户转接给同事（在职继承，每次调用最多 100 个）", body=TransferIn,
          response=TransferStarted, status=202, errors=(400,), tags=("customer-transfers",))
async def post_transfer(request: web.Request) -> web.Response:
    body = await parse_body(request, TransferIn)
    cfg, enqueue = request.app[CONFIG], request.app[ENQUEUE]
    sandbox = cfg.wechat.mode == "sandbox"
    who = actor_of(request)
    actor = Actor(who.user_id, who.label, client_ip(request))

    async def work(session: AsyncSession) -> TransferStarted:
        from_user = await _user(session, body.from_user, "原跟进人")
        to_user = await _user(session, body.to_user, "接替人")
        check_users(from_user, to_user)
        customers = await pick_customers(session, from_user, body.leads)
        started = await start_transfer(session, enqueue, from_user=from_user, to_user=to_user,
                                       customers=customers, sandbox=sandbox, actor=actor, message=body.message,
                                       resigned=body.resigned)
        status = "sandboxed" if sandbox else "pending"
        batches = [TransferBatch(batch=n, outbox_id=row_id, customers=count, status=status)
                   for n, (row_id, count) in enumerate(started.batches, start=1)]
        return TransferStarted(id=started.id, from_user=from_user.username, to_user=to_user.username,
                               customers=started.customers, sandbox=sandbox, batches=batches)

    try:
        answer = await in_transaction(request.app[SESSIONS], work)
    except TransferRefused as exc:
        raise _refused(exc) from exc
    return respond(answer, status=202)


async def _view(session: AsyncSession, record: TransferRecord) -> TransferOut:
    detail: dict[str, Any] = record.detail
    names = {}
    for key in ("from_user_id", "to_user_id"):
        user = await user_by_id(session, int(detail[key]))
        names[key] = user.username if user is not None else str(detail[key])
    batches, customers = [], []
    for n, row in enumerate(record.batches, start=1):
        batches.append(TransferBatch(batch=n, outbox_id=row.id, customers=len(row.payload.get("lead_ids", [])),
                                     status=row.status))
        for o in batch_outcomes(n, row.status, row.attempts, row.payload, row.response):
            customers.append(CustomerResult(lead_id=o.lead_id, batch=o.batch, code=o.code, message=o.message,
                                            final=o.final, errcode=o.errcode, status=o.status,
                                            takeover_time=o.takeover_time, owner_moved=o.owner_moved))
    return TransferOut(id=record.id, from_user=names["from_user_id"], to_user=names["to_user_id"],
                       created_at=iso(record.at), resigned=bool(detail.get("resigned")),
                       done=all(c.final for c in customers), counts=dict(Counter(c.code for c in customers)),
                       batches=batches, customers=customers)


@requires(CUSTOMER_TRANSFER)
@api_spec("客户转接的结果（每位客户的状态）", response=TransferOut, errors=(404,), tags=("customer-transfers",))
async def get_transfer_view(request: web.Request) -> web.Response:
    transfer_id = path_id(request, "transfer_id", what="客户转接")
    async with request.app[SESSIONS]() as session:
        record = await get_transfer(session, transfer_id)
        if record is None:
            raise not_found("客户转接", transfer_id)
        answer = await _view(session, record)
    return respond(answer)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/customer-transfers", post_transfer)
    app.router.add_get("/api/customer-transfers/{transfer_id}", get_transfer_view)
