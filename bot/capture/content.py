"""The content library: configured items plus a content file, kept in the database (so the API can change
it and every process sees the same) and in memory (so replies never wait for the database)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config.capture import ContentItem, parse_content_items
from bot.errors import ConfigError
from storage.models import ContentItemRow, utcnow


class ContentLibrary:
    def __init__(self) -> None:
        self._items: dict[str, ContentItem] = {}

    def get(self, content_id: str) -> ContentItem | None:
        return self._items.get(content_id)

    def all(self) -> list[ContentItem]:
        return sorted(self._items.values(), key=lambda i: i.id)

    def replace(self, items: list[ContentItem]) -> None:
        self._items = {item.id: item for item in items}

    async def refresh(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(ContentItemRow.__table__))).mappings().all()
        self.replace([_item(row) for row in rows])


def load_content_file(path: str) -> tuple[ContentItem, ...]:
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("content.file", f"file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("content.file", f"{path} is not valid TOML: {exc}") from exc
    return parse_content_items(raw, "content.file")


async def upsert_items(engine: AsyncEngine, items: list[ContentItem], *, replace_all: bool = False) -> None:
    """Write items to the database (all of them in one transaction); ``replace_all`` drops the others."""
    now = utcnow()
    async with engine.begin() as conn:
        if replace_all:
            await conn.execute(delete(ContentItemRow))
        else:
            await conn.execute(delete(ContentItemRow).where(ContentItemRow.id.in_([i.id for i in items])))
        if items:
            await conn.execute(ContentItemRow.__table__.insert(), [_row(item, now) for item in items])


def _row(item: ContentItem, now: object) -> dict[str, object]:
    return {"id": item.id, "kind": item.kind, "title": item.title, "summary": item.summary, "cover": item.cover,
            "url": item.url, "tags": list(item.tags), "stage": item.stage, "key": item.key, "updated_at": now}


def _item(row: object) -> ContentItem:
    r = dict(row)  # type: ignore[call-overload]
    return ContentItem(id=r["id"], kind=r["kind"], title=r["title"], url=r["url"], summary=r["summary"],
                       cover=r["cover"], tags=tuple(r["tags"]), stage=r["stage"], key=r["key"])
