"""Saved filters: each user's own, validated by the list's own parameters, stored without paging, unique by name,
someone else's answered 404, audited; the console page posts them with its session cookie and CSRF token."""

from __future__ import annotations

import pytest

from bot.keys import ENGINE
from leads.access import MANAGER, SALES
from tests.sdr_console.console_support import (
    audit_rows,
    bearer,
    call,
    csrf_of,
    make_user,
    sign_in,
    user_with_token,
)
from tests.support.calls import AUTH


@pytest.fixture
async def client(app_client):
    return await app_client()


async def test_save_list_apply_and_delete_own_filters(client):
    _, token = await user_with_token(client, "f_sales", SALES)
    headers = bearer(token)
    query = "stage=mql&stage=sql&quadrant=sales_ready&limit=10"
    status, saved = await call(client, "POST", "/api/saved-filters", headers, json={"name": "高意向", "query": query})
    assert status == 201, saved
    assert saved["query"] == {"stage": ["mql", "sql"], "quadrant": ["sales_ready"]}  # paging is not part of it
    assert saved["href"] == "/console/leads?stage=mql&stage=sql&quadrant=sales_ready"
    status, other = await call(client, "POST", "/api/saved-filters", headers,
                               json={"name": "公海", "query": {"owner": "none", "q": "星河"}})
    assert status == 201 and other["query"] == {"owner": "none", "q": "星河"}
    _, listing = await call(client, "GET", "/api/saved-filters", headers)
    assert [i["name"] for i in listing["items"]] == ["公海", "高意向"]
    status, body = await call(client, "DELETE", f"/api/saved-filters/{saved['id']}", headers)
    assert status == 200 and body == {"deleted": saved["id"]}
    _, listing = await call(client, "GET", "/api/saved-filters", headers)
    assert [i["name"] for i in listing["items"]] == ["公海"]
    actions = [e.action for e in await audit_rows(client, target_kind="saved_filter")]
    assert actions == ["saved_filter.create", "saved_filter.create", "saved_filter.delete"]


async def test_someone_elses_filter_is_404_and_invisible(client):
    _, mine = await user_with_token(client, "f_a", SALES)
    _, theirs = await user_with_token(client, "f_b", MANAGER)
    _, saved = await call(client, "POST", "/api/saved-filters", bearer(mine), json={"name": "我的", "query": ""})
    assert (await call(client, "GET", "/api/saved-filters", bearer(theirs)))[1]["items"] == []
    status, body = await call(client, "DELETE", f"/api/saved-filters/{saved['id']}", bearer(theirs))
    assert status == 404 and body["code"] == "not_found"
    assert (await call(client, "DELETE", f"/api/saved-filters/{saved['id']}", AUTH))[0] == 404  # a service token
    assert len((await call(client, "GET", "/api/saved-filters", bearer(mine)))[1]["items"]) == 1


@pytest.mark.parametrize(("body", "status"), [
    ({"name": "", "query": ""}, 400),
    ({"name": "x" * 61, "query": ""}, 400),
    ({"name": "\u200b\x07", "query": ""}, 400),
    ({"name": "坏", "query": "stage=nope"}, 400),
    ({"name": "坏", "query": "limit=%C2%B2"}, 400),
    ({"name": "坏", "query": {"stage": 1}}, 400),
    ({"name": "坏", "query": "x" * 2001}, 400),
    ({"name": "坏"}, 400),
    ({"name": "坏", "query": "", "extra": 1}, 400),
])
async def test_bad_bodies_change_nothing(client, body, status):
    _, token = await user_with_token(client, "f_bad", SALES)
    got, answer = await call(client, "POST", "/api/saved-filters", bearer(token), json=body)
    if body["name"] == "\u200b\x07":  # a zero-width space is a name; the bell is dropped
        assert got == 201
        return
    assert got == status, answer
    assert (await call(client, "GET", "/api/saved-filters", bearer(token)))[1]["items"] == []


async def test_names_are_unique_per_user_and_service_tokens_have_none(client):
    _, a = await user_with_token(client, "f_u1", SALES)
    _, b = await user_with_token(client, "f_u2", SALES)
    body = {"name": "重复", "query": "stage=mql"}
    assert (await call(client, "POST", "/api/saved-filters", bearer(a), json=body))[0] == 201
    status, answer = await call(client, "POST", "/api/saved-filters", bearer(a), json=body)
    assert status == 409 and answer["code"] == "exists"
    assert (await call(client, "POST", "/api/saved-filters", bearer(b), json=body))[0] == 201
    assert (await call(client, "POST", "/api/saved-filters", AUTH, json=body))[0] == 400


async def test_the_page_saves_with_its_session_and_csrf_token(client):
    await make_user(client.server.app[ENGINE], "f_page", role="sdr")
    assert (await sign_in(client, "f_page")).status == 303
    page = await client.get("/console/leads?stage=mql")
    token = csrf_of(await page.text())
    body = {"name": "页面保存", "query": "stage=mql"}
    refused = await client.post("/api/saved-filters", json=body)
    assert refused.status == 403  # no CSRF header: a form on another site cannot save filters
    resp = await client.post("/api/saved-filters", json=body, headers={"X-CSRF-Token": token})
    assert resp.status == 201
    html = await (await client.get("/console/leads")).text()
    assert "页面保存" in html and "/console/leads?stage=mql" in html
