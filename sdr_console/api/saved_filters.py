"""A user's saved lead-list filters: ``GET|POST /api/saved-filters``, ``DELETE /api/saved-filters/{filter_id}``.

A filter is the list's query parameters (validated by the list's own model, stored without paging), under a
name unique per user. Everyone sees and deletes only their own: someone else's filter id answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from aiohttp import web
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import SESSIONS
from bot.web.errors import ApiError
from bot.web.params import not_found, path_id
from leads.access import LEAD_READ
from leads.forms import clean_text
from sdr_console.api.auth import actor_of, audit, lead_action, require_token
from sdr_console.api.lead_list import query_from
from sdr_console.api.scoping import owner_filter
from sdr_console.api.serialize import iso
from sdr_console.api.spec import RequestModel, ResponseModel, api_spec, parse_body, respond
from storage.models import SavedFilter
from storage.repos.saved_filters import add_filter, count_of, filters_of, named, own_filter, remove_filter

WHAT = "筛选"
MAX_FILTERS = 50  # per user
MAX_QUERY = 2000  # characters of a query string
LIST_PATH = "/console/leads"
Params = dict[str, str | list[str]]


class SavedFilterBody(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=60)]
    query: Annotated[str, Field(max_length=MAX_QUERY)] | Params = Field(
        description="列表的查询参数：查询字符串（stage=mql&owner=none）或对象")


class SavedFilterItem(ResponseModel):
    id: int
    name: str
    query: Params
    href: str = Field(description="应用此筛选的列表页地址")
    created_at: str | None


class SavedFilterList(ResponseModel):
    items: list[SavedFilterItem]


class Deleted(ResponseModel):
    deleted: int


def filter_item(saved: SavedFilter) -> SavedFilterItem:
    query: Params = saved.query or {}
    return SavedFilterItem(id=saved.id, name=saved.name, query=query, created_at=iso(saved.created_at),
                           href=LIST_PATH + ("?" + urlencode(query, doseq=True) if query else ""))


def filter_params(raw: str | Params) -> Params:
    """The query, validated by the list's model and reduced to what differs from its defaults."""
    values: dict[str, Any] = parse_qs(raw.lstrip("?"), keep_blank_values=False) if isinstance(raw, str) else raw
    return query_from(values).params()


async def _user_id(request: web.Request, session: AsyncSession) -> int | None:
    await owner_filter(request, session, LEAD_READ)  # a role that may not read leads has no lead filters (403)
    return actor_of(request).user_id  # None: a service token, which has no filters of its own


@require_token
@lead_action(LEAD_READ)
@api_spec("我的已保存筛选", response=SavedFilterList, tags=("线索",))
async def list_filters(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        user_id = await _user_id(request, session)
        found = [] if user_id is None else await filters_of(session, user_id)
        return respond(SavedFilterList(items=[filter_item(s) for s in found]))


@require_token
@lead_action(LEAD_READ)
@api_spec("保存当前筛选", body=SavedFilterBody, response=SavedFilterItem, status=201, errors=(400, 409),
          tags=("线索",))
async def post_filter(request: web.Request) -> web.Response:
    body = await parse_body(request, SavedFilterBody)
    name = clean_text(body.name)
    if not name:
        raise ApiError(400, "invalid_body", "请填写筛选名称")
    query = filter_params(body.query)
    async with request.app[SESSIONS]() as session, session.begin():
        user_id = await _user_id(request, session)
        if user_id is None:
            raise ApiError(400, "no_user", "服务令牌没有个人筛选，请使用用户令牌")
        if await named(session, user_id, name) is not None:
            raise ApiError(409, "exists", f"已有名为“{name}”的筛选，请换一个名称")
        if await count_of(session, user_id) >= MAX_FILTERS:
            raise ApiError(409, "too_many", f"最多保存 {MAX_FILTERS} 个筛选，请先删除不用的")
        saved = await add_filter(session, user_id, name, query)
        if saved is None:
            raise ApiError(409, "exists", f"已有名为“{name}”的筛选，请换一个名称")
        await audit(request, "saved_filter.create", target_kind="saved_filter", target_id=saved.id,
                    after={"name": name}, session=session)
        return respond(filter_item(saved), status=201)


@require_token
@lead_action(LEAD_READ)
@api_spec("删除已保存筛选", response=Deleted, errors=(404,), tags=("线索",))
async def delete_filter(request: web.Request) -> web.Response:
    filter_id = path_id(request, "filter_id", what=WHAT)
    async with request.app[SESSIONS]() as session, session.begin():
        user_id = await _user_id(request, session)
        saved = None if user_id is None else await own_filter(session, user_id, filter_id)
        if saved is None:
            raise not_found(WHAT, filter_id)
        await remove_filter(session, saved)
        await audit(request, "saved_filter.delete", target_kind="saved_filter", target_id=filter_id,
                    before={"name": saved.name}, session=session)
        return respond(Deleted(deleted=filter_id))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/saved-filters", list_filters)
    app.router.add_post("/api/saved-filters", post_filter)
    app.router.add_delete("/api/saved-filters/{filter_id}", delete_filter)
