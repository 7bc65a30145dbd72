"""The content library's table: items (leads.content.ContentItem) from the configuration, a content file or
``PUT /api/content``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from leads.content import ContentItem
from storage.models import ContentItemRow, utcnow

_table = ContentItemRow.__table__
Db = AsyncEngine | AsyncConnection | AsyncSession


async def upsert_content_items(db: Db, items: Iterable[ContentItem], *, replace_all: bool = False) -> None:
    """Write items (all of them or none); ``replace_all`` drops every other item.

    With an engine this is its own transaction; with a connection or a session, part of the caller's.
    """
    items = list(items)
    if isinstance(db, AsyncEngine):
        async with db.begin() as conn:
            await _upsert(conn, items, replace_all)
    else:
        await _upsert(db, items, replace_all)


async def load_content_items(db: Db) -> list[ContentItem]:
    """Every stored item, in no particular order."""
    if isinstance(db, AsyncEngine):
        async with db.connect() as conn:
            rows = (await conn.execute(select(_table))).mappings().all()
    else:
        rows = (await db.execute(select(_table))).mappings().all()
    return [_item(row) for row in rows]


async def _upsert(db: AsyncConnection | AsyncSession, items: list[ContentItem], replace_all: bool) -> None:
    now = utcnow()
    if replace_all:
        await db.execute(delete(_table))
    else:
        await db.execute(delete(_table).where(_table.c.id.in_([i.id for i in items])))
    if items:
        await db.execute(_table.insert(), [_row(item, now) for item in items])


def _row(item: ContentItem, now: datetime) -> dict[str, Any]:
    return {"id": item.id, "kind": item.kind, "title": item.title, "summary": item.summary, "cover": item.cover,
            "url": item.url, "tags": list(item.tags), "stage": item.stage, "key": item.key, "updated_at": now}


def _item(row: Mapping[str, Any]) -> ContentItem:
    return ContentItem(id=row["id"], kind=row["kind"], title=row["title"], url=row["url"], summary=row["summary"],
                       cover=row["cover"], tags=tuple(row["tags"]), stage=row["stage"], key=row["key"])
