"""``GET /api/exports/accepted.csv``: leads sales accepted, one row per accepted assignment, newest first.

As the lead list's export (sdr_console/api/lead_export.py): LEAD_EXPORT's scope (a team lead gets their team's,
a salesperson may not export), UTF-8 with a BOM for Excel, phones masked, cells defused against CSV injection,
audited before the first byte. ``since`` / ``until``: China-time days of the acceptance (inclusive).
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web
from pydantic import Field, model_validator

from bot.keys import SESSIONS
from leads.access import LEAD_EXPORT
from leads.lead_filters import CHINA, QUADRANT_LABELS, csv_cell, day_after, day_start, mask_phone
from leads.lifecycle import STAGE_LABELS
from sdr_console.api.auth import audit, lead_action, require_token
from sdr_console.api.scoping import owner_filter
from sdr_console.api.spec import QueryModel, api_spec, parse_query
from storage.repos.accepted_leads import accepted_count, accepted_rows

BOM = "\ufeff"
HEADER = ("线索ID", "接受时间", "销售", "公司", "姓名", "手机号（脱敏）", "阶段", "象限", "分配规则", "分配ID")


class AcceptedQuery(QueryModel):
    since: date | None = Field(None, description="接受日期起（含，北京时间）")
    until: date | None = Field(None, description="接受日期止（含，北京时间）")

    @model_validator(mode="after")
    def _ordered(self) -> AcceptedQuery:
        if self.since and self.until and self.since > self.until:
            raise ValueError("since 不能晚于 until")
        return self


def _lines(rows: list[tuple[Any, ...]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for lead_id, at, who, company, name, phone, stage, quadrant, rule, assignment_id in rows:
        writer.writerow([str(lead_id), csv_cell(at), csv_cell(who), csv_cell(company), csv_cell(name),
                         mask_phone(phone), STAGE_LABELS.get(stage, stage), QUADRANT_LABELS.get(quadrant or "", ""),
                         csv_cell(rule), str(assignment_id)])
    return buffer.getvalue().encode("utf-8")


@require_token
@lead_action(LEAD_EXPORT)
@api_spec("导出已接受的线索（CSV，UTF-8 BOM）", query=AcceptedQuery, errors=(400,), content_type="text/csv",
          tags=("handoff",))
async def export_accepted(request: web.Request) -> web.StreamResponse:
    query = parse_query(request, AcceptedQuery)
    since = day_start(query.since) if query.since else None
    until = day_after(query.until) if query.until else None
    async with request.app[SESSIONS]() as session, session.begin():
        owners = await owner_filter(request, session, LEAD_EXPORT)
        total = await accepted_count(session, since=since, until=until, owner_ids=owners)
        await audit(request, LEAD_EXPORT, target_kind="accepted_leads",
                    after={"since": str(query.since or ""), "until": str(query.until or ""), "rows": total},
                    session=session)
    stamp = datetime.now(CHINA).strftime("%Y%m%d-%H%M")
    resp = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": (f"attachment; filename=\"accepted-{stamp}.csv\"; "
                                f"filename*=UTF-8''{quote(f'已接受线索-{stamp}.csv')}"),
        "X-Total-Rows": str(total)})
    await resp.prepare(request)
    await resp.write((BOM + ",".join(HEADER) + "\r\n").encode("utf-8"))
    async with request.app[SESSIONS]() as session:
        async for rows in accepted_rows(session, since=since, until=until, owner_ids=owners):
            await resp.write(_lines(rows))
    await resp.write_eof()
    return resp


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/exports/accepted.csv", export_accepted)
