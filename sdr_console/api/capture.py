"""JSON API for the content library and data erasure requests."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, WithJsonSchema, model_validator

from bot.config.capture import parse_content_items
from bot.crypto.keyring import Purpose
from bot.errors import ConfigError
from bot.keys import CONFIG, CONVERSATION, ENGINE, SESSIONS
from bot.web.errors import ApiError
from bot.web.params import body_limit, not_found, path_id
from leads.access import CONTENT_READ, CONTENT_WRITE, LEAD_ERASE
from sdr_console.api.auth import audit, authorize_lead, lead_action, require_token, requires
from sdr_console.api.spec import RequestModel, ResponseModel, api_spec, parse_body, respond
from storage.models import utcnow
from storage.repos.content import upsert_content_items
from storage.repos.erasure import erase_lead
from storage.repos.lead_views import find_lead

MAX_CONTENT_ITEMS = 2000
# A whole library in one call (replace_all): 2000 items of up to 4 KiB each, far more than server.max_body_bytes.
MAX_CONTENT_BODY = 8 * 1024 * 1024


class ContentItemModel(ResponseModel):
    """One item of the content library (leads/content.py ContentItem)."""

    id: str
    kind: str
    title: str
    summary: str = ""
    cover: str = ""
    url: str
    tags: list[str] = Field(default_factory=list)
    stage: str = "awareness"
    key: bool = False


class ContentList(ResponseModel):
    items: list[ContentItemModel]


class ContentPut(RequestModel):
    """Each item is validated like the config's (bot/config/capture.py): a 400 invalid_item names the field."""

    # Any item reaches parse_content_items, whose invalid_item names the field; the schema shows the shape.
    items: Annotated[list[Any], WithJsonSchema({"type": "array", "maxItems": MAX_CONTENT_ITEMS,
                                                "items": ContentItemModel.model_json_schema()})] = Field(
        description="内容条目")
    replace_all: bool = Field(False, description="true：先清空内容库")

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, raw: Any) -> Any:
        _check_put(raw)
        return raw


class Stored(ResponseModel):
    stored: int


class Erased(ResponseModel):
    id: int
    erased: bool


@requires(CONTENT_READ)
@api_spec("内容库", response=ContentList, tags=("content",))
async def list_content(request: web.Request) -> web.Response:
    items = request.app[CONVERSATION].content.all()
    return respond(ContentList(items=[
        ContentItemModel(id=i.id, kind=i.kind, title=i.title, summary=i.summary, cover=i.cover, url=i.url,
                         tags=list(i.tags), stage=i.stage, key=i.key) for i in items]))


def _check_put(body: dict[str, Any]) -> None:
    """The 400 and 413 answers the API has always given."""
    if not isinstance(body.get("items"), list):
        raise ApiError(400, "bad_request", '请求体须为 {"items": [...]}')
    replace_all = body.get("replace_all", False)
    if not isinstance(replace_all, bool):  # "false" is a non-empty string: truthy, it would empty the library
        raise ApiError(400, "bad_request", "replace_all 须为 JSON 布尔值 true 或 false")
    unknown = set(body) - {"items", "replace_all"}
    if unknown:
        raise ApiError(400, "bad_request", f"未知字段：{sorted(unknown)[0][:40]}")
    if len(body["items"]) > MAX_CONTENT_ITEMS:
        raise ApiError(413, "too_many", f"每次最多 {MAX_CONTENT_ITEMS} 条内容")


@requires(CONTENT_WRITE)
@body_limit(MAX_CONTENT_BODY)
@api_spec("添加或替换内容库条目（全部成功或全部不变）", body=ContentPut, response=Stored, errors=(413,),
          tags=("content",))
async def put_content(request: web.Request) -> web.Response:
    """Add or replace items: {"items": [...], "replace_all": false}. All or nothing."""
    body = await parse_body(request, ContentPut)
    replace_all = body.replace_all
    try:
        items = list(parse_content_items({"items": body.items}, "body"))
    except ConfigError as exc:
        raise ApiError(400, "invalid_item", f"内容条目有误：{exc}") from exc
    if len({i.id for i in items}) != len(items):
        raise ApiError(400, "invalid_item", "请求中有重复的 id")
    before = {"items": len(request.app[CONVERSATION].content.all())}  # counts only: the library is in the table
    async with request.app[SESSIONS]() as session, session.begin():
        await upsert_content_items(session, items, replace_all=replace_all)
        await audit(request, CONTENT_WRITE, target_kind="content", before=before,
                    after={"stored": len(items), "replace_all": replace_all}, session=session)
    await request.app[CONVERSATION].content.refresh(request.app[ENGINE])
    return respond(Stored(stored=len(items)))


@require_token
@lead_action(LEAD_ERASE)
@api_spec("删除潜客的个人信息（不可撤销）", response=Erased, errors=(404,), tags=("leads",))
async def erase(request: web.Request) -> web.Response:
    lead_id = path_id(request, "lead_id")
    async with request.app[SESSIONS]() as session, session.begin():
        lead = await find_lead(session, lead_id, lock=True)
        if lead is None or lead.merged_into_id is not None:
            raise not_found("潜客", lead_id)
        await authorize_lead(request, session, LEAD_ERASE, lead)
        tombstones = request.app[CONFIG].keyring.hasher(Purpose.TOMBSTONE)
        if not await erase_lead(session, lead_id, utcnow(), hasher=tombstones):
            raise not_found("潜客", lead_id)
        # No personal data here: the audit log outlives the erasure it records.
        await audit(request, LEAD_ERASE, target_kind="lead", target_id=lead_id, after={"erased": True},
                    session=session)
    return respond(Erased(id=lead_id, erased=True))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/content", list_content)
    app.router.add_put("/api/content", put_content)
    app.router.add_post("/api/leads/{lead_id}/erase", erase)
