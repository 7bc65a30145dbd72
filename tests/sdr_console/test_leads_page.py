"""``GET /console/leads``: the server-rendered list — filters kept in the form, rows linking to the 360, masked
phones (a full number never reaches the HTML), the user's scope, markup in names shown as text, the export
button only for roles that may export, and bad filters shown as a message rather than an error page."""

from __future__ import annotations

import re

import pytest

from bot.keys import ENGINE
from leads.access import SALES, SDR
from tests.sdr_console.console_support import listed_lead, make_user, sign_in


@pytest.fixture
async def client(app_client):
    return await app_client()


async def signed_in(client, username: str, role: str) -> int:
    user_id = await make_user(client.server.app[ENGINE], username, role=role)
    assert (await sign_in(client, username)).status == 303
    return user_id


async def page(client, query: str = "") -> str:
    resp = await client.get("/console/leads" + query)
    assert resp.status == 200
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    return await resp.text()


async def test_rows_columns_and_masked_phones(client):
    await signed_in(client, "p_sdr", SDR)
    lead = await listed_lead(client, "张伟", stage="mql", company="星河科技", phone="13812345678",
                             tags=("展会",), score=(80, 90, "sales_ready"))
    html = await page(client)
    assert f'href="/console/leads/{lead}"' in html and "张伟" in html and "星河科技" in html
    assert "138****5678" in html and "13812345678" not in html
    assert "市场认可线索（MQL）" in html and "高能力·高意向（转销售）" in html and "展会" in html
    assert 'id="export-button"' in html and "leads.js" in html
    assert "共 <span id=\"lead-total\" class=\"fw-semibold\">1</span>" in html


async def test_a_search_by_full_phone_still_shows_it_masked(client):
    await signed_in(client, "p_sdr2", SDR)
    await listed_lead(client, "张伟", phone="13812345678")
    html = await page(client, "?q=13812345678")
    assert "138****5678" in html
    # The number the user typed is in the search box and the export link, never in the rows.
    rows = html.split('<tbody>')[1].split('</tbody>')[0]
    assert "13812345678" not in rows


async def test_filters_stay_in_the_form_and_links(client):
    await signed_in(client, "p_sdr3", SDR)
    await listed_lead(client, "李娜", stage="sql")
    await listed_lead(client, "王芳", stage="lead")
    html = await page(client, "?stage=sql&ability_min=10&sort=display_name&order=asc&q=%E6%9D%8E")
    assert 'value="sql" id="f-stage-sql" autocomplete="off" checked' in html
    assert 'name="ability_min" value="10"' in html and 'value="李"' in html
    export = re.search(r'data-export-url="([^"]+)"', html)[1].replace("&amp;", "&")
    assert export.startswith("/api/leads/export.csv?") and set(export.split("?")[1].split("&")) == {
        "q=%E6%9D%8E", "stage=sql", "ability_min=10.0", "sort=display_name", "order=asc"}
    assert "王芳" not in html.split("<tbody>")[1]  # filtered out (ability: unscored)


async def test_a_salesperson_sees_only_own_leads_and_no_export(client):
    me = await signed_in(client, "p_sales", SALES)
    await listed_lead(client, "我的潜客", owner=me)
    await listed_lead(client, "别人的潜客")
    html = await page(client)
    assert "我的潜客" in html and "别人的潜客" not in html
    assert 'id="export-button"' not in html
    html = await page(client, "?owner=none")
    assert "我的潜客" not in html and "没有符合条件的线索" in html


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"])
async def test_markup_in_names_is_text(client, name):
    await signed_in(client, "p_xss", SDR)
    await listed_lead(client, name, company=name, tags=(name[:50],))
    html = await page(client)
    assert name not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html or "&lt;img src=x onerror=alert(1)&gt;" in html


async def test_bad_filters_show_a_message(client):
    await signed_in(client, "p_bad", SDR)
    await listed_lead(client, "张伟")
    html = await page(client, "?stage=nope&limit=%C2%B2")
    assert 'id="filter-error"' in html and "张伟" in html


async def test_pages(client):
    await signed_in(client, "p_pages", SDR)
    for i in range(3):
        await listed_lead(client, f"潜客{i}")
    html = await page(client, "?limit=2")
    assert 'id="page-next" href="/console/leads?offset=2&amp;limit=2"' in html
    html = await page(client, "?limit=2&offset=2")
    assert "第 2 页" in html and html.count('<tr data-lead-id') == 1


async def test_signed_out_goes_to_sign_in(client):
    resp = await client.get("/console/leads", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/login")
