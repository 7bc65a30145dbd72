"""The text of one reminder: a member's due tasks in one WeCom app message. Pure.

WeCom refuses a text message over 2,048 bytes, so the first tasks are listed (at most ``MAX_LISTED``, each
line shortened) and the rest counted ("另有 M 项"), with a link to the console's task page. A lead is named
only to a member who may read it (leads/access.py); phone numbers and emails in titles and names are masked:
the message sits on a phone, outside the console's access rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.logs.redact import redact
from leads.lead_filters import CHINA

MAX_BYTES = 2048  # WeCom's limit for a text app message
MAX_LISTED = 10  # a longer list is unreadable on a phone: the console has the rest
MAX_TITLE = 60
MAX_NAME = 30


@dataclass(frozen=True, slots=True)
class Line:
    """One task as the message shows it. ``lead_label`` is empty when the member may not see the lead."""

    task_id: int
    lead_id: int
    title: str
    lead_label: str
    due_at: datetime


def _short(text: str, limit: int) -> str:
    text = " ".join(redact(text).split())  # one line: a title with newlines would break the list
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lead_label(name: str, company: str) -> str:
    parts = [_short(p, MAX_NAME) for p in (name, company) if p.strip()]
    return " · ".join(parts)


def due_text(at: datetime) -> str:
    return at.astimezone(CHINA).strftime("%m月%d日 %H:%M")


def _item(n: int, line: Line, base_url: str) -> str:
    who = line.lead_label or f"潜客 #{line.lead_id}"
    title = _short(line.title, MAX_TITLE) or "（无标题）"
    return f"\n\n{n}. {title}\n潜客：{who}\n截止：{due_text(line.due_at)}\n{base_url}/console/leads/{line.lead_id}"


def _footer(rest: int, base_url: str) -> str:
    if rest <= 0:
        return f"\n\n全部任务：{base_url}/console/tasks"
    return f"\n\n另有 {rest} 项到期任务，请在工作台查看：{base_url}/console/tasks"


def reminder_text(lines: Sequence[Line], base_url: str) -> str:
    """The message for ``lines`` (due first first), within ``MAX_BYTES`` bytes of UTF-8."""
    base_url = base_url.rstrip("/")
    text = f"【任务到期提醒】您有 {len(lines)} 项任务已到期（北京时间）："
    shown = 0
    for n, line in enumerate(lines[:MAX_LISTED], start=1):
        candidate = text + _item(n, line, base_url)
        if len((candidate + _footer(len(lines) - n, base_url)).encode()) > MAX_BYTES:
            break
        text, shown = candidate, n
    return text + _footer(len(lines) - shown, base_url)
