"""``GET /api/leads/export.csv``: the filtered lead list as CSV, streamed (the list's filters, its order).

UTF-8 with a BOM so Excel opens the Chinese correctly; ``X-Total-Rows`` tells the page how many rows to expect
(its progress bar). Phones are masked as in the list. The export is audited before the first byte: who, which
filters (the search box only by its shape: it may hold a phone number or an email) and how many rows.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.keys import SESSIONS
from leads.access import LEAD_EXPORT
from leads.lead_filters import CHINA, CSV_HEADER, classify_query, csv_rows
from sdr_console.api.auth import audit, lead_action, require_token
from sdr_console.api.lead_list import LeadListQuery
from sdr_console.api.scoping import owner_filter
from sdr_console.api.spec import api_spec, parse_query
from storage.repos.lead_export import export_count, export_rows

BOM = "\ufeff"
TOTAL_HEADER = "X-Total-Rows"


def audited_filters(query: LeadListQuery) -> dict[str, Any]:
    """The filters for the audit log, without personal data: the search box only as its kind."""
    params: dict[str, Any] = query.params()
    if query.q and (search := classify_query(query.q)) is not None:
        params["q"] = search.kind
    return params


def _csv_lines(rows: list[tuple[Any, ...]], memo: dict[datetime, str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(csv_rows(rows, memo))
    return buffer.getvalue().encode("utf-8")


def _disposition(now: datetime) -> str:
    stamp = now.astimezone(CHINA).strftime("%Y%m%d-%H%M")
    return f"attachment; filename=\"leads-{stamp}.csv\"; filename*=UTF-8''{quote(f'线索导出-{stamp}.csv')}"


@require_token
@lead_action(LEAD_EXPORT)
@api_spec("导出线索列表（CSV，UTF-8 BOM，流式）", query=LeadListQuery, errors=(400,), content_type="text/csv",
          tags=("线索",))
async def export_leads(request: web.Request) -> web.StreamResponse:
    """Only the leads the caller may export: a team lead's team's; a salesperson may not export (403)."""
    query = parse_query(request, LeadListQuery)
    f = query.to_filter()
    async with request.app[SESSIONS]() as session, session.begin():
        owners = await owner_filter(request, session, LEAD_EXPORT)
        total = await export_count(session, f, owners)
        await audit(request, LEAD_EXPORT, target_kind="lead_list",
                    after={"filters": audited_filters(query), "rows": total}, session=session)
    resp = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": _disposition(datetime.now(CHINA)),
        TOTAL_HEADER: str(total), "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
    await resp.prepare(request)
    await resp.write((BOM + ",".join(CSV_HEADER) + "\r\n").encode("utf-8"))
    async with request.app[SESSIONS]() as session:
        memo: dict[datetime, str] = {}
        async for rows in export_rows(session, f, owners):
            await resp.write(_csv_lines(rows, memo))
    await resp.write_eof()
    return resp


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/leads/export.csv", export_leads)
