"""``GET /api/leads`` end to end: the filters as query parameters, the search box, sort, pages, masked phones,
the capped count, bad parameters answered 400, and the caller's scope applied whatever the filter says."""

from __future__ import annotations

import pytest

from leads.access import SALES, SDR, TEAM_LEAD
from tests.sdr_console.console_support import bearer, call, listed_lead, user_with_token
from tests.support.calls import AUTH


@pytest.fixture
async def client(app_client):
    return await app_client()


async def world(client) -> dict[str, int]:
    sales, _ = await user_with_token(client, "w_sales", SALES, team="华南组")
    ids = {
        "zhang": await listed_lead(client, "张伟", owner=sales, stage="mql", company="星河科技", phone="13812345678",
                                   tags=("展会",), score=(80, 90, "sales_ready")),
        "li": await listed_lead(client, "李娜", stage="lead", company="100%纯净水", phone="13987655678",
                                score=(20, 70, "other_solution")),
        "pool": await listed_lead(client, None, stage="customer"),
    }
    return {**ids, "sales": sales}


async def get(client, query: str, headers=AUTH) -> tuple[int, dict]:
    return await call(client, "GET", "/api/leads" + query, headers)


async def test_items_carry_the_list_columns_and_mask_phones(client):
    ids = await world(client)
    status, body = await get(client, "?q=张伟")
    assert status == 200
    (item,) = body["items"]
    assert item["id"] == ids["zhang"] and item["company"] == "星河科技" and item["phone"] == "138****5678"
    assert (item["quadrant"], item["ability"], item["motivation"]) == ("sales_ready", 80, 90)
    assert item["owner_name"] == "w_sales" and item["tags"] == ["展会"] and item["stage"] == "mql"
    assert "13812345678" not in str(body)
    assert (body["total"], body["total_capped"], body["total_label"], body["has_more"]) == (1, False, "1", False)


@pytest.mark.parametrize(("query", "want"), [
    ("?stage=mql&stage=customer", {"zhang", "pool"}),
    ("?quadrant=other_solution", {"li"}),
    ("?ability_min=50", {"zhang"}),
    ("?motivation_max=75.5", {"li"}),
    ("?owner=none", {"li", "pool"}),
    ("?tag=%E5%B1%95%E4%BC%9A", {"zhang"}),
    ("?consent=unknown", {"zhang", "li", "pool"}),
    ("?q=5678", {"zhang", "li"}),
    ("?q=%2B86%2013812345678", {"zhang"}),
    ("?q=100%25", {"li"}),
    ("?q=0%25%E7%BA%AF", {"li"}),  # "0%纯": the % is a literal character
    ("?q=%25", set()),  # one character: from the start of a name or company only
    ("?created_from=2000-01-01&active_to=2999-12-31", {"zhang", "li", "pool"}),
    ("?created_to=2000-01-01", set()),
    ("?channel=oa", set()),
    ("?stage=", {"zhang", "li", "pool"}),  # an untouched form field is absent
])
async def test_filters_as_query_parameters(client, query, want):
    ids = await world(client)
    status, body = await get(client, query)
    assert status == 200, body
    assert {i["id"] for i in body["items"]} == {ids[k] for k in want}


async def test_owner_and_team_filters(client):
    ids = await world(client)
    _, body = await get(client, f"?owner={ids['sales']}")
    assert [i["id"] for i in body["items"]] == [ids["zhang"]]
    _, teams = await call(client, "GET", "/api/teams", AUTH)
    team_id = next(t["id"] for t in teams["teams"] if t["name"] == "华南组")
    _, body = await get(client, f"?team={team_id}")
    assert [i["id"] for i in body["items"]] == [ids["zhang"]]


async def test_sort_and_pages(client):
    ids = await world(client)
    _, body = await get(client, "?sort=ability&order=asc")
    assert [i["id"] for i in body["items"]] == [ids["li"], ids["zhang"], ids["pool"]]  # unscored last
    _, first = await get(client, "?sort=display_name&order=asc&limit=1")
    _, second = await get(client, "?sort=display_name&order=asc&limit=1&offset=1")
    assert first["has_more"] and second["has_more"] and first["items"][0]["id"] != second["items"][0]["id"]
    assert first["total"] == 3


@pytest.mark.parametrize("query", [
    "?stage=nope", "?quadrant=x", "?ability_min=abc", "?ability_min=1e3", "?ability_min=nan", "?owner=me",
    "?owner=%C2%B2", "?team=0", "?team=-1", "?created_from=2026-02-30", "?created_from=yesterday", "?sort=id",
    "?order=up", "?limit=0", "?limit=201", "?limit=%D9%A3", "?offset=-1", "?tag=%00", "?channel=" + "x" * 101,
    "?created_from=0001-01-01", "?active_to=9999-12-31",  # would overflow as Beijing days in UTC
])
async def test_bad_parameters_are_400(client, query):
    status, body = await get(client, query)
    assert status == 400 and body["code"] in ("bad_parameter", "bad_url")


async def test_a_long_search_is_cut_not_refused(client):
    status, body = await get(client, "?q=" + "星" * 500)
    assert status == 200 and body["items"] == []


async def test_scope_is_applied_in_sql_whatever_the_filter(client):
    ids = await world(client)
    _, token = await user_with_token(client, "w_sales2", SALES)
    _, lead_token = await user_with_token(client, "w_lead", TEAM_LEAD, team="华南组")
    _, sdr_token = await user_with_token(client, "w_sdr", SDR)
    assert (await get(client, "?owner=none", bearer(token)))[1]["items"] == []
    assert (await get(client, f"?owner={ids['sales']}", bearer(token)))[1]["items"] == []
    assert {i["id"] for i in (await get(client, "", bearer(lead_token)))[1]["items"]} == {ids["zhang"]}
    assert {i["id"] for i in (await get(client, "", bearer(sdr_token)))[1]["items"]} == {ids[k] for k in
                                                                                        ("zhang", "li", "pool")}
