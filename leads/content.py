"""A content library item: an article, whitepaper, video, livestream or case study the bot can send.

Configured (``[content]``, a content file), changed through ``PUT /api/content``, stored by
storage/repos/content.py and sent as tracked links; the same value everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass


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
