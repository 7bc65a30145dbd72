"""Segments: ``GET|POST /api/segments``. A segment is a saved lead-list query (the list's own filter model,
sdr_console/api/lead_list.py), under a unique name; batch messages go to one (sdr_console/api/batches.py).

Whose leads a segment reaches is decided each time it is used, never widened: the leads the user who uses it
may read and the leads its creator may read (a team lead's segment reaches their team's leads only, whoever
sends it), both as the rule table's scope (sdr_console/api/scoping.py).
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import SESSIONS
from bot.web.errors import ApiError
from leads.access import BATCH_READ, LEAD_READ, SEGMENT_WRITE
from leads.forms import clean_text
from leads.lead_filters import LeadFilter
from sdr_console.api.auth import actor_of, audit, requires
from sdr_console.api.batch_models import Params, SegmentIn, SegmentItem, SegmentList, SegmentQuery
from sdr_console.api.lead_list import query_from
from sdr_console.api.saved_filters import filter_params
from sdr_console.api.scoping import owner_filter, owner_ids
from sdr_console.api.serialize import iso
from sdr_console.api.spec import api_spec, parse_body, parse_query, respond
from storage.models import Segment
from storage.repos.segments import add_segment, all_segments, count_segments, get_segment
from storage.repos.users import user_by_id

WHAT = "分群"
LIST_PATH = "/console/leads"


def segment_item(segment: Segment, creator: str | None) -> SegmentItem:
    query: Params = segment.query or {}
    return SegmentItem(id=segment.id, name=segment.name, query=query, created_by=creator,
                       created_at=iso(segment.created_at),
                       href=LIST_PATH + ("?" + urlencode(query, doseq=True) if query else ""))


def _both(a: list[int] | None, b: list[int] | None) -> list[int] | None:
    if a is None:
        return b
    if b is None:
        return a
    return sorted(set(a) & set(b))


async def segment_scope(request: web.Request, session: AsyncSession, segment_id: int) -> tuple[Segment, LeadFilter,
                                                                                                   list[int] | None]:
    """The segment (404 when unknown), its filter, and the owners whose leads it reaches for this caller."""
    segment = await get_segment(session, segment_id)
    if segment is None:
        raise ApiError(404, "not_found", f"{WHAT} {segment_id} 不存在")
    owners = await owner_filter(request, session, LEAD_READ)
    creator = await user_by_id(session, segment.created_by_user_id) if segment.created_by_user_id else None
    if creator is not None:
        owners = _both(owners, await owner_ids(session, creator.id, creator.role, LEAD_READ))
    return segment, query_from(segment.query or {}).to_filter(), owners


@requires(BATCH_READ)
@api_spec("分群列表（已保存的线索筛选，用于群发）", query=SegmentQuery, response=SegmentList, tags=("batches",))
async def list_segments(request: web.Request) -> web.Response:
    query = parse_query(request, SegmentQuery)
    async with request.app[SESSIONS]() as session:
        rows = await all_segments(session, query.limit, query.offset)
        total = await count_segments(session)
    return respond(SegmentList(items=[segment_item(s, name) for s, name in rows], total=total))


@requires(SEGMENT_WRITE)
@api_spec("保存分群（线索列表的筛选条件）", body=SegmentIn, response=SegmentItem, status=201, errors=(400, 409),
          tags=("batches",))
async def post_segment(request: web.Request) -> web.Response:
    body = await parse_body(request, SegmentIn)
    name = clean_text(body.name)
    if not name:
        raise ApiError(400, "invalid_body", "请填写分群名称")
    query = filter_params(body.query)
    actor = actor_of(request)
    async with request.app[SESSIONS]() as session, session.begin():
        segment = await add_segment(session, name, query, actor.user_id)
        if segment is None:
            raise ApiError(409, "exists", f"已有名为“{name}”的分群，请换一个名称")
        await audit(request, "segment.create", target_kind="segment", target_id=segment.id,
                    after={"name": name, "filters": sorted(query)}, session=session)
        return respond(segment_item(segment, actor.username if actor.user_id else None), status=201)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/segments", list_segments)
    app.router.add_post("/api/segments", post_segment)
