"""storage/repos/content.py on both backends: upsert by id, replace_all, and the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from leads.content import ContentItem
from storage.db import session_factory
from storage.repos.content import load_content_items, upsert_content_items


@dataclass(frozen=True)
class Item:  # any object with a content item's fields will do
    id: str
    kind: str = "article"
    title: str = "标题"
    url: str = "https://example.com/a"
    summary: str = ""
    cover: str = ""
    tags: tuple[str, ...] = ()
    stage: str = "awareness"
    key: bool = False


async def _by_id(db) -> dict[str, ContentItem]:
    return {item.id: item for item in await load_content_items(db)}


async def test_upsert_adds_and_replaces_by_id_and_keeps_the_others(engine, backend):
    await upsert_content_items(engine, [Item("a"), Item("b", kind="whitepaper", tags=("HR", "私有化"), key=True)])
    await upsert_content_items(engine, [Item("b", title="新标题", stage="decision")])
    stored = await _by_id(engine)
    assert stored == {
        "a": ContentItem(id="a", kind="article", title="标题", url="https://example.com/a", summary="",
                         cover="", tags=(), stage="awareness", key=False),
        "b": ContentItem(id="b", kind="article", title="新标题", url="https://example.com/a", summary="",
                         cover="", tags=(), stage="decision", key=False),
    }


async def test_replace_all_drops_every_other_item(engine, backend):
    await upsert_content_items(engine, [Item("a"), Item("b")])
    await upsert_content_items(engine, [Item("c", tags=("x",))], replace_all=True)
    assert list(await _by_id(engine)) == ["c"]
    assert (await _by_id(engine))["c"].tags == ("x",)
    await upsert_content_items(engine, [], replace_all=True)
    assert await load_content_items(engine) == []


async def test_with_a_session_the_write_is_part_of_the_callers_transaction(engine, backend):
    await upsert_content_items(engine, [Item("a")])
    sessions = session_factory(engine)
    async with sessions() as session:
        async with session.begin():
            await upsert_content_items(session, [Item("b")], replace_all=True)
            assert list(await _by_id(session)) == ["b"]
            await session.rollback()
    assert list(await _by_id(engine)) == ["a"]
    async with engine.begin() as conn:
        await upsert_content_items(conn, [Item("b")])
    assert sorted(await _by_id(engine)) == ["a", "b"]
