"""``GET /api/leads/export.csv``: UTF-8 with a BOM and a Chinese header row, every filtered row (streamed:
3 000 leads arrive in many chunks), masked phones, no formula cells, the caller's scope, an audit entry without
personal data, and a 403 for salespeople (the rule table gives them no export)."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import insert

from bot.keys import SESSIONS
from leads.access import LEAD_EXPORT, SALES, SDR, TEAM_LEAD
from leads.lead_filters import CSV_HEADER
from leads.lifecycle import STAGE_LABELS
from leads.scoring_rules import QUADRANT_LABELS
from storage.models import Lead
from tests.sdr_console.console_support import audit_rows, bearer, listed_lead, user_with_token
from tests.support.calls import AUTH

PATH = "/api/leads/export.csv"


@pytest.fixture
async def client(app_client):
    return await app_client()


async def export(client, query: str = "", headers=AUTH) -> tuple[int, dict[str, str], bytes, int]:
    """Status, headers, body and how many chunks the body came in."""
    resp = await client.get(PATH + query, headers=headers)
    chunks = [chunk async for chunk in resp.content.iter_any()]
    return resp.status, dict(resp.headers), b"".join(chunks), len(chunks)


def rows_of(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the file as UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


async def test_a_filtered_export_with_bom_header_and_masked_rows(client):
    sales, _ = await user_with_token(client, "x_sales", SALES)
    zhang = await listed_lead(client, "张伟", owner=sales, stage="mql", company="=HYPERLINK(\"http://evil\")",
                              phone="13812345678", tags=("展会", "重点"), score=(80, 90, "sales_ready"))
    await listed_lead(client, "李娜", stage="lead")
    status, headers, body, _ = await export(client, "?stage=mql")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"].startswith("attachment;") and headers["X-Total-Rows"] == "1"
    header, *rows = rows_of(body)
    assert tuple(header) == CSV_HEADER
    (row,) = rows
    assert row[0] == str(zhang) and row[1] == "张伟" and row[3] == "138****5678"
    assert row[2] == "'=HYPERLINK(\"http://evil\")"  # never a formula in Excel
    assert row[4:9] == [STAGE_LABELS["mql"], QUADRANT_LABELS["sales_ready"], "80", "90", "x_sales"]
    assert row[9] == "展会、重点"
    assert b"13812345678" not in body


async def test_three_thousand_leads_stream_in_chunks(client):
    async with client.server.app[SESSIONS]() as session, session.begin():
        await session.execute(insert(Lead), [{"display_name": f"批量{i}", "stage": "lead", "consent": "unknown",
                                              "profile": {"company": f"公司{i}"}} for i in range(3000)])
    status, headers, body, chunks = await export(client)
    assert status == 200 and headers["X-Total-Rows"] == "3000"
    rows = rows_of(body)[1:]
    assert len(rows) == 3000 and len({r[0] for r in rows}) == 3000
    assert chunks > 1  # streamed in batches, not one buffered body


async def test_scope_audit_and_refusal(client):
    _, sales_token = await user_with_token(client, "x_s", SALES, team="导出组")
    lead_id, lead_token = await user_with_token(client, "x_lead", TEAM_LEAD, team="导出组")
    _, sdr_token = await user_with_token(client, "x_sdr", SDR)
    mine = await listed_lead(client, "组内", owner=lead_id)
    await listed_lead(client, "组外")
    status, _, body, _ = await export(client, "", bearer(lead_token))
    assert status == 200 and [r[0] for r in rows_of(body)[1:]] == [str(mine)]
    status, _, body, _ = await export(client, "?q=13812345678&stage=lead", bearer(sdr_token))
    assert status == 200 and len(rows_of(body)) == 1  # the header only
    entries = await audit_rows(client, action=LEAD_EXPORT, outcome="ok")
    assert [e.after["rows"] for e in entries] == [1, 0]
    assert entries[1].after["filters"] == {"q": "phone", "stage": ["lead"]}  # the search's kind, not the number
    assert "13812345678" not in str([e.after for e in entries])
    resp = await client.get(PATH, headers=bearer(sales_token))
    assert resp.status == 403
    assert len(await audit_rows(client, action=LEAD_EXPORT, outcome="denied")) == 1


async def test_bad_filters_are_400_before_any_byte(client):
    resp = await client.get(PATH + "?stage=nope", headers=AUTH)
    assert resp.status == 400 and (await resp.json())["code"] == "bad_parameter"
    assert (await client.get(PATH)).status == 401
