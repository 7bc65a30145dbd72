"""The content library: configured items plus a content file, kept in the database (so the API can change
it and every process sees the same: storage/repos/content.py) and in memory (so replies never wait for the
database)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from bot.config.capture import parse_content_items
from bot.errors import ConfigError
from leads.content import ContentItem
from storage.repos.content import Db, load_content_items


class ContentLibrary:
    def __init__(self) -> None:
        self._items: dict[str, ContentItem] = {}

    def get(self, content_id: str) -> ContentItem | None:
        return self._items.get(content_id)

    def all(self) -> list[ContentItem]:
        return sorted(self._items.values(), key=lambda i: i.id)

    def replace(self, items: list[ContentItem]) -> None:
        self._items = {item.id: item for item in items}

    async def refresh(self, db: Db) -> None:
        """Replace the items in memory with the stored ones (``db``: the engine, or a connection or session)."""
        self.replace(await load_content_items(db))


def load_content_file(path: str) -> tuple[ContentItem, ...]:
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("content.file", f"file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("content.file", f"{path} is not valid TOML: {exc}") from exc
    return parse_content_items(raw, "content.file")

