"""Handing a member's WeCom customers to a colleague (在职继承, or 离职继承 for a member who left WeCom).

``start_transfer`` writes, in the caller's transaction, one outbox row "wecom.transfer_customer" per batch of
≤ 100 customers and the audit entry that is the transfer's record (its id is the transfer id): nothing is
lost if the process dies, the outbox sender makes the calls (live mode; in sandbox mode the rows are only
kept), and no transaction waits on WeCom. WeCom's answer lands on each row; bot/handoff/transfer_poll.py then
polls ``transfer_result`` until every customer's outcome is final and moves the lead's owner on 接替完毕.

No network and no wechatpy here: the console imports this module (``enqueue`` comes in as a parameter).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leads.customer_transfer import MAX_MESSAGE, METHOD, batches
from storage.models import User, utcnow
from storage.repos import audit as audit_repo
from storage.repos.transfers import ACTION, TARGET_KIND, Customer, wecom_customers

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

Enqueue = Callable[..., Awaitable[int | None]]  # bot.outbox.enqueue.enqueue


class TransferRefused(Exception):
    """Bad input: nothing was written. ``status`` 400, ``code`` for the API, ``message`` in Chinese."""

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int | None
    label: str
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class StartedTransfer:
    id: int
    customers: int
    batches: list[tuple[int, int]]  # (outbox row id, customers in it), in order


def check_users(from_user: User, to_user: User) -> None:
    if from_user.id == to_user.id:
        raise TransferRefused("same_user", "原跟进人与接替人不能是同一人")
    for role, user in (("原跟进人", from_user), ("接替人", to_user)):
        if not user.wecom_userid:
            raise TransferRefused("no_wecom_userid", f"{role} {user.username} 未绑定企业微信 userid")
    if to_user.wecom_userid == from_user.wecom_userid:
        raise TransferRefused("same_user", "原跟进人与接替人的企业微信 userid 相同")
    if to_user.disabled_at is not None:
        raise TransferRefused("user_disabled", f"接替人 {to_user.username} 已停用")


def check_message(message: str | None) -> None:
    if message is not None and len(message) > MAX_MESSAGE:
        raise TransferRefused("bad_field", f"message 最多 {MAX_MESSAGE} 个字符")


async def pick_customers(session: AsyncSession, from_user: User, lead_ids: Sequence[int] | None) -> list[Customer]:
    """The customers to hand over: all of the member's WeCom customers, or the listed leads, each of which
    must be one of them (else a 400 naming the first few that are not)."""
    assert from_user.wecom_userid  # check_users first
    customers = await wecom_customers(session, from_user.id, from_user.wecom_userid, lead_ids)
    if lead_ids is not None:
        missing = sorted(set(lead_ids) - {c.lead_id for c in customers})
        if missing:
            shown = "、".join(str(i) for i in missing[:10]) + ("…" if len(missing) > 10 else "")
            raise TransferRefused("not_customer", f"这些潜客不是 {from_user.username} 的企业微信客户：{shown}")
    if not customers:
        raise TransferRefused("no_customers", f"{from_user.username} 没有可转接的企业微信客户")
    return customers


async def start_transfer(session: AsyncSession, enqueue: Enqueue, *, from_user: User, to_user: User,
                         customers: Sequence[Customer], sandbox: bool, actor: Actor, message: str | None = None,
                         resigned: bool = False, at: datetime | None = None) -> StartedTransfer:
    """Enqueue the batches and record the transfer, in the caller's transaction."""
    check_users(from_user, to_user)
    check_message(message)
    at = at or utcnow()
    key = secrets.token_hex(8)  # the batches' idempotency keys, before the audit entry (and its id) exists
    rows: list[tuple[int, int]] = []
    for n, chunk in enumerate(batches(list(customers)), start=1):
        payload: dict[str, Any] = {
            "handover_userid": from_user.wecom_userid, "takeover_userid": to_user.wecom_userid,
            "external_userid": [c.external_userid for c in chunk], "lead_ids": [c.lead_id for c in chunk],
            "from_user_id": from_user.id, "to_user_id": to_user.id, "batch": n, "resigned": resigned,
        }
        if message:
            payload["transfer_success_msg"] = message
        row_id = await enqueue(session, target="wecom", method=METHOD, payload=payload,
                               idempotency_key=f"customer-transfer:{key}:{n}", sandbox=sandbox)
        assert row_id is not None  # a fresh random key
        rows.append((row_id, len(chunk)))
    entry = await audit_repo.record(
        session, action=ACTION, actor_user_id=actor.user_id, actor_label=actor.label, target_kind=TARGET_KIND,
        target_id=key, ip=actor.ip, at=at,
        after={"from_user_id": from_user.id, "to_user_id": to_user.id, "customers": len(customers),
               "batches": [row_id for row_id, _ in rows], "resigned": resigned, "sandbox": sandbox})
    return StartedTransfer(entry.id, len(customers), rows)
