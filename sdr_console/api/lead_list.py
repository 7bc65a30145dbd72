"""``GET /api/leads``: the lead list the console shows, filtered, searched, sorted and paginated.

``LeadListQuery`` is the one description of the list's filters: the list, the CSV export
(sdr_console/api/lead_export.py), saved filters (sdr_console/api/saved_filters.py) and the list page read it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Literal

from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from pydantic import BeforeValidator, Field

from bot.keys import SESSIONS
from bot.web.errors import ApiError
from leads.access import LEAD_READ
from leads.lead_filters import (
    CONSENTS,
    OWNER_NONE,
    LeadFilter,
    classify_query,
    count_label,
    day_after,
    day_start,
    mask_phone,
)
from leads.lifecycle import STAGES
from leads.scoring_rules import QUADRANTS
from sdr_console.api.auth import lead_action, require_token
from sdr_console.api.scoping import owner_filter
from sdr_console.api.serialize import MAX_LIMIT, iso
from sdr_console.api.spec import QueryModel, ResponseModel, Text, api_spec, parse_query, respond, validate_query
from storage.repos.lead_search import ListedLead, count_capped, lead_page

MAX_Q = 200  # longer search input is cut, not refused: it is typed by hand
_INT = re.compile(r"[0-9]{1,15}")
_NUMBER = re.compile(r"-?[0-9]{1,9}(?:\.[0-9]{1,6})?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _ascii(pattern: re.Pattern[str], what: str) -> Any:
    """Only ASCII digits: int() and float() also take "²", "٣" or "1e3", which no form field sends."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and not pattern.fullmatch(value):
            raise ValueError(f"应为{what}")
        return value

    return BeforeValidator(check)


def _owner(value: Any) -> Any:
    if isinstance(value, str) and value != OWNER_NONE and not _INT.fullmatch(value):
        raise ValueError("应为用户 ID 或 none（未分配）")
    return value


Id = Annotated[int, Field(ge=1, le=2**62)]  # ASCII digits: parse_query checks every int field
Score = Annotated[float, _ascii(_NUMBER, "数字"), Field(ge=-1_000_000, le=1_000_000)]
# Bounded: the first and last days Python can turn into UTC instants at Beijing's offset (0001-01-01 and
# 9999-12-31 overflow), and no lead is older than 1970.
Day = Annotated[date, _ascii(_DATE, "日期（YYYY-MM-DD）"), Field(ge=date(1970, 1, 1), le=date(9998, 12, 31))]
Short = Annotated[Text, Field(min_length=1, max_length=100)]


def _cut(value: Any) -> Any:
    return value.strip()[:MAX_Q] if isinstance(value, str) else value


class LeadListQuery(QueryModel):
    q: Annotated[Text, BeforeValidator(_cut)] | None = Field(None, description="姓名/公司片段、邮箱、手机号或尾号4位")
    stage: list[Literal[STAGES]] = Field(default_factory=list)  # type: ignore[valid-type]
    quadrant: list[Literal[QUADRANTS]] = Field(default_factory=list)  # type: ignore[valid-type]
    consent: list[Literal[CONSENTS]] = Field(default_factory=list)  # type: ignore[valid-type]
    ability_min: Score | None = None
    ability_max: Score | None = None
    motivation_min: Score | None = None
    motivation_max: Score | None = None
    channel: Short | None = None
    scene: Short | None = None
    owner: Annotated[str, BeforeValidator(_owner)] | None = Field(None, description="用户 ID，或 none 表示未分配")
    team: Id | None = None
    tag: Short | None = None
    created_from: Day | None = None
    created_to: Day | None = None
    active_from: Day | None = None
    active_to: Day | None = None
    sort: Literal["last_activity_at", "created_at", "display_name", "stage", "ability", "motivation"] = \
        "last_activity_at"
    order: Literal["desc", "asc"] = "desc"
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 50
    offset: Annotated[int, Field(ge=0, le=10_000_000)] = 0

    def to_filter(self) -> LeadFilter:
        return LeadFilter(
            stages=tuple(self.stage), quadrants=tuple(self.quadrant), consents=tuple(self.consent),
            ability_min=self.ability_min, ability_max=self.ability_max,
            motivation_min=self.motivation_min, motivation_max=self.motivation_max,
            channel=self.channel, scene=self.scene, pool=self.owner == OWNER_NONE,
            owner_id=int(self.owner) if self.owner and self.owner != OWNER_NONE else None,
            team_id=self.team, tag=self.tag,
            created_from=day_start(self.created_from) if self.created_from else None,
            created_before=day_after(self.created_to) if self.created_to else None,
            active_from=day_start(self.active_from) if self.active_from else None,
            active_before=day_after(self.active_to) if self.active_to else None,
            search=classify_query(self.q) if self.q else None, sort=self.sort, order=self.order)

    def params(self, *, paging: bool = False) -> dict[str, str | list[str]]:
        """The query parameters that differ from the defaults (what a saved filter stores, what links carry)."""
        skip = set() if paging else {"limit", "offset"}
        out: dict[str, str | list[str]] = {}
        for name, value in self.model_dump(mode="json", exclude_defaults=True, exclude=skip).items():
            if value is None or value == []:
                continue
            out[name] = [str(v) for v in value] if isinstance(value, list) else str(value)
        return out


