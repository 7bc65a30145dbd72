"""Reads of the sales mobile inbox (/m/): a salesperson's assignments by status, newest first, and the look-ups
its chat toolbar needs (a lead by WeCom external_userid). The sign-in finds the member's user as the card's
接受 does (storage/repos/handoff_cards.py ``users_by_wecom_userid``).

The list reads through ``ix_assignments_user_status_assigned_at`` (user_id, status, assigned_at): one index
range per page, newest first, a keyset cursor (assigned_at, id) for the next page, so the thousandth page costs
what the first does however many leads the table holds. Only the page's leads are joined, by primary key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leads.identity import WECOM_EXTERNAL
from storage.models import Assignment, Identity, Lead

STATUSES = ("pending", "accepted", "returned")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"([0-9]{1,18})\.([0-9]{1,19})")


@dataclass(frozen=True, slots=True)
class InboxCursor:
    """The last row of a page: the next page holds older assignments (assigned_at, id descending)."""

    at: datetime
    id: int

    def encode(self) -> str:
        return f"{(self.at - EPOCH) // timedelta(microseconds=1)}.{self.id}"

    @classmethod
    def decode(cls, raw: str | None) -> InboxCursor | None:
        match = _CURSOR.fullmatch(raw or "")
        if match is None or int(match[2]) > 2**63 - 1:
            return None
        try:
            return cls(EPOCH + timedelta(microseconds=int(match[1])), int(match[2]))
        except OverflowError:
            return None


@dataclass(frozen=True, slots=True)
class InboxRow:
    assignment_id: int
    lead_id: int
    status: str
    assigned_at: datetime
    decided_at: datetime | None
    return_reason: str | None
    reason: str  # why routing chose this salesperson (Chinese, for the card and the list)
    display_name: str | None
    company: str
    stage: str
    quadrant: str | None
    ability: float | None
    motivation: float | None


@dataclass(frozen=True, slots=True)
class InboxPage:
    rows: list[InboxRow]
    next: InboxCursor | None


def _company(profile: Any) -> str:
    value = profile.get("company") if isinstance(profile, dict) else None
    return value if isinstance(value, str) else ""


async def inbox_page(session: AsyncSession, user_id: int, status: str, before: InboxCursor | None,
                     limit: int) -> InboxPage:
    """At most ``limit`` of the user's assignments in ``status``, older than ``before`` (None: the newest)."""
    a = Assignment
    ids = select(a.id).where(a.user_id == user_id, a.status == status)
    if before is not None:
        ids = ids.where(or_(a.assigned_at < before.at, and_(a.assigned_at == before.at, a.id < before.id)))
    page_ids = ids.order_by(a.assigned_at.desc(), a.id.desc()).limit(limit + 1).subquery()
    stmt = (select(a.id, a.lead_id, a.status, a.assigned_at, a.decided_at, a.return_reason, a.reason,
                   Lead.display_name, Lead.profile, Lead.stage, Lead.quadrant, Lead.ability, Lead.motivation)
            .join(page_ids, page_ids.c.id == a.id).join(Lead, Lead.id == a.lead_id)
            .order_by(a.assigned_at.desc(), a.id.desc()))
    rows = [InboxRow(r.id, r.lead_id, r.status, r.assigned_at, r.decided_at, r.return_reason, r.reason or "",
                     r.display_name, _company(r.profile), r.stage, r.quadrant, r.ability, r.motivation)
            for r in (await session.execute(stmt)).all()]
    page = rows[:limit]
    more = len(rows) > limit
    return InboxPage(page, InboxCursor(page[-1].assigned_at, page[-1].assignment_id) if more else None)


async def pending_count(session: AsyncSession, user_id: int) -> int:
    """The badge on the 待处理 tab (an index-only count over the user's pending range)."""
    stmt = select(func.count()).select_from(Assignment).where(Assignment.user_id == user_id,
                                                              Assignment.status == "pending")
    return int((await session.execute(stmt)).scalar_one())


async def latest_assignment(session: AsyncSession, lead_id: int) -> Assignment | None:
    """The lead's newest assignment (ix_assignments_lead_id_id), whatever its status."""
    stmt = select(Assignment).where(Assignment.lead_id == lead_id).order_by(Assignment.id.desc()).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lead_of_external_contact(session: AsyncSession, corp_id: str, external_userid: str) -> int | None:
    """The lead that owns this WeCom external contact of our company, or None."""
    stmt = select(Identity.lead_id).where(Identity.kind == WECOM_EXTERNAL, Identity.app == corp_id,
                                          Identity.value == external_userid).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()
