"""Identity look-ups and updates outside identity resolution (which is LeadRepository.resolve)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from leads.identity import IdentityKey
from storage.models import Identity, Lead


@dataclass(frozen=True, slots=True)
class LeadKnowledge:
    """What a lead has told us so far: its profile and the kinds of identity it has (phone, email...)."""

    lead_id: int
    profile: dict[str, Any]
    identity_kinds: tuple[str, ...]


async def knowledge_of(session: AsyncSession, identities: list[IdentityKey]) -> LeadKnowledge | None:
    """The lead that owns any of ``identities`` (the lowest id when several do), or None for a stranger."""
    if not identities:
        return None
    lead_id = (await session.execute(
        select(Identity.lead_id).where(tuple_(Identity.kind, Identity.app, Identity.value).in_(
            [i.ref for i in identities])).order_by(Identity.lead_id).limit(1))).scalar()
    if lead_id is None:
        return None
    lead = await session.get_one(Lead, lead_id)
    kinds = (await session.execute(select(Identity.kind).where(Identity.lead_id == lead_id))).scalars()
    return LeadKnowledge(lead_id, lead.profile or {}, tuple(kinds))

