"""BANT qualification (Budget, Authority, Need, Timeline): the four fields, their Chinese labels, validation of an
update, and which required fields a lead still lacks before an SDR may hand it to sales. Pure.

A BANT record is a plain dict of field name -> stored value (absent = not known yet). Choice fields store a
stable code; budget stores a range code or, when the prospect named a figure, the free text itself.
"Unknown" (未知) is a value an SDR may record (they asked, the prospect would not say), but it does not
qualify: a required field holding it is still missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

BUDGET, AUTHORITY, NEED, TIMELINE = "budget", "authority", "need", "timeline"
FIELDS = (BUDGET, AUTHORITY, NEED, TIMELINE)
FIELD_LABELS = {BUDGET: "预算", AUTHORITY: "决策权", NEED: "需求", TIMELINE: "采购时间"}
UNKNOWN = "unknown"

Choices = tuple[tuple[str, str], ...]  # (code, Chinese label)
BUDGET_RANGES: Choices = (
    ("under_100k", "10万元以下"),
    ("100k_500k", "10万–50万元"),
    ("500k_1m", "50万–100万元"),
    ("1m_5m", "100万–500万元"),
    ("over_5m", "500万元以上"),
    (UNKNOWN, "未知"),
)
AUTHORITIES: Choices = (
    ("decision_maker", "决策者"),
    ("influencer", "影响者"),
    ("user", "使用者"),
    (UNKNOWN, "未知"),
)
TIMELINES: Choices = (
    ("within_1_month", "1个月内"),
    ("1_3_months", "1–3个月"),
    ("3_6_months", "3–6个月"),
    ("over_6_months", "6个月以上"),
    (UNKNOWN, "未知"),
)
CHOICES: dict[str, Choices] = {AUTHORITY: AUTHORITIES, TIMELINE: TIMELINES}
MAX_BUDGET_TEXT = 200
MAX_NEED = 1000
FREE_TEXT = "<free text>"


class BantError(ValueError):
    """An update the fields refuse; ``field`` names the field, the message (Chinese) says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _check_value(name: str, value: Any) -> str:
    label = FIELD_LABELS[name]
    if not isinstance(value, str):
        raise BantError(name, f"{name}（{label}）须为字符串，或用 null 清除")
    text = value.strip()
    if not text:
        raise BantError(name, f"{name}（{label}）不能为空，清除请用 null")
    if name in CHOICES:
        codes = [code for code, _ in CHOICES[name]]
        if text not in codes:
            raise BantError(name, f"{name}（{label}）须为以下之一：{'、'.join(codes)}")
    limit = {BUDGET: MAX_BUDGET_TEXT, NEED: MAX_NEED}.get(name)
    if limit is not None and len(text) > limit:
        raise BantError(name, f"{name}（{label}）不能超过 {limit} 个字符")
    return text


def parse_update(raw: Mapping[str, Any]) -> dict[str, str | None]:
    """The fields an update sets (a value) or clears (None); unknown keys and bad values raise BantError."""
    for name in raw:
        if name not in FIELDS:
            raise BantError(str(name)[:40], f"未知字段：{str(name)[:40]}（可选 {', '.join(FIELDS)}）")
    if not raw:
        raise BantError("", f"请至少提供一个字段：{', '.join(FIELDS)}")
    return {name: None if value is None else _check_value(name, value) for name, value in raw.items()}


def apply(current: Mapping[str, Any], update: Mapping[str, str | None]) -> dict[str, str]:
    """``current`` with ``update`` applied (None clears a field); only known fields are kept, in field order."""
    merged = {**{k: v for k, v in current.items() if k in FIELDS}, **update}
    return {name: merged[name] for name in FIELDS if isinstance(merged.get(name), str) and merged[name]}


def filled(bant: Mapping[str, Any], name: str) -> bool:
    """The field holds a value that qualifies (not empty, not "unknown")."""
    value = bant.get(name)
    return isinstance(value, str) and bool(value.strip()) and value.strip() != UNKNOWN


def missing(bant: Mapping[str, Any], required: Iterable[str]) -> list[str]:
    """The required fields ``bant`` does not fill, in field order."""
    wanted = set(required)
    return [name for name in FIELDS if name in wanted and not filled(bant, name)]


def label_of(name: str, value: str) -> str:
    """The Chinese label of a stored value (a budget range or a choice), else the free text itself."""
    choices = BUDGET_RANGES if name == BUDGET else CHOICES.get(name, ())
    return dict(choices).get(value, value)


def without_free_text(bant: Mapping[str, str]) -> dict[str, str]:
    """``bant`` with free text (a need, a budget in the prospect's words) replaced by a marker: what the audit log
    keeps, since it outlives an erasure and must hold no personal data; choice codes stay as they are."""
    codes = {name: {code for code, _ in choices} for name, choices in ((BUDGET, BUDGET_RANGES), *CHOICES.items())}
    return {name: value if value in codes.get(name, ()) else FREE_TEXT for name, value in bant.items()}


def missing_message(names: Iterable[str]) -> str:
    return "BANT 信息不完整，请先填写：" + "、".join(FIELD_LABELS[n] for n in names)
