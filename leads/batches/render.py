"""Personalisation of a batch message: ``{name}``, ``{company}`` and ``{sender}`` in the text.

A WeCom mass message is one text for all of a task's customers (WeCom sends it as is), so there the customer's
fields read as their neutral fallback ("客户", "贵公司") and only ``{sender}`` is the member's; an OA template
message is per recipient and gets all three. Text outside the fields is kept verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

FIELDS = {"name": "姓名", "company": "公司", "sender": "发送成员"}
FALLBACKS = {"name": "客户", "company": "贵公司", "sender": "您的顾问"}  # "{name}您好" reads "客户您好"
CUSTOMER_FIELDS = frozenset({"name", "company"})
MAX_TEXT_BYTES = 4000  # add_msg_template: text.content "最多4000个字节"
MAX_VALUE = 60  # characters of one field's value: a long company name must not crowd out the message
_PLACEHOLDER = re.compile(r"\{([^{}]{0,40})\}")


def unknown_fields(template: str) -> list[str]:
    """Placeholders that are not fields, in order (the API refuses the message with their names)."""
    return [m[1] for m in _PLACEHOLDER.finditer(template) if m[1] not in FIELDS]


def cut_bytes(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character."""
    raw = text.encode("utf-8")
    return text if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore")


def render(template: str, values: Mapping[str, str | None], *, per_customer: bool = True) -> str:
    """The text for one recipient (``per_customer``) or one WeCom task (customer fields as fallbacks)."""

    def field(m: re.Match[str]) -> str:
        key = m[1]
        if key not in FIELDS:
            return m[0]
        value = values.get(key) if per_customer or key not in CUSTOMER_FIELDS else None
        value = (value or "").strip()[:MAX_VALUE]
        return value or FALLBACKS[key]

    return cut_bytes(_PLACEHOLDER.sub(field, template))
