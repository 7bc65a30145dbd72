"""Leads, members and past sends for the batch-message tests (the database and, when given, the fake WeCom)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leads.identity import OA_OPENID, WECOM_EXTERNAL
from storage.models import Batch, BatchRecipient, Identity, Lead, LeadTag, OutboxMessage, Segment
from storage.repos.users import add_user
from tests.support.fakes.wechat_state import FakeWeChatState


async def member(session: AsyncSession, username: str, wecom_userid: str | None, role: str = "sales") -> int:
    user = await add_user(session, username=username, role=role, password_hash="x", wecom_userid=wecom_userid)
    return user.id


async def lead(session: AsyncSession, name: str, *, wecom: str | None = None, follow: str | None = None,
               openid: str | None = None, owner: int | None = None, consent: str = "unknown",
               tag: str | None = None, state: FakeWeChatState | None = None) -> int:
    """A lead with an external_userid ``wecom`` followed by member ``follow`` (None: not recorded), and/or an OA
    OpenID; registered with the fake WeCom as that member's contact when ``state`` is given."""
    row = Lead(display_name=name, profile={"wecom_owner": follow} if follow else {}, owner_user_id=owner,
               consent=consent)
    session.add(row)
    await session.flush()
    if wecom:
        session.add(Identity(lead_id=row.id, kind=WECOM_EXTERNAL, app="ww-test-corp", value=wecom, verified=True))
        if state is not None:
            state.register_external_contact(wecom, name, follow_user=[follow] if follow else [])
    if openid:
        session.add(Identity(lead_id=row.id, kind=OA_OPENID, app="wx-test-app", value=openid, verified=True))
    if tag:
        session.add(LeadTag(lead_id=row.id, tag=tag))
    await session.flush()
    return row.id


async def past_send(session: AsyncSession, lead_id: int, at: datetime, channel: str = "wecom",
                    status: str = "sent") -> None:
    """A batch message this lead received at ``at`` (counts towards caps and the receive limit)."""
    segment = Segment(name=f"旧分群-{lead_id}-{at.timestamp()}", query={}, created_at=at)
    session.add(segment)
    await session.flush()
    batch = Batch(segment_id=segment.id, message={"text": "旧消息"}, status="sent", sandbox=False, counts={},
                  created_at=at)
    session.add(batch)
    await session.flush()
    session.add(BatchRecipient(batch_id=batch.id, lead_id=lead_id, channel=channel, status=status, reason="",
                               created_at=at, updated_at=at))
    await session.flush()


async def count(session: AsyncSession, model: Any, **where: Any) -> int:
    stmt = select(func.count()).select_from(model).filter_by(**where)
    return int((await session.execute(stmt)).scalar_one())


async def outbox_rows(session: AsyncSession, method: str) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).where(OutboxMessage.method == method).order_by(OutboxMessage.id)
    return list((await session.execute(stmt)).scalars())
