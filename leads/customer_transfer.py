"""Handing a member's WeCom customers to a colleague (在职继承): batches, and what each customer's outcome means.

WeCom takes at most 100 customers per ``externalcontact/transfer_customer`` call and answers one errcode per
customer: 0 only means the transfer started (the colleague takes over after 24 hours unless the customer
refuses); ``transfer_result`` then reports the status. WeCom's own limits are reported per customer, never
hidden: each customer can be transferred at most twice in 90 days (errcode 40128), one already being
transferred cannot be again (40129 / 40100). Codes from WeCom's global error-code table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

BATCH_SIZE = 100  # WeCom: "每次最多分配100个客户"
METHOD = "wecom.transfer_customer"  # the outbox method of one batch
MAX_MESSAGE = 200  # transfer_success_msg: "最多200个字符"

# transfer_result statuses.
TAKEN_OVER, WAITING, REFUSED, TAKEOVER_FULL, NO_RECORD = 1, 2, 3, 4, 5
FINAL = frozenset({TAKEN_OVER, REFUSED, TAKEOVER_FULL, NO_RECORD})
STATUS = {
    TAKEN_OVER: ("taken_over", "接替完毕"),
    WAITING: ("waiting", "等待接替（企业微信在 24 小时后自动接替，客户可拒绝）"),
    REFUSED: ("refused", "客户拒绝"),
    TAKEOVER_FULL: ("takeover_full", "接替成员的客户数已达上限"),
    NO_RECORD: ("no_record", "无接替记录"),
}

TOO_OFTEN = 40128  # 客户转接过于频繁（90天内只允许转接一次，同一个客户最多只能转接两次）
IN_PROGRESS = frozenset({40100, 40129})  # 已经在转移流程中 / 当前客户正在转接中
REJECTED = {
    TOO_OFTEN: "该客户 90 天内已转接 2 次，企业微信不允许再次转接",
    40129: "该客户正在转接中，无法再次转接",
    40100: "该客户已在转移流程中",
    40096: "不合法的外部联系人 userid",
    40097: "原跟进成员尚未离职（离职继承只用于已离职成员）",
    40098: "接替成员尚未实名认证",
    40099: "接替成员的客户数已达上限",
    40130: "原跟进人与接替人相同，不可继承",
    40131: "原跟进成员不是该客户的跟进人",
    84061: "不存在该外部联系人关系",
    84074: "没有外部联系人权限",
}

# What an outbox row's status means for the customers of its batch (the row is the call).
ROW = {
    "pending": ("queued", "排队中：尚未发送给企业微信"),
    "sandboxed": ("sandboxed", "沙箱模式：未发送给企业微信"),
}


def batches(items: Sequence[T], size: int = BATCH_SIZE) -> list[list[T]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def rejection_text(errcode: int) -> str:
    return REJECTED.get(errcode, f"企业微信拒绝转接（错误码 {errcode}）")


@dataclass(frozen=True, slots=True)
class CustomerOutcome:
    lead_id: int
    batch: int
    code: str  # queued, sandboxed, failed, rejected, or a status code (waiting, taken_over, ...)
    message: str  # Chinese, for the admin
    final: bool
    errcode: int | None = None
    status: int | None = None
    takeover_time: int | None = None  # epoch seconds (the future automatic takeover while waiting)
    owner_moved: bool = False


def started(errcode: int, attempts: int) -> bool:
    """Whether WeCom began this customer's transfer: 0, or "already in progress" on a retried call (our
    earlier attempt got through before the answer was lost)."""
    return errcode == 0 or (attempts > 1 and errcode in IN_PROGRESS)


def batch_outcomes(batch: int, row_status: str, attempts: int, payload: dict[str, Any],
                   response: dict[str, Any] | None) -> list[CustomerOutcome]:
    """Each customer of one batch: from the outbox row's status, WeCom's answer and the polled results."""
    lead_ids = [int(x) for x in payload.get("lead_ids", [])]
    euids = [str(x) for x in payload.get("external_userid", [])]
    response = response or {}
    if row_status in ROW:
        code, text = ROW[row_status]
        return [CustomerOutcome(lead, batch, code, text, False) for lead in lead_ids]
    if row_status != "sent":
        errcode = response.get("errcode")
        why = rejection_text(errcode) if isinstance(errcode, int) else "调用企业微信失败"
        return [CustomerOutcome(lead, batch, "failed", f"整批失败：{why}", True,
                                errcode if isinstance(errcode, int) else None) for lead in lead_ids]
    answered = {str(c.get("external_userid")): c.get("errcode", 0) for c in response.get("customer", [])}
    polled = response.get("takeover") or {}
    moved = set(response.get("moved") or [])
    out = []
    for lead, euid in zip(lead_ids, euids, strict=False):
        errcode = answered.get(euid, 0)
        if not isinstance(errcode, int) or not started(errcode, attempts):
            errcode = int(errcode) if isinstance(errcode, int) else -1
            out.append(CustomerOutcome(lead, batch, "rejected", rejection_text(errcode), True, errcode))
            continue
        result = polled.get(euid) or {}
        status = int(result.get("status", WAITING))
        code, text = STATUS.get(status, ("unknown", f"未知的接替状态 {status}"))
        out.append(CustomerOutcome(lead, batch, code, text, status in FINAL, 0, status,
                                   result.get("takeover_time"), lead in moved))
    return out


def latest_results(customers: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """transfer_result's entries by external_userid; the pair's history may list a customer twice (A→B,
    B→A, A→B): the latest takeover_time is this transfer."""
    out: dict[str, dict[str, int]] = {}
    for c in customers:
        euid, status, at = c.get("external_userid"), c.get("status"), c.get("takeover_time", 0)
        if not isinstance(euid, str) or not isinstance(status, int):
            continue
        at = at if isinstance(at, int) else 0
        if euid not in out or at >= out[euid]["takeover_time"]:
            out[euid] = {"status": status, "takeover_time": at}
    return out
