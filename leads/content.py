"""A content library item: an article, whitepaper, video, livestream or case study the bot can send.

Configured (``[content]``, a content file), changed through ``PUT /api/content``, stored by
storage/repos/content.py and sent as tracked links; the same value everywhere.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class ContentItem:
    id: str
    kind: str
    title: str
    url: str
    summary: str = ""
    cover: str = ""
    tags: tuple[str, ...] = ()
    stage: str = "awareness"
    key: bool = False  # a key whitepaper scores more


# Column widths of storage's content_items (storage/models.py ContentItemRow) and the bounds of what WeChat
# shows: a longer value is refused here, with its name, rather than by the database.
MAX_TITLE = 200
MAX_SUMMARY = 2000
MAX_URL = 1000
MAX_COVER = 500
MAX_TAGS = 20
MAX_TAG = 100  # a content tag can become a lead tag (lead_tags.tag is 100 characters)
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def bad_text(value: str) -> bool:
    """Text no column or WeChat API can take: NUL (PostgreSQL refuses it) or a lone UTF-16 surrogate (not
    encodable as UTF-8; JSON's \\u escapes can produce both)."""
    return _BAD_TEXT.search(value) is not None


def _host_ok(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")  # 例子.中国 → xn--fsqu00a.xn--fiqs8s
    except UnicodeError:
        return False
    labels = ascii_host.lower().rstrip(".").split(".")
    return len(labels) >= 2 and all(_LABEL.fullmatch(label) for label in labels)


def https_url_problem(url: str) -> str | None:
    """Why ``url`` is not a plain ``https://`` URL with a real host (parsed, not prefix-matched), or None."""
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cs") for ch in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced [IPv6] literal
        return "is not a valid URL"
    if parts.scheme.lower() != "https":
        return "must be an https:// URL"
    if "@" in parts.netloc or "\\" in parts.netloc:
        return "must not carry credentials or backslashes in the host"
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        return "has an invalid port"
    if not parts.hostname or not _host_ok(parts.hostname):
        return "must name a host (https://example.com/...)"
    return None


def item_problems(item: ContentItem) -> list[tuple[str, str]]:
    """(field, problem) for each value that cannot be stored or sent; empty when the item is fine."""
    problems: list[tuple[str, str]] = []
    for name, limit in (("title", MAX_TITLE), ("summary", MAX_SUMMARY), ("url", MAX_URL), ("cover", MAX_COVER)):
        value = getattr(item, name)
        if len(value) > limit:
            problems.append((name, f"must be at most {limit} characters"))
        elif bad_text(value):
            problems.append((name, "must not contain NUL or invalid Unicode"))
    if len(item.tags) > MAX_TAGS:
        problems.append(("tags", f"at most {MAX_TAGS} tags"))
    if any(not tag.strip() or len(tag) > MAX_TAG or bad_text(tag) for tag in item.tags):
        problems.append(("tags", f"each tag must be 1 to {MAX_TAG} characters of text"))
    for name in ("url", "cover"):
        value = getattr(item, name)
        problem = https_url_problem(value) if value or name == "url" else None
        if problem:
            problems.append((name, problem))
    return problems
