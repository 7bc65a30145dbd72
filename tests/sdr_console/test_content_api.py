"""PUT /api/content: booleans are JSON booleans, URLs are https with a host, values fit their columns, and a
whole library fits in one call (more than server.max_body_bytes) while a larger body is refused."""

from __future__ import annotations

import json

import pytest

from bot.keys import ENGINE
from storage.models import ContentItemRow
from tests.support.helpers import API_TOKEN, count

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
ITEM = {"id": "guide", "kind": "article", "title": "产品指南", "url": "https://example.com/guide"}


async def put(client, body):
    resp = await client.put("/api/content", json=body, headers=AUTH)
    return resp.status, await resp.json()


async def ids(client) -> list[str]:
    return [i["id"] for i in (await (await client.get("/api/content", headers=AUTH)).json())["items"]]


@pytest.mark.parametrize("flag", ["false", "true", 0, 1, None, [], {}])
async def test_replace_all_must_be_a_json_boolean(app_client, flag):
    client = await app_client()
    assert (await put(client, {"items": [ITEM]}))[0] == 200
    status, body = await put(client, {"items": [{**ITEM, "id": "other"}], "replace_all": flag})
    assert status == 400 and "replace_all" in body["message"]
    assert await ids(client) == ["guide"]  # the library is untouched


async def test_replace_all_true_replaces_and_false_adds(app_client):
    client = await app_client()
    assert (await put(client, {"items": [ITEM]}))[0] == 200
    assert (await put(client, {"items": [{**ITEM, "id": "b"}], "replace_all": False}))[0] == 200
    assert await ids(client) == ["b", "guide"]
    assert (await put(client, {"items": [{**ITEM, "id": "c"}], "replace_all": True}))[0] == 200
    assert await ids(client) == ["c"]


@pytest.mark.parametrize(("change", "key"), [
    ({"url": "https://"}, "url"), ({"url": "https://\\\\host/x"}, "url"), ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "https://user:pw@example.com/"}, "url"), ({"url": "http://example.com/"}, "url"),
    ({"cover": "https:///c.png"}, "cover"), ({"cover": " https://example.com/c.png"}, "cover"),
    ({"title": "长" * 201}, "title"), ({"tags": ["t" * 101]}, "tags"), ({"key": "true"}, "key"),
])
async def test_a_bad_item_is_refused_naming_its_key_and_nothing_is_stored(app_client, change, key):
    client = await app_client()
    status, body = await put(client, {"items": [{**ITEM, "id": "fine"}, {**ITEM, **change}]})
    assert status == 400 and body["code"] == "invalid_item" and f"items[1].{key}" in body["message"], body
    assert await count(client.server.app[ENGINE], ContentItemRow) == 0


async def test_a_whole_library_fits_in_one_call_but_not_more(app_client):
    client = await app_client()
    items = [{**ITEM, "id": f"item-{n}", "title": "标题" * 50, "summary": "摘要" * 500,
              "cover": "https://cdn.example.com/" + "c" * 400} for n in range(2000)]
    raw = json.dumps({"items": items, "replace_all": True}, ensure_ascii=False).encode()
    assert 5 * 2**20 < len(raw) < 8 * 2**20  # far more than server.max_body_bytes (64 KiB)
    resp = await client.put("/api/content", data=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 200 and await resp.json() == {"stored": 2000}
    big = {"items": [{**ITEM, "summary": "x" * 2000}] * 4500}
    resp = await client.put("/api/content", json=big, headers=AUTH)  # over 8 MiB
    answer = await resp.json()
    assert resp.status == 413 and answer["code"] == "PayloadTooLarge", answer
    assert await count(client.server.app[ENGINE], ContentItemRow) == 2000


async def test_an_empty_cover_is_fine(app_client):
    client = await app_client()
    assert (await put(client, {"items": [{**ITEM, "cover": ""}]})) == (200, {"stored": 1})
