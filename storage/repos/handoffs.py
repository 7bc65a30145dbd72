"""The SDR hand-off queue: conversations the bot could not answer, claimed and answered from the console."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from leads.handoff_reply import Reach
from leads.identity import OA_OPENID, WECOM_EXTERNAL
from storage.models import Handoff, Identity, Lead, OutboxMessage, User

# The queue's tabs: "mine" is the open questions the caller claimed.
STATUSES = ("open", "closed")
_handoffs = Handoff.__table__


@dataclass(frozen=True, slots=True)
class HandoffView:
    """A question with what the queue shows beside it."""

    handoff: Handoff
    lead_name: str | None
    lead_owner_id: int | None
    claimed_by: str | None  # display name (or username) of the claimer
    closed_by: str | None


async def open_handoff(session: AsyncSession, *, lead_id: int, inbox_id: int | None, reason: str, message: str,
                       at: datetime) -> None:
    await open_handoffs(session, [{"lead_id": lead_id, "inbox_id": inbox_id, "reason": reason, "message": message,
                                   "created_at": at}])


async def open_handoffs(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Open questions (lead_id, inbox_id, reason, message, created_at), once per inbox row and reason."""
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    await session.execute(insert(_handoffs).on_conflict_do_nothing(), [{**row, "status": "open"} for row in rows])


def _scoped(stmt: Select, owner_ids: list[int] | None, status: str | None, claimed_by: int | None) -> Select:
    if owner_ids is not None:
        stmt = stmt.where(Handoff.lead_id.in_(select(Lead.id).where(Lead.owner_user_id.in_(owner_ids))))
    if status:
        stmt = stmt.where(Handoff.status == status)
    if claimed_by is not None:
        stmt = stmt.where(Handoff.claimed_by_user_id == claimed_by)
    return stmt


def _views() -> Select:
    claimer, closer = aliased(User), aliased(User)
    return (select(Handoff, Lead.display_name, Lead.owner_user_id,
                   func.coalesce(func.nullif(claimer.display_name, ""), claimer.username),
                   func.coalesce(func.nullif(closer.display_name, ""), closer.username))
            .join(Lead, Lead.id == Handoff.lead_id)
            .outerjoin(claimer, claimer.id == Handoff.claimed_by_user_id)
            .outerjoin(closer, closer.id == Handoff.closed_by_user_id))


async def list_handoffs(session: AsyncSession, status: str | None, limit: int, offset: int, *,
                        owner_ids: list[int] | None = None, claimed_by: int | None = None) -> list[HandoffView]:
    """``owner_ids``: only questions about leads assigned to one of these users; None: all of them. Oldest first
    for open questions (answer in order), newest first for closed ones."""
    stmt = _scoped(_views(), owner_ids, status, claimed_by)
    order = (Handoff.closed_at.desc(), Handoff.id.desc()) if status == "closed" else (Handoff.created_at, Handoff.id)
    rows = (await session.execute(stmt.order_by(*order).limit(limit).offset(offset))).all()
    return [HandoffView(h, name, owner, claimed, closed) for h, name, owner, claimed, closed in rows]


async def handoff_view(session: AsyncSession, handoff_id: int) -> HandoffView | None:
    row = (await session.execute(_views().where(Handoff.id == handoff_id))).first()
    return None if row is None else HandoffView(*row)


async def count_handoffs(session: AsyncSession, status: str | None, *, owner_ids: list[int] | None = None,
                         claimed_by: int | None = None) -> int:
    stmt = _scoped(select(func.count()).select_from(Handoff), owner_ids, status, claimed_by)
    return (await session.execute(stmt)).scalar_one()


async def get_handoff(session: AsyncSession, handoff_id: int, *, lock: bool = False) -> Handoff | None:
    """One question; ``lock`` holds it for the transaction (two replies at once: the second sees it closed)."""
    stmt = select(Handoff).where(Handoff.id == handoff_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def user_label(session: AsyncSession, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    user = await session.get(User, user_id)
    return None if user is None else (user.display_name or user.username)


def claim(handoff: Handoff, user_id: int | None, now: datetime) -> None:
    """The caller takes the question (flushed with the session's transaction)."""
    if handoff.claimed_by_user_id != user_id or handoff.claimed_at is None:
        handoff.claimed_by_user_id, handoff.claimed_at = user_id, now


async def close_with_reply(session: AsyncSession, handoff: Handoff, *, user_id: int | None, outbox_id: int | None,
                           now: datetime) -> None:
    """The reply answered the question: closed by its author; the outbox row names its author too."""
    handoff.status, handoff.closed_at, handoff.closed_by_user_id = "closed", now, user_id
    handoff.reply_outbox_id = outbox_id
    if handoff.claimed_by_user_id is None:
        handoff.claimed_by_user_id, handoff.claimed_at = user_id, now
    if outbox_id is not None:
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id)
                              .values(author_user_id=user_id))


async def reach_of(session: AsyncSession, lead_id: int) -> Reach:
    """How the lead (its merge survivor) can be answered: OpenID, WeCom contact and owning member, last OA action."""
    lead = await session.get(Lead, lead_id)
    if lead is None:
        return Reach()
    if lead.merged_into_id is not None:
        lead = await session.get(Lead, lead.merged_into_id) or lead
    ids = (await session.execute(
        select(Identity.kind, Identity.value).where(Identity.lead_id == lead.id,
                                                    Identity.kind.in_((OA_OPENID, WECOM_EXTERNAL)))
        .order_by(Identity.id))).all()
    first = {kind: value for kind, value in reversed(ids)}
    owner = (lead.profile or {}).get("wecom_owner")
    return Reach(openid=first.get(OA_OPENID), external_userid=first.get(WECOM_EXTERNAL),
                 wecom_owner=owner if isinstance(owner, str) and owner else None,
                 oa_last_interaction_at=lead.oa_last_interaction_at)


async def member_label(session: AsyncSession, wecom_userid: str) -> str:
    """"陈静（sales_chen）" when a console user has this WeCom userid, else the userid alone."""
    name = (await session.execute(select(func.coalesce(func.nullif(User.display_name, ""), User.username))
                                  .where(User.wecom_userid == wecom_userid).limit(1))).scalar_one_or_none()
    return f"{name}（{wecom_userid}）" if name else wecom_userid


async def outbox_status(session: AsyncSession, outbox_id: int) -> str | None:
    return (await session.execute(select(OutboxMessage.status).where(OutboxMessage.id == outbox_id))).scalar()
