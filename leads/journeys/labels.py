"""A journey as the console lists it: its step tree flattened in order, each step with a Chinese label and the
position enrolments waiting for it carry (journey_enrolments.position)."""

from __future__ import annotations

from dataclasses import dataclass

from leads.journeys.definition import NO, YES, Action, Check, Condition, Step, Trigger, Wait
from leads.journeys.plan import encode

ACTION_LABELS = {
    "oa_template": "发送公众号模板消息", "oa_custom": "发送公众号客服消息", "wecom_task": "由负责人发送企业微信消息",
    "tag_add": "添加标签", "tag_remove": "移除标签", "stage": "变更阶段", "notify_owner": "通知负责人",
    "sdr_task": "创建 SDR 任务", "webhook": "调用 Webhook",
}
TRIGGER_LABELS = {
    "event": "发生行为", "score_crossed": "兴趣分越过阈值", "quadrant_entered": "进入象限",
    "stage_entered": "进入阶段", "form_submitted": "表单提交", "tag_added": "添加标签", "inactive_days": "长期未互动",
    "returned_by_sales": "销售退回",
}
BEHAVIOUR_LABELS = {"opened": "打开过内容", "clicked": "点击过链接", "follows_oa": "关注公众号",
                    "replied": "回复过消息"}


@dataclass(frozen=True, slots=True)
class StepLine:
    position: str
    depth: int
    kind: str  # action | wait | if
    branch: str  # "" | "yes" | "no": the branch this step opens
    label: str


def trigger_label(trigger: Trigger) -> str:
    label = TRIGGER_LABELS.get(trigger.kind, trigger.kind)
    if trigger.kind == "inactive_days" and trigger.days is not None:
        return f"{label} {trigger.days} 天"
    if trigger.kind == "score_crossed" and trigger.threshold is not None:
        return f"{label} {trigger.threshold:g}"
    if trigger.kind == "returned_by_sales" and trigger.reasons:
        return f"{label}（{'、'.join(trigger.reasons)}）"
    return f"{label} {trigger.value}".strip()


def flatten(steps: tuple[Step, ...], prefix: tuple[int | str, ...] = (), depth: int = 0,
            branch: str = "") -> list[StepLine]:
    lines: list[StepLine] = []
    for i, node in enumerate(steps):
        position = encode((*prefix, i))
        opens = branch if i == 0 else ""
        if isinstance(node, Condition):
            lines.append(StepLine(position, depth, "if", opens, f"判断：{_check(node.check)}"))
            lines += flatten(node.yes, (*prefix, i, YES), depth + 1, YES)
            lines += flatten(node.no, (*prefix, i, NO), depth + 1, NO)
        elif isinstance(node, Wait):
            lines.append(StepLine(position, depth, "wait", opens, _wait(node)))
        else:
            lines.append(StepLine(position, depth, "action", opens, _action(node)))
    return lines


def _check(check: Check) -> str:
    if check.kind == "tag":
        return f"有标签「{check.name}」"
    if check.kind == "profile":
        return f"{check.name} 为「{check.value}」"
    if check.kind == "score":
        return f"兴趣分 ≥ {check.threshold:g}"
    if check.kind == "return_reason":
        return f"退回原因为「{check.value}」"
    label = BEHAVIOUR_LABELS.get(check.name, check.name)
    if check.name == "follows_oa":
        return label
    return f"{check.within.days} 天内{label}" if check.within.days else f"近期{label}"


def _wait(wait: Wait) -> str:
    parts = []
    if wait.duration is not None:
        days, hours = wait.duration.days, wait.duration.seconds // 3600
        minutes = wait.duration.seconds % 3600 // 60
        parts.append("".join(f"{n} {u}" for n, u in ((days, "天"), (hours, "小时"), (minutes, "分钟")) if n))
    if wait.until is not None:
        parts.append(f"到 {wait.until:%H:%M}")
    return "等待 " + "，".join(parts)


def _action(action: Action) -> str:
    label = ACTION_LABELS.get(action.kind, action.kind)
    detail = action.param("tag") or action.param("stage") or action.param("template") or action.param("text")[:24]
    return f"{label} {detail}".strip()


REASON_LABELS = {
    "ok": "", "quiet_hours": "免打扰时段，早上再发", "unsubscribed": "已退订", "not_oa_follower": "未关注公众号",
    "no_wecom_relationship": "不是成员的企业微信客户", "oa_window_template": "超出 48 小时客服消息窗口，改发模板消息",
    "oa_window_closed": "超出 48 小时客服消息窗口", "replied": "客户已回复", "journey_changed": "旅程已修改",
    "journey_removed": "旅程已删除", "lead_gone": "潜客已合并或删除", "stage_not_allowed": "当前阶段不允许此变更",
    "stage_unchanged": "已处于该阶段", "no_owner_wecom": "负责人未绑定企业微信", "completed": "",
    "too_many_steps": "步骤过多",
}
OUTCOME_LABELS = {"sent": "已排队发送", "done": "已执行", "skipped": "未执行", "deferred": "已推迟",
                  "failed": "执行失败"}


def reason_label(reason: str) -> str:
    """"weekly_cap:oa" -> "超过每周发送上限（oa）", "stage:sal" -> "到达阶段 sal"; unknown reasons as they are."""
    head, _, tail = reason.partition(":")
    if head == "weekly_cap":
        return f"超过每周发送上限（{ {'oa': '公众号', 'wecom': '企业微信'}.get(tail, tail) }）"
    if head == "stage" and tail:
        return f"到达阶段 {tail}"
    if head == "failed":
        return f"多次重试仍失败（{tail}）"
    return REASON_LABELS.get(reason, reason)


def step_line(kind: str, action: str, outcome: str, reason: str) -> tuple[str, str]:
    """A journey_steps row as the lead's timeline shows it: (title, status)."""
    if kind == "enrol":
        return "进入培育旅程", ""
    if kind == "wait":
        return "等待下一步", ""
    if kind == "done":
        return "完成培育旅程", ""
    if kind == "exit":
        return "退出培育旅程", reason_label(reason)
    label = ACTION_LABELS.get(action, action or "动作")
    status = OUTCOME_LABELS.get(outcome, outcome)
    why = reason_label(reason)
    return label, f"{status}：{why}" if why else status