def query_from(values: Mapping[str, Any] | MultiDictProxy[str]) -> LeadListQuery:
    """The model from query-string-like values (repeated keys or lists), as ``parse_query`` reads a request."""
    multi: MultiDict[str] = MultiDict()
    for key, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, str):
                raise ApiError(400, "bad_parameter", f"参数 {str(key)[:60]} 无效：应为文本")
            multi.add(key, item)
    return validate_query(multi, LeadListQuery)


class LeadItem(ResponseModel):
    id: int
    display_name: str
    stage: str
    consent: str
    created_at: str | None
    last_activity_at: str | None
    company: str | None
    phone: str = Field(description="脱敏手机号，如 138****5678；没有则为空")
    quadrant: str | None
    ability: float | None
    motivation: float | None
    owner_user_id: int | None
    owner_name: str | None
    tags: list[str]


class LeadPage(ResponseModel):
    items: list[LeadItem]
    limit: int
    offset: int
    has_more: bool
    total: int = Field(description="匹配的线索数，最多数到 1000")
    total_capped: bool = Field(description="true：匹配数超过 1000（显示为 1000+）")
    total_label: str


def lead_item(row: ListedLead) -> LeadItem:
    lead = row.lead
    company = (lead.profile or {}).get("company")
    return LeadItem(
        id=lead.id, display_name=lead.display_name or f"潜客 #{lead.id}", stage=lead.stage, consent=lead.consent,
        created_at=iso(lead.created_at), last_activity_at=iso(lead.last_activity_at),
        company=str(company) if company not in (None, "") else None, phone=mask_phone(row.phone),
        quadrant=row.quadrant, ability=row.ability, motivation=row.motivation,
        owner_user_id=lead.owner_user_id, owner_name=row.owner_name, tags=list(row.tags))


@require_token
@lead_action(LEAD_READ)
@api_spec("线索列表（筛选、搜索、排序、分页）", query=LeadListQuery, response=LeadPage, errors=(400,),
          tags=("线索",))
async def list_leads(request: web.Request) -> web.Response:
    """Only the leads the caller may read: a salesperson's own, a team lead's team's (filtered in SQL)."""
    query = parse_query(request, LeadListQuery)
    async with request.app[SESSIONS]() as session:
        owners = await owner_filter(request, session, LEAD_READ)
        f = query.to_filter()
        rows, has_more = await lead_page(session, f, owners, query.limit, query.offset)
        total, capped = await count_capped(session, f, owners)
    return respond(LeadPage(items=[lead_item(r) for r in rows], limit=query.limit, offset=query.offset,
                            has_more=has_more, total=total, total_capped=capped,
                            total_label=count_label(total, capped)))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/leads", list_leads)
