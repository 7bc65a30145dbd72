"""The console's lead list, pure: the filter it is asked for, what a search box entry means, how a phone number
is shown (masked) and how a row becomes CSV cells. storage/repos/lead_search.py turns a LeadFilter into SQL."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from leads.forms import normalise_email
from leads.lifecycle import STAGE_LABELS
from leads.scoring_rules import QUADRANT_LABELS

# The console's users work in China: a date typed in a filter is a day in Beijing time (UTC+8, no DST).
CHINA = timezone(timedelta(hours=8))
SORTS = ("last_activity_at", "created_at", "display_name", "stage", "ability", "motivation")
ORDERS = ("desc", "asc")
CONSENTS = ("unknown", "granted", "revoked")
CONSENT_LABELS = {"unknown": "未知", "granted": "已同意", "revoked": "已退订"}
OWNER_NONE = "none"  # the owner filter's value for "in the pool" (no owner)
COUNT_CAP = 1_000  # a list counts at most this many matches, then says "1000+"
# Shorter name/company fragments have no trigram to search by: they match names that start with them.
MIN_INFIX = 3

# Search box shapes
EMAIL, PHONE, PHONE_LAST4, TEXT = "email", "phone", "phone_last4", "text"
_SEPARATORS = re.compile(r"[\s\-()（）]")
_PHONE = re.compile(r"(?:\+?86)?(\d{11})")
_LAST4 = re.compile(r"\d{4}")


@dataclass(frozen=True, slots=True)
class Search:
    kind: str  # EMAIL, PHONE, PHONE_LAST4 or TEXT
    value: str  # normalised the way identities are stored (leads/forms.py); TEXT: the fragment as typed


@dataclass(frozen=True, slots=True)
class LeadFilter:
    """What the list is asked for. Empty tuples and None mean "any"."""

    stages: tuple[str, ...] = ()
    quadrants: tuple[str, ...] = ()
    consents: tuple[str, ...] = ()
    ability_min: float | None = None
    ability_max: float | None = None
    motivation_min: float | None = None
    motivation_max: float | None = None
    channel: str | None = None
    scene: str | None = None
    owner_id: int | None = None
    pool: bool = False  # only leads without an owner
    team_id: int | None = None
    tag: str | None = None
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    active_from: datetime | None = None
    active_before: datetime | None = None
    search: Search | None = None
    sort: str = "last_activity_at"
    order: str = "desc"


def classify_query(raw: str) -> Search | None:
    """The search box: an "@" means an email (exact), 11 digits (optionally +86) a phone number (exact), exactly
    4 digits a phone number's last four, anything else a name or company fragment. None for blank input."""
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text:
        return None
    if "@" in text:
        email = normalise_email(text)
        return Search(EMAIL, email if email is not None else text.lower())
    compact = _SEPARATORS.sub("", text)
    if match := _PHONE.fullmatch(compact):
        return Search(PHONE, match[1])
    if _LAST4.fullmatch(compact):
        return Search(PHONE_LAST4, compact)
    return Search(TEXT, text)


def like_pattern(fragment: str) -> str:
    r"""``%fragment%`` for ``LIKE ... ESCAPE '\'`` (``fragment%`` below MIN_INFIX characters: a one- or
    two-character fragment, such as a surname, matches from the start); the user's own %, _ and \ match
    themselves."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%" if len(fragment) >= MIN_INFIX else f"{escaped}%"


def day_start(day: date) -> datetime:
    """The first instant of ``day`` in Beijing, in UTC."""
    return datetime.combine(day, time(0), CHINA).astimezone(UTC)


def day_after(day: date) -> datetime:
    """The first instant after ``day`` in Beijing (an exclusive upper bound), in UTC."""
    return day_start(day + timedelta(days=1))


def mask_phone(phone: str | None) -> str:
    """138****5678: enough to recognise a number, not to call it. Short or odd values are hidden entirely."""
    if not phone:
        return ""
    digits = "".join(ch for ch in phone if ch.isascii() and ch.isdigit())
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) < 8:
        return "***"
    return f"{digits[:3]}****{digits[-4:]}"


def count_label(count: int, capped: bool) -> str:
    return f"{COUNT_CAP}+" if capped else str(count)


# CSV: the column headers (Chinese, as Excel shows them) and one cell per value.
CSV_HEADER = ("线索ID", "姓名", "公司", "手机号（脱敏）", "阶段", "象限", "能力分", "意向分", "负责人", "标签",
              "授权状态", "创建时间", "最近活动")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # the C0/C1 controls but tab and newline


def csv_cell(value: Any) -> str:
    """A cell Excel shows as text: a value a spreadsheet would run as a formula gets a leading apostrophe
    (CSV injection), control characters other than newlines are dropped."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, datetime):
        return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
    text = _CONTROL.sub("", str(value))
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def _minute(value: datetime | None, cache: dict[datetime, str]) -> str:
    if value is None:
        return ""
    text = cache.get(value)
    if text is None:
        if len(cache) > 4096:  # an export's timestamps repeat (imports, campaigns); a bounded memo
            cache.clear()
        text = cache[value] = value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
    return text


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if not text.isprintable():  # rare: only then look for control characters
        text = _CONTROL.sub("", text)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def csv_rows(rows: list[tuple[Any, ...]], memo: dict[datetime, str]) -> list[list[str]]:
    """Export rows (storage/repos/lead_export.py's columns) as CSV cells, the same as ``csv_cell`` would make
    them but column by column (an export formats millions of cells): codes become their Chinese labels
    (stage, quadrant, consent), the phone is masked, free text is defused. ``memo``: the export's own cache of
    formatted times."""
    stages, quadrants, consents = STAGE_LABELS, QUADRANT_LABELS, CONSENT_LABELS
    return [[str(lead_id), _text(name), _text(company), mask_phone(phone), stages.get(stage, stage),
             quadrants.get(quadrant, quadrant or ""), _score(ability), _score(motivation), _text(owner), _text(tags),
             consents.get(consent, consent), _minute(created, memo), _minute(active, memo)]
            for lead_id, name, company, phone, stage, quadrant, ability, motivation, owner, tags, consent, created,
            active in rows]
