"""Request and response models of the segment and batch-message API (sdr_console/api/segments.py, batches.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt

from leads.batches.message import MAX_PAGE
from leads.batches.render import MAX_TEXT_BYTES
from sdr_console.api.models import Timestamp
from sdr_console.api.spec import QueryModel, RequestModel, ResponseModel, Text

Id = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
Params = dict[str, str | list[str]]
MAX_QUERY = 2000


class SegmentIn(RequestModel):
    name: Annotated[Text, Field(min_length=1, max_length=60, description="分群名称（唯一）")]
    query: Annotated[Text, Field(max_length=MAX_QUERY)] | Params = Field(
        description="线索列表的筛选参数：查询字符串（stage=mql&tag=展会）或对象，与 GET /api/leads 相同")


class SegmentItem(ResponseModel):
    id: int
    name: str
    query: Params
    href: str = Field(description="在线索列表中查看此分群")
    created_by: str | None
    created_at: Timestamp | None


class SegmentList(ResponseModel):
    items: list[SegmentItem]
    total: int


class SegmentQuery(QueryModel):
    limit: Annotated[int, Field(ge=1, le=200)] = 100
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class MiniProgramIn(RequestModel):
    title: Annotated[Text, Field(min_length=1, max_length=64)]
    appid: Annotated[Text, Field(min_length=1, max_length=MAX_PAGE)]
    page: Annotated[Text, Field(min_length=1, max_length=MAX_PAGE, description="小程序页面路径")]
    pic_media_id: Annotated[Text, Field(min_length=1, max_length=MAX_PAGE, description="封面图的企业微信 media_id")]


class BatchIn(RequestModel):
    segment_id: Id
    text: Annotated[Text, Field(max_length=MAX_TEXT_BYTES, description=(
        "消息内容（最多 4000 字节），可用个性化字段 {name}、{company}、{sender}；企业微信群发对每位成员的所有客户"
        "是同一条消息，客户字段显示为“客户”“贵公司”，公众号模板消息按每位客户填写"))]
    content_id: Annotated[Text, Field(min_length=1, max_length=100, description="内容库条目（链接）")] | None = None
    miniprogram: MiniProgramIn | None = Field(None, description="小程序卡片（与链接二选一）")
    channels: list[Literal["wecom", "oa"]] = Field(default_factory=lambda: ["wecom", "oa"], min_length=1,
                                                   max_length=2, description="企业微信群发、公众号模板消息")


class Exclusion(ResponseModel):
    reason: str
    label: str
    count: int
    sample: list[dict[str, int | str | None]] = Field(description="前几位被排除的潜客：lead_id、display_name")


class MemberCount(ResponseModel):
    member: str = Field(description="企业微信成员 userid")
    customers: int
    tasks: int = Field(description="群发任务数（每个任务最多 10,000 位客户）")


class BatchPreview(ResponseModel):
    segment_id: int
    total: int = Field(description="分群（在你的范围内）的潜客数")
    recipients: int
    by_channel: dict[str, int]
    members: list[MemberCount]
    exclusions: list[Exclusion]
    text_sample: str = Field(description="企业微信群发时客户看到的文字（示例）")
    receive_limit: dict[str, int | str] = Field(description="客户群发接收上限：period、limit、period_start")


class TaskOut(ResponseModel):
    id: int
    member: str
    chunk: int
    recipients: int
    status: str = Field(description="queued、sandboxed、waiting、done、failed、expired")
    msgid: str | None
    errcode: int | None
    reminders: int
    sdr_task_id: int | None


class BatchCreated(ResponseModel):
    id: int
    sandbox: bool
    counts: dict[str, dict[str, int]]
    tasks: list[TaskOut]


class RecipientOut(ResponseModel):
    id: int
    lead_id: int
    display_name: str | None
    channel: str
    code: str
    message: str
    reason: str | None
    member: str | None
    errcode: int | None


class BatchOut(ResponseModel):
    id: int
    segment_id: int
    created_by: str | None
    created_at: Timestamp | None
    status: str
    sandbox: bool
    text: str
    counts: dict[str, dict[str, int]]
    tasks: list[TaskOut]
    recipients: list[RecipientOut]
    next_after: int | None = Field(description="下一页：?after=此值")


class BatchQuery(QueryModel):
    after: Annotated[int, Field(ge=0, le=2**62)] = 0
    limit: Annotated[int, Field(ge=1, le=500)] = 100


class BatchListQuery(QueryModel):
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    before: Annotated[int, Field(ge=1, le=2**62, description="下一页：?before=上一页的 next_before")] | None = None


class BatchListItem(ResponseModel):
    id: int
    segment_id: int
    segment: str | None = Field(description="分群名称")
    created_by: str | None = Field(description="创建人的用户名（服务令牌创建的为空）")
    created_by_name: str | None = Field(description="创建人的显示名称")
    created_at: Timestamp | None
    status: str = Field(description="queued（公众号消息待分发）、sent")
    sandbox: bool
    text: str
    total: int = Field(description="分群中的潜客数（含被排除的）")
    channels: dict[str, int] = Field(description="按渠道的收件人数：wecom、oa")
    outcomes: dict[str, int] = Field(description=(
        "按结果的人数：queued、sandboxed、waiting、sent、unsent、not_friend、over_limit、failed、expired、excluded"))


class BatchList(ResponseModel):
    items: list[BatchListItem]
    next_before: int | None = Field(description="下一页：?before=此值")
