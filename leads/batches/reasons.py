"""What happened to each lead of a batch, as codes (stored, and answered by the API) with Chinese labels."""

from __future__ import annotations

# Exclusions, in the order they are decided (the first that applies is the lead's reason).
UNSUBSCRIBED = "unsubscribed"
FREQUENCY_CAP = "frequency_cap"
RECEIVE_LIMIT = "receive_limit"
NO_WECOM = "no_wecom_relationship"
NOT_OA_FOLLOWER = "not_oa_follower"
NO_OA_TEMPLATE = "no_oa_template"
EXCLUSIONS = {
    UNSUBSCRIBED: "已退订（或取消关注），不发送营销消息",
    FREQUENCY_CAP: "近 7 天收到的营销消息已达频次上限（[nurture] weekly_cap）",
    RECEIVE_LIMIT: "本期已达企业微信客户群发接收上限",
    NO_WECOM: "没有企业微信好友关系，也未关注公众号",
    NOT_OA_FOLLOWER: "未关注公众号",
    NO_OA_TEMPLATE: "只关注了公众号，但未配置模板消息（outbound.fallback_template_id）",
}

# Recipient statuses.
EXCLUDED, QUEUED, SANDBOXED, WAITING = "excluded", "queued", "sandboxed", "waiting"
SENT, UNSENT, NOT_FRIEND, OVER_LIMIT, FAILED, EXPIRED = "sent", "unsent", "not_friend", "over_limit", "failed", \
    "expired"
OA = "oa"  # handed to the outbox as an OA template message: the outbox row's status is the outcome
STATUS_LABELS = {
    EXCLUDED: "未发送（已排除）", QUEUED: "排队中", SANDBOXED: "沙箱模式：未发出",
    WAITING: "等待成员在企业微信确认发送", SENT: "已发送", UNSENT: "成员未发送给该客户",
    NOT_FRIEND: "发送失败：客户不是该成员的好友", OVER_LIMIT: "发送失败：客户已达群发接收上限",
    FAILED: "发送失败：调用企业微信出错", EXPIRED: "成员长时间未确认，已放弃",
    OA: "已转为公众号模板消息",
}
# Statuses that use up one of the customer's receptions (and count towards the frequency cap).
COUNTED = (QUEUED, WAITING, SENT, OA)
FINAL = frozenset({EXCLUDED, SENT, UNSENT, NOT_FRIEND, OVER_LIMIT, FAILED, EXPIRED, SANDBOXED})

# get_groupmsg_send_result: a customer's status.
SEND_RESULT = {0: UNSENT, 1: SENT, 2: NOT_FRIEND, 3: OVER_LIMIT}
# get_groupmsg_task: a member's status (0 not yet sent, 2 sent).
MEMBER_SENT = 2


def result_status(code: object, *, member_done: bool) -> str:
    """A customer's outcome from send_result's status: 0 is "not sent yet" while the member has not sent, and
    "the member left this customer out" once they have; an unknown code is a failure, never "sent"."""
    if code == 0:
        return UNSENT if member_done else WAITING
    return SEND_RESULT.get(code, FAILED) if isinstance(code, int) and not isinstance(code, bool) else FAILED


def status_label(status: str, reason: str = "") -> str:
    if status == EXCLUDED and reason in EXCLUSIONS:
        return EXCLUSIONS[reason]
    return STATUS_LABELS.get(status, status)


# An OA recipient's outcome is its template message's outbox status.
OA_OUTCOMES = {
    "pending": (QUEUED, "公众号模板消息排队中"), "sent": (SENT, "公众号模板消息已发送"),
    "sandboxed": (SANDBOXED, "沙箱模式：公众号模板消息未发出"), "failed": (FAILED, "公众号模板消息发送失败"),
    "suppressed": (EXCLUDED, "发送前已退订，未发送"), "cancelled": (EXCLUDED, "个人信息已删除，未发送"),
}


def outcome(status: str, reason: str, outbox_status: str | None) -> tuple[str, str]:
    """(code, Chinese label) of one recipient, as the batch report and the lead's timeline show it."""
    if status == OA:
        if outbox_status is None:
            return QUEUED, "公众号模板消息排队中"
        return OA_OUTCOMES.get(outbox_status, (outbox_status, f"公众号模板消息：{outbox_status}"))
    return status, status_label(status, reason)
