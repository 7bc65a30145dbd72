"""The lead profile a person edits on the 360: a fixed set of fields, their validation, and what changed. Pure.

The fields are the form catalogue's (leads/form_fields.py: same codes, so scoring and assignment rules read an
edited value exactly as a submitted one) minus phone and email, which are identities, plus a city and a website.
``display_name`` lives on the lead row, the rest in ``lead.profile``; other profile keys (``bant``, what the bot
records) are never touched by an edit. An update maps a field to a new value, or to None to clear it ("" from a
console form means the same). ``audit_view`` keeps the values themselves: the profile history on the 360 is
these audit entries, and the erasure blanks them (storage/repos/erasure.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leads.form_fields import CHOICE, FIELD_SPECS, TEXT, FieldSpec

DISPLAY_NAME = "display_name"
MAX_DISPLAY_NAME = 200  # leads.display_name
URL = "url"
_EDITABLE = ("name", "company", "job_title", "department", "company_size", "company_type", "industry", "region",
             "product_interest")
PROFILE_SPECS: dict[str, FieldSpec] = {
    **{name: FIELD_SPECS[name] for name in _EDITABLE},
    "city": FieldSpec("city", "所在城市", TEXT, 50, placeholder="例如：杭州"),
    "website": FieldSpec("website", "公司网站", URL, 200, placeholder="https://"),
}
FIELDS = (DISPLAY_NAME, *PROFILE_SPECS)
LABELS = {DISPLAY_NAME: "显示名称", **{name: spec.label for name, spec in PROFILE_SPECS.items()}}
# Control characters (newlines included: every field is one line), and the bidi overrides that disguise text.
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_URL = re.compile(r"https?://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?(?:[/?#][^\s]*)?", re.IGNORECASE)


class ProfileError(ValueError):
    """A refused update: ``field`` names the field, the message (Chinese) says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    before: str | None
    after: str | None


def _limit(name: str) -> int:
    return MAX_DISPLAY_NAME if name == DISPLAY_NAME else PROFILE_SPECS[name].max_len


def _check(name: str, value: Any) -> str | None:
    label = LABELS[name]
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProfileError(name, f"{label}须为文本")
    text = value.strip()
    if not text:
        return None  # an emptied form field clears it
    if _BAD_CHARS.search(text):
        raise ProfileError(name, f"{label}不能包含换行或控制字符")
    if len(text) > _limit(name):
        raise ProfileError(name, f"{label}不能超过 {_limit(name)} 个字符")
    spec = PROFILE_SPECS.get(name)
    if spec is not None and spec.kind == CHOICE and text not in dict(spec.choices):
        raise ProfileError(name, f"{label}须为列表中的选项")
    if spec is not None and spec.kind == URL and not _URL.fullmatch(text):
        raise ProfileError(name, f"{label}须为 http:// 或 https:// 开头的网址")
    return text


def parse_update(raw: Mapping[str, Any]) -> dict[str, str | None]:
    """The fields an update sets (a value) or clears (None); unknown fields and bad values raise ProfileError."""
    for name in raw:
        if name not in FIELDS:
            raise ProfileError(str(name)[:40], f"未知字段：{str(name)[:40]}")
    if not raw:
        raise ProfileError("", "请至少修改一个字段")
    return {name: _check(name, value) for name, value in raw.items()}


def current(display_name: str | None, profile: Mapping[str, Any]) -> dict[str, str | None]:
    """Every editable field's value now (None when unset; a stored non-string shows as absent)."""
    values: dict[str, str | None] = {DISPLAY_NAME: display_name or None}
    for name in PROFILE_SPECS:
        stored = profile.get(name)
        values[name] = stored if isinstance(stored, str) and stored else None
    return values


def changes(before: Mapping[str, str | None], update: Mapping[str, str | None]) -> list[Change]:
    """The fields whose value the update really changes, in field order."""
    return [Change(name, before.get(name), update[name]) for name in FIELDS
            if name in update and before.get(name) != update[name]]


def apply(profile: Mapping[str, Any], update: Mapping[str, str | None]) -> dict[str, Any]:
    """``profile`` (a new dict) with the update's profile fields set or removed; other keys kept as they are."""
    result = dict(profile)
    for name, value in update.items():
        if name == DISPLAY_NAME:
            continue
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def audit_view(found: list[Change]) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """(before, after) of the changed fields for the audit entry: the profile history the 360 shows."""
    return {c.field: c.before for c in found}, {c.field: c.after for c in found}


def label_of(name: str, value: str | None) -> str:
    """How the 360 shows a stored value: a choice's Chinese label, free text as it is, "—" when unset."""
    if value is None or value == "":
        return "—"
    spec = PROFILE_SPECS.get(name)
    return spec.label_of(value) if spec is not None else value
