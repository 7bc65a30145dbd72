"""How a hand-off question looks in the JSON API and on the queue page: the question, its lead, who holds it,
and how it can be answered now (channel, the OA 48-hour window)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.outbound import OutboundConfig
from leads.handoff_reply import CHANNEL_LABELS, OA, WECOM, channel_of, hours_left, service_window
from sdr_console.api.serialize import iso
from sdr_console.api.spec import QueryModel, RequestModel, ResponseModel
from storage.repos.handoffs import HandoffView, reach_of

MAX_REPLY = 1000  # characters: a customer-service text is short (WeChat caps it near 2,000 bytes)


class QueueQuery(QueryModel):
    status: Literal["open", "closed", "all"] = "open"
    mine: bool = False  # only the questions the caller claimed
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10_000_000)


class HandoffItem(ResponseModel):
    id: int
    lead_id: int
    reason: str
    message: str
    status: str
    created_at: str | None
    lead_name: str
    claimed_by: str | None = None
    claimed_by_user_id: int | None = None
    claimed_at: str | None = None
    closed_by: str | None = None
    closed_at: str | None = None
    reply_outbox_id: int | None = None
    channel: Literal["oa", "wecom"] | None = None
    channel_label: str | None = None
    wecom_owner: str | None = None  # WeCom only: the member (userid) whose message task a reply becomes
    window_open: bool = False  # OA only: a customer-service text may still be sent
    window_closes_at: str | None = None  # OA only: when it closes (or closed); None without any OA action
    window_hours_left: int = 0


class HandoffList(ResponseModel):
    items: list[HandoffItem]
    total: int


class ReplyBody(RequestModel):
    text: str = Field(min_length=1, max_length=MAX_REPLY)
    mode: Literal["auto", "template"] = "auto"

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("回复内容不能为空")
        return value

    @field_validator("mode", mode="before")
    @classmethod
    def _empty_is_auto(cls, value: object) -> object:
        return "auto" if value == "" else value  # a form's untouched field (json-enc sends strings)


class ReplyResult(ResponseModel):
    handoff: HandoffItem
    kind: Literal["oa_text", "oa_template", "wecom_task"]
    outbox_id: int | None
    outbox_status: str | None
    message: str  # what happened, in Chinese (the console shows it)


async def item_of(session: AsyncSession, view: HandoffView, outbound: OutboundConfig, now: datetime) -> HandoffItem:
    h = view.handoff
    reach = await reach_of(session, h.lead_id)
    channel = channel_of(reach)
    window = service_window(reach.oa_last_interaction_at, now, outbound.customer_service_window_h)
    oa = channel == OA
    return HandoffItem(
        id=h.id, lead_id=h.lead_id, reason=h.reason, message=h.message, status=h.status, created_at=iso(h.created_at),
        lead_name=view.lead_name or f"潜客 #{h.lead_id}", claimed_by=view.claimed_by,
        claimed_by_user_id=h.claimed_by_user_id, claimed_at=iso(h.claimed_at), closed_by=view.closed_by,
        closed_at=iso(h.closed_at), reply_outbox_id=h.reply_outbox_id, channel=channel,  # type: ignore[arg-type]
        channel_label=CHANNEL_LABELS.get(channel or ""),
        wecom_owner=reach.wecom_owner if channel == WECOM else None, window_open=oa and window.open,
        window_closes_at=iso(window.closes_at) if oa else None,
        window_hours_left=hours_left(window, now) if oa else 0)
