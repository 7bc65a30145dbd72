"""A lead with something in every section of the 360: messages in and out, touchpoints, stage changes, a note,
a task, tags and a duplicate suggestion. ``text`` goes wherever a person or prospect writes (XSS tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import session_factory
from storage.models import (
    DuplicateSuggestion,
    Identity,
    Lead,
    LeadNote,
    LeadTag,
    LeadTask,
    OutboxMessage,
    StageTransition,
    Touchpoint,
)

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


async def seed_360(engine: AsyncEngine, *, owner: int | None = None, text: str = "你好，想了解一下价格",
                   name: str = "王芳", touches: int = 3, author: int | None = None, replies: bool = False) -> int:
    async with session_factory(engine)() as session, session.begin():
        lead = Lead(display_name=name, stage="lead", owner_user_id=owner, consent="granted",
                    profile={"company": "杭州某某网络", "industry": "internet", "company_size": "500_999"})
        other = Lead(display_name="王芳（表单）", stage="lead")
        session.add_all([lead, other])
        await session.flush()
        session.add_all([
            Identity(lead_id=lead.id, kind="oa_openid", app="wx", value=f"o_seed_{lead.id}"),
            Identity(lead_id=lead.id, kind="phone", value=f"1370000{lead.id:04d}", verified=True),
        ])
        session.add_all([Touchpoint(lead_id=lead.id, kind="oa_message_text", scene="conversation", channel="oa",
                                    occurred_at=T0 + timedelta(minutes=10 * i), detail={"content": f"{text} {i}"})
                         for i in range(touches)])
        if replies:  # the bot answers every message a minute later
            session.add_all([OutboxMessage(idempotency_key=f"seed-{lead.id}-r{i}", target="oa",
                                           method="oa.custom_text", status="sent", lead_id=lead.id,
                                           payload={"openid": "o", "content": f"感谢咨询！第 {i} 个问题的资料已发送。"},
                                           created_at=T0 + timedelta(minutes=10 * i + 1)) for i in range(touches)])
        session.add(Touchpoint(lead_id=lead.id, kind="oa_subscribe", scene="qrcode", channel="oa",
                               occurred_at=T0 - timedelta(minutes=5), detail={"event_key": "qrscene_expo"}))
        session.add(OutboxMessage(idempotency_key=f"seed-{lead.id}-1", target="oa", method="oa.custom_text",
                                  payload={"openid": "o", "content": f"您好！{text}"}, status="sent",
                                  created_at=T0 + timedelta(minutes=1), lead_id=lead.id, author_user_id=author))
        session.add(StageTransition(lead_id=lead.id, from_stage="lead", to_stage="recycled", actor="system",
                                    actor_id="rule", reason=f"低能力低意向 {text}",
                                    occurred_at=T0 - timedelta(minutes=1)))
        session.add(StageTransition(lead_id=lead.id, from_stage="recycled", to_stage="lead", actor="system",
                                    actor_id="rule", reason="重新关注", occurred_at=T0 - timedelta(seconds=30)))
        session.add_all([LeadNote(lead_id=lead.id, body=text, author_label="seed"),
                         LeadTask(lead_id=lead.id, title=text, status="open", due_at=T0 + timedelta(days=1)),
                         LeadTag(lead_id=lead.id, tag=text[:100])])
        session.add(DuplicateSuggestion(lead_id=other.id, other_lead_id=lead.id, identity_kind="phone",
                                        identity_value=f"1370000{lead.id:04d}", status="open"))
        return lead.id
