"""A lead's BANT record, kept in its profile under ``"bant"``: no table of its own, and erasing the lead's
personal data (storage/repos/erasure.py replaces the profile) erases it too. A merge keeps the survivor's
record, else the absorbed lead's (storage/repos/merges.py merges profiles key by key)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leads.bant import FIELDS, apply
from storage.models import Lead

PROFILE_KEY = "bant"


def bant_of(lead: Lead) -> dict[str, str]:
    """The stored BANT fields (absent ones omitted)."""
    stored = (lead.profile or {}).get(PROFILE_KEY)
    if not isinstance(stored, dict):
        return {}
    return {k: v for k, v in stored.items() if k in FIELDS and isinstance(v, str)}


async def update_bant(session: AsyncSession, lead: Lead, update: Mapping[str, str | None]) -> dict[str, str]:
    """Applies a validated update (leads.bant.parse_update) in the caller's transaction; the new record."""
    record = apply(bant_of(lead), update)
    profile: dict[str, Any] = {k: v for k, v in (lead.profile or {}).items() if k != PROFILE_KEY}
    if record:
        profile[PROFILE_KEY] = record
    lead.profile = profile  # a new dict: the JSON column sees the change
    await session.flush()
    return record
